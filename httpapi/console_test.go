package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/rosterhq/roster/api"
	"github.com/rosterhq/roster/internal/testutil"
)

// consoleFiles returns every embedded console file by name.
func consoleFiles(t *testing.T) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := fs.WalkDir(uiFiles, "ui", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := uiFiles.ReadFile(p)
		files[strings.TrimPrefix(p, "ui/")] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

var assetRef = regexp.MustCompile(`"/ui/([^"?]+)\?v=([0-9a-f]{16})"`)

func TestConsolePage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, p := range []string{"/", "/ui/", "/ui/index.html"} {
		r := e.doStr(http.MethodGet, p, "").ok(t, 200, nil)
		if ct := r.hdr.Get("Content-Type"); ct != "text/html; charset=utf-8" {
			t.Errorf("%s: Content-Type %q", p, ct)
		}
		if cc := r.hdr.Get("Cache-Control"); cc != "no-cache" {
			t.Errorf("%s: Cache-Control %q, want no-cache (the page names the current assets)", p, cc)
		}
		if r.hdr.Get("ETag") == "" || !strings.Contains(r.hdr.Get("Content-Security-Policy"), "default-src 'none'") {
			t.Errorf("%s: ETag %q, CSP %q", p, r.hdr.Get("ETag"), r.hdr.Get("Content-Security-Policy"))
		}
		if r.hdr.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: no nosniff", p)
		}
		if !strings.Contains(string(r.body), "<title>Roster console</title>") {
			t.Errorf("%s: not the console page: %.200s", p, r.body)
		}
	}
	page := e.doStr(http.MethodGet, "/", "").ok(t, 200, nil)
	// Revalidation: the same ETag answers 304 with no body.
	if code, n := revalidate(t, e, "/", page.hdr.Get("ETag")); code != http.StatusNotModified || n != 0 {
		t.Errorf("If-None-Match: %d with %d bytes, want 304 and none", code, n)
	}
	r := e.doStr(http.MethodHead, "/", "").ok(t, 200, nil)
	if len(r.body) != 0 || r.hdr.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Errorf("HEAD /: %d bytes, Content-Type %q", len(r.body), r.hdr.Get("Content-Type"))
	}
	// Everything but the console keeps the JSON 404 and 405.
	e.doStr(http.MethodGet, "/nope", "").fails(t, 404, "not_found")
	e.doStr(http.MethodGet, "/ui/nope.js", "").fails(t, 404, "not_found")
	e.doStr(http.MethodGet, "/ui/../go.mod", "").fails(t, 404, "not_found")
	e.doStr(http.MethodPost, "/", "").fails(t, 405, "method_not_allowed")
}

func TestConsoleAssets(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	page := string(e.doStr(http.MethodGet, "/", "").ok(t, 200, nil).body)
	refs := assetRef.FindAllStringSubmatch(page, -1)
	files := consoleFiles(t)
	referenced := map[string]bool{}
	for _, m := range refs {
		name, v := m[1], m[2]
		referenced[name] = true
		want := contentTypes[path.Ext(name)]
		r := e.doStr(http.MethodGet, "/ui/"+name+"?v="+v, "").ok(t, 200, nil)
		if ct := r.hdr.Get("Content-Type"); ct != want || want == "" {
			t.Errorf("%s: Content-Type %q, want %q", name, ct, want)
		}
		if cc := r.hdr.Get("Cache-Control"); cc != "public, max-age=31536000, immutable" {
			t.Errorf("%s?v=current: Cache-Control %q, want a long immutable cache", name, cc)
		}
		if string(r.body) != files[name] {
			t.Errorf("%s: body is not the embedded file", name)
		}
		etag := r.hdr.Get("ETag")
		if etag != `"`+v+`"` {
			t.Errorf("%s: ETag %q, want the content hash %q", name, etag, v)
		}
		// Without the current version the asset is revalidated, never
		// cached for long: a stale page must not pin old code for a year.
		for _, q := range []string{"", "?v=0000000000000000"} {
			r := e.doStr(http.MethodGet, "/ui/"+name+q, "").ok(t, 200, nil)
			if cc := r.hdr.Get("Cache-Control"); cc != "no-cache" {
				t.Errorf("%s%s: Cache-Control %q, want no-cache", name, q, cc)
			}
		}
		if code, n := revalidate(t, e, "/ui/"+name, etag); code != http.StatusNotModified || n != 0 {
			t.Errorf("%s If-None-Match: %d with %d bytes, want 304 and none", name, code, n)
		}
		if code, _ := revalidate(t, e, "/ui/"+name, `"stale"`); code != http.StatusOK {
			t.Errorf("%s If-None-Match with another tag: %d, want 200", name, code)
		}
	}
	for name := range files {
		if name != "index.html" && !referenced[name] {
			t.Errorf("embedded %s is not referenced by index.html with its version", name)
		}
	}
	if len(referenced) < 5 {
		t.Fatalf("index.html references %d assets: %v", len(referenced), refs)
	}
}

