package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rosterhq/roster/internal/testutil"
	"github.com/rosterhq/roster/registry"
)

// testTick is the lease tick of test nodes: short, so expiry tests are fast.
const testTick = 50 * time.Millisecond

// tLogWriter takes one Write per record from slog's text handler and passes
// it to t.Log, so the lines show with the test that made them. Nodes log
// from goroutines that may outlive the test by a moment, and t.Log panics
// then: after the test's cleanup, records are dropped.
type tLogWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *tLogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func testLogger(t testing.TB) *slog.Logger {
	w := &tLogWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// env is one real single-member node with the API served in front of it.
type env struct {
	t      testing.TB
	node   *registry.Node
	srv    *Server
	ts     *httptest.Server
	client *http.Client
	reg    *prometheus.Registry
	// nodeReg holds the node's own metrics.
	nodeReg *prometheus.Registry
}

func newEnv(t *testing.T) *env { t.Helper(); return newEnvWith(t, nil, nil) }

// newBenchEnv is newEnv for benchmarks.
func newBenchEnv(b *testing.B) *env { b.Helper(); return newEnvWith(b, nil, nil) }

// newEnvWith is newEnv with the node's and the server's configuration
// adjusted by the given functions (either may be nil).
func newEnvWith(t testing.TB, nodeCfg func(*registry.Config), srvCfg func(*Config)) *env {
	t.Helper()
	return newEnvOpts(t, envOptions{node: nodeCfg, srv: srvCfg})
}

// envOptions adjusts newEnvOpts; every field may be left zero.
type envOptions struct {
	node func(*registry.Config)
	srv  func(*Config)
	log  *slog.Logger // default: testLogger
	// backend is what the server is given in front of the node (default:
	// the node itself).
	backend func(*registry.Node) Backend
}

func newEnvOpts(t testing.TB, o envOptions) *env {
	t.Helper()
	log := o.log
	if log == nil {
		log = testLogger(t)
	}
	rc := registry.Config{
		ID: "n1", DataDir: t.TempDir(), RaftAddr: "127.0.0.1:0",
		Bootstrap: true, NoSync: true, Tick: testTick,
	}
	if o.node != nil {
		o.node(&rc)
	}
	nodeReg := prometheus.NewRegistry()
	node, err := registry.Open(rc, log, nodeReg)
	if err != nil {
		t.Fatalf("open node: %v", err)
	}
	t.Cleanup(func() { _ = node.Close() })
	testutil.Eventually(t, 10*time.Second, "node ready", func() bool { return node.Ready() == nil })

	reg := prometheus.NewRegistry()
	sc := Config{Gatherer: reg}
	if o.srv != nil {
		o.srv(&sc)
	}
	var b Backend = node
	if o.backend != nil {
		b = o.backend(node)
	}
	srv, err := New(sc, b, log, reg)
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
	// Shut down after ts closed (cleanups run last first): watch streams
	// that took over their connections end with the server, not with ts.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("server shutdown: %v", err)
		}
	})
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	client := ts.Client()
	// A redirect would be a contract violation: surface it, never follow.
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &env{t: t, node: node, srv: srv, ts: ts, client: client, reg: reg, nodeReg: nodeReg}
}

// response is one answer, read in full.
type response struct {
	code int
	hdr  http.Header
	body []byte
}

// do sends a request; path is sent as written (percent-encoding kept).
func (e *env) do(method, path string, body io.Reader, header ...string) response {
	e.t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, e.ts.URL+path, body)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := e.client.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	if res.StatusCode >= 300 && res.StatusCode < 400 {
		e.t.Fatalf("%s %s: redirect %d to %q", method, path, res.StatusCode, res.Header.Get("Location"))
	}
	return response{code: res.StatusCode, hdr: res.Header, body: b}
}

// doStr sends a string body (nil body when s is empty).
func (e *env) doStr(method, path, s string, header ...string) response {
	e.t.Helper()
	var body io.Reader
	if s != "" {
		body = strings.NewReader(s)
	}
	return e.do(method, path, body, header...)
}

// form sends an urlencoded form.
func (e *env) form(path, encoded string) response {
	e.t.Helper()
	return e.doStr(http.MethodPost, path, encoded, "Content-Type", "application/x-www-form-urlencoded")
}

// ok asserts the status and decodes the JSON body into v (when non-nil).
func (r response) ok(t testing.TB, code int, v any) response {
	t.Helper()
	if r.code != code {
		t.Fatalf("status %d, want %d; body %s", r.code, code, r.body)
	}
	if v != nil {
		dec := json.NewDecoder(bytes.NewReader(r.body))
		dec.UseNumber()
		if err := dec.Decode(v); err != nil {
			t.Fatalf("decoding %s: %v", r.body, err)
		}
	}
	return r
}

// apiErr is the decoded error envelope.
type apiErr struct {
	Error struct {
		Code               string `json:"code"`
		Message            string `json:"message"`
		CurrentModRevision *int64 `json:"current_mod_revision"`
	} `json:"error"`
}

// fails asserts an error answer with the given status and code.
func (r response) fails(t testing.TB, code int, errCode string) apiErr {
	t.Helper()
	var e apiErr
	if r.code != code {
		t.Fatalf("status %d, want %d; body %s", r.code, code, r.body)
	}
	if ct := r.hdr.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("error content type %q; body %s", ct, r.body)
	}
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("error body %s: %v", r.body, err)
	}
	if e.Error.Code != errCode || e.Error.Message == "" {
		t.Fatalf("error %+v, want code %q with a message; body %s", e.Error, errCode, r.body)
	}
	return e
}

// revision is the X-Roster-Revision header of a KV answer.
func (r response) revision(t testing.TB) int64 {
	t.Helper()
	v, err := strconv.ParseInt(r.hdr.Get("X-Roster-Revision"), 10, 64)
	if err != nil {
		t.Fatalf("X-Roster-Revision %q: %v", r.hdr.Get("X-Roster-Revision"), err)
	}
	return v
}

// storeRevision reads the current store revision through the API.
func (e *env) storeRevision() int64 {
	e.t.Helper()
	return e.doStr(http.MethodGet, "/v1/kv/?prefix=true&count_only=true", "").ok(e.t, 200, nil).revision(e.t)
}

// grant creates a lease through the API and returns its ID.
func (e *env) grant(ttl int, name string) string {
	e.t.Helper()
	var g struct {
		ID   string `json:"id"`
		TTL  json.Number
		Name string
	}
	body, _ := json.Marshal(map[string]any{"ttl": ttl, "name": name})
	e.doStr(http.MethodPost, "/v1/leases", string(body)).ok(e.t, http.StatusCreated, &g)
	if _, err := parseID(g.ID); err != nil {
		e.t.Fatalf("granted id %q: %v", g.ID, err)
	}
	return g.ID
}

// leaseCount counts the live leases through the API.
func (e *env) leaseCount() int {
	e.t.Helper()
	var l struct {
		Leases []json.RawMessage `json:"leases"`
	}
	e.doStr(http.MethodGet, "/v1/leases", "").ok(e.t, 200, &l)
	return len(l.Leases)
}