// Nothing the console loads may come from another host: no absolute URL
// (but the SVG namespace name, which is never fetched) and no
// protocol-relative one.
func TestConsoleLoadsNothingFromElsewhere(t *testing.T) {
	t.Parallel()
	absolute := regexp.MustCompile(`(?i)\b(https?|wss?|ftp):\/\/`)
	protoRelative := regexp.MustCompile(`["'(=]\s*//[A-Za-z0-9]`)
	cssURL := regexp.MustCompile(`(?i)\burl\(\s*['"]?([^'")]*)`)
	for name, body := range consoleFiles(t) {
		clean := strings.ReplaceAll(body, `xmlns="http://www.w3.org/2000/svg"`, "")
		if m := absolute.FindString(clean); m != "" {
			t.Errorf("%s mentions an absolute URL (%q)", name, lineOf(clean, m))
		}
		if m := protoRelative.FindString(clean); m != "" {
			t.Errorf("%s has a protocol-relative URL (%q)", name, lineOf(clean, m))
		}
		if strings.Contains(body, "@import") {
			t.Errorf("%s uses @import", name)
		}
		if strings.HasSuffix(name, ".js") {
			continue // url( there is code, not CSS
		}
		for _, m := range cssURL.FindAllStringSubmatch(body, -1) {
			if !strings.HasPrefix(m[1], "data:") && !strings.HasPrefix(m[1], "/ui/") {
				t.Errorf("%s: url(%s) is not an embedded file", name, m[1])
			}
		}
	}
	// And the browser is told so: the page's policy allows only itself.
	for _, d := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'"} {
		if !strings.Contains(consolePolicy, d) {
			t.Errorf("Content-Security-Policy lacks %q", d)
		}
	}
}

// revalidate sends a conditional GET (env.do refuses 3xx answers) and
// returns the status and the body's length.
func revalidate(t *testing.T, e *env, p, etag string) (int, int) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.ts.URL+p, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("If-None-Match", etag)
	res, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, len(b)
}

func lineOf(body, m string) string {
	i := strings.Index(body, m)
	start := strings.LastIndex(body[:i], "\n") + 1
	end := strings.Index(body[i:], "\n")
	if end < 0 {
		end = len(body) - i
	}
	return strings.TrimSpace(body[start : i+end])
}

// apiCall matches the console's API calls: R.api.METHOD(`path`...). The
// console makes no other kind (checked below: one fetch call site).
var apiCall = regexp.MustCompile("R\\.api\\.(get|put|post|del|stream)\\(\\s*`([^`]*)`")

func TestConsoleCallsDocumentedRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	routes := e.srv.engine.Routes()
	docs := readDocs(t)
	fetches := 0
	calls := map[string]bool{}
	for name, body := range consoleFiles(t) {
		if !strings.HasSuffix(name, ".js") {
			continue
		}
		fetches += strings.Count(body, "fetch(")
		for _, m := range apiCall.FindAllStringSubmatch(body, -1) {
			method := map[string]string{"get": "GET", "put": "PUT", "post": "POST", "del": "DELETE", "stream": "GET"}[m[1]]
			calls[method+" "+m[2]] = true
		}
		// Every R.api call must have a literal template path, or the
		// check below could not see it.
		if n, lit := strings.Count(body, "R.api."), len(apiCall.FindAllString(body, -1)); n != lit {
			t.Errorf("%s: %d R.api calls, %d with a literal path", name, n, lit)
		}
	}
	if fetches != 1 {
		t.Errorf("%d fetch( call sites in the console, want exactly 1 (core.js request)", fetches)
	}
	if len(calls) < 10 {
		t.Fatalf("found only %d API calls in the console: %v", len(calls), calls)
	}
	for call := range calls {
		method, tmpl, _ := strings.Cut(call, " ")
		p := samplePath(tmpl)
		route := matchRoute(routes, method, p)
		if route == "" {
			t.Errorf("the console calls %s %s, which no route serves", method, tmpl)
			continue
		}
		if docs == "" {
			continue
		}
		if !documented(docs, method, route) {
			t.Errorf("the console calls %s %s (route %s), which docs/ does not document", method, tmpl, route)
		}
	}
}

// samplePath turns a JS template path into a concrete path: the query is
// dropped, a ${…} after "/" stands for one segment (an ID) and one
// elsewhere for a key, which begins with "/".
func samplePath(tmpl string) string {
	var b strings.Builder
	for i := 0; i < len(tmpl); {
		switch {
		case strings.HasPrefix(tmpl[i:], "${"):
			end := strings.Index(tmpl[i:], "}")
			if strings.HasSuffix(b.String(), "/") {
				b.WriteString("123")
			} else {
				b.WriteString("/a/b")
			}
			i += end + 1
		case tmpl[i] == '?':
			return b.String()
		default:
			b.WriteByte(tmpl[i])
			i++
		}
	}
	return b.String()
}

// matchRoute finds the registered gin route serving method and p.
func matchRoute(routes gin.RoutesInfo, method, p string) string {
	for _, r := range routes {
		if r.Method == method && routeMatches(r.Path, p) {
			return r.Path
		}
	}
	return ""
}

func routeMatches(route, p string) bool {
	rs, ps := strings.Split(route, "/"), strings.Split(p, "/")
	for i, seg := range rs {
		if strings.HasPrefix(seg, "*") {
			return i < len(ps)
		}
		if i >= len(ps) || (!strings.HasPrefix(seg, ":") && seg != ps[i]) || (strings.HasPrefix(seg, ":") && ps[i] == "") {
			return false
		}
	}
	return len(rs) == len(ps)
}

// readDocs is the text of the repository's docs/*.md ("" when the API
// reference, docs/api.md, is not there yet).
func readDocs(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(filepath.Join("..", "docs", "api.md")); err != nil {
		t.Logf("docs/api.md not found: checking the console's calls against the router only")
		return ""
	}
	names, _ := filepath.Glob(filepath.Join("..", "docs", "*.md"))
	var b strings.Builder
	for _, n := range names {
		body, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(body)
	}
	return b.String()
}

// documented reports whether docs name METHOD route, written with {param}
// for gin's :param and *param.
func documented(docs, method, route string) bool {
	parts := strings.Split(route, "/")
	for i, seg := range parts {
		if strings.HasPrefix(seg, ":") || strings.HasPrefix(seg, "*") {
			parts[i] = `\{[a-z_]+\}`
		} else {
			parts[i] = regexp.QuoteMeta(seg)
		}
	}
	// The route must end there: "GET /v1/leases" is not documented by
	// "GET /v1/leases/{id}".
	return regexp.MustCompile(method + " " + strings.Join(parts, "/") + `([^A-Za-z0-9_/{]|$)`).MatchString(docs)
}

func TestClusterStatusRoute(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, q := range []string{"", "?local=true"} {
		var st api.ClusterStatusResponse
		e.doStr(http.MethodGet, "/v1/cluster/status"+q, "").ok(t, 200, nil).decode(t, &st)
		if st.Member != "n1" || len(st.Members) != 1 {
			t.Fatalf("status%s: %+v", q, st)
		}
		m := st.Members[0]
		if m.ID != "n1" || !m.Leader || !m.Voter || !m.Reachable || !m.Ready || m.Error != nil || m.LeaderID != "n1" {
			t.Errorf("status%s: member %+v", q, m)
		}
		if m.Term == nil || *m.Term == 0 || m.AppliedIndex == nil || *m.AppliedIndex == 0 || m.Version == "" {
			t.Errorf("status%s: raft view or version missing: %+v", q, m)
		}
	}
	e.doStr(http.MethodGet, "/v1/cluster/status?local=maybe", "").fails(t, 400, "invalid_argument")
}

func (r response) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decoding %s: %v", r.body, err)
	}
}

// A member outside the configuration it answers for (here removed; or
// waiting to be added) still reports itself in GET /v1/cluster/status:
// its own readiness is what the caller asks it about, and it is not
// ready. It comes last, without a raft address, after the members it
// knows, and says what ?local=true says.
func TestClusterStatusOfAMemberOutsideTheConfiguration(t *testing.T) {
	envs := newClusterEnv(t, 3)
	victim := envs[2]
	if err := envs[0].node.RemoveMember(context.Background(), victim.node.ID()); err != nil {
		t.Fatalf("remove: %v", err)
	}
	testutil.Eventually(t, 20*time.Second, "the removed member knows it", victim.node.Removed)
	var local, all api.ClusterStatusResponse
	victim.doStr(http.MethodGet, "/v1/cluster/status?local=true", "").ok(t, 200, nil).decode(t, &local)
	victim.doStr(http.MethodGet, "/v1/cluster/status", "").ok(t, 200, nil).decode(t, &all)
	if len(local.Members) != 1 || local.Members[0].Ready || local.Members[0].Error == nil {
		t.Fatalf("?local=true on the removed member: %+v", local)
	}
	if all.Member != victim.node.ID() || len(all.Members) != 3 {
		t.Fatalf("status on the removed member: %+v, want the two members it knows and itself", all)
	}
	self := all.Members[2]
	if self.ID != victim.node.ID() || self.RaftAddr != "" || self.Ready || self.Error == nil || self.Error.Code != local.Members[0].Error.Code {
		t.Fatalf("the removed member's own entry: %+v (error %+v), want it not ready as ?local=true says (%+v)", self, self.Error, local.Members[0].Error)
	}
	for _, m := range all.Members[:2] {
		if m.ID == victim.node.ID() || m.RaftAddr == "" || !m.Reachable {
			t.Errorf("member %+v", m)
		}
	}
}
