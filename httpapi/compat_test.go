package httpapi

import (
	"bytes"
	"io"
	"mime/multipart"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

var digits = regexp.MustCompile(`^[0-9]+$`)

// compatGrant is `curl -sL -XPOST '…/lease/grant?ttl=10&name=…'`.
func (e *env) compatGrant(ttl, name string) string {
	e.t.Helper()
	r := e.doStr("POST", "/lease/grant?ttl="+ttl+"&name="+url.QueryEscape(name), "").ok(e.t, 200, nil)
	if !digits.Match(r.body) || !strings.HasPrefix(r.hdr.Get("Content-Type"), "text/plain") {
		e.t.Fatalf("grant answered %q (%s)", r.body, r.hdr.Get("Content-Type"))
	}
	return string(r.body)
}

// TestCompatScript replays what an esq-style script does: grant, keep alive
// with its node info, and discover its peers.
func TestCompatScript(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := e.compatGrant("10", "/esq/node-1")
	info := `{"http_addr":"127.0.0.1:9001","node_id":1}`
	form := "key=nodeinfo&data=" + url.QueryEscape(info)
	r := e.form("/lease/keepalive/"+id, form).ok(t, 200, nil)
	if string(r.body) != "null" {
		t.Fatalf("keepalive answered %q", r.body)
	}
	r = e.form("/lease/kv/nodeinfo", "prefix=/esq/node").ok(t, 200, nil)
	if string(r.body) != `[{"http_addr":"127.0.0.1:9001","node_id":1}]` {
		t.Fatalf("lease/kv answered %s", r.body)
	}
	// curl -d sends the JSON unescaped; that parses to the same form.
	e.form("/lease/keepalive/"+id, `key=nodeinfo&data={"http_addr":"127.0.0.1:9001","node_id":1}`).ok(t, 200, nil)

	// The key is {name}/{key}, attached to the lease.
	var kv kvBody
	e.doStr("GET", "/v1/kv/esq/node-1/nodeinfo", "").ok(t, 200, &kv)
	if *kv.Value != info || kv.Lease == nil || *kv.Lease != id {
		t.Fatalf("stored %+v", kv)
	}
	// Re-sending the same data every loop costs no revision.
	rev := e.storeRevision()
	for i := 0; i < 3; i++ {
		e.form("/lease/keepalive/"+id, form).ok(t, 200, nil)
	}
	e.form("/lease/keepalive/"+id, "").ok(t, 200, nil) // renew only
	if e.storeRevision() != rev {
		t.Fatal("unchanged keep-alive data moved the revision")
	}
	e.form("/lease/keepalive/"+id, "key=nodeinfo&data=changed").ok(t, 200, nil)
	if e.storeRevision() != rev+1 {
		t.Fatal("changed keep-alive data did not move the revision")
	}
	// multipart (curl -F) works too.
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	_ = mw.WriteField("key", "nodeinfo")
	_ = mw.WriteField("data", info)
	_ = mw.Close()
	e.do("POST", "/lease/keepalive/"+id, &buf, "Content-Type", mw.FormDataContentType()).ok(t, 200, nil)
	e.doStr("GET", "/v1/kv/esq/node-1/nodeinfo", "").ok(t, 200, &kv)
	if *kv.Value != info {
		t.Fatalf("multipart keepalive stored %q", *kv.Value)
	}

	var ttl leaseBody
	r = e.doStr("POST", "/lease/timetolive/"+id, "").ok(t, 200, &ttl)
	if ttl.ID != id || ttl.TTL != 10 || ttl.Remaining < 9 || ttl.Name != "/esq/node-1" ||
		ttl.Keys == nil || strings.Join(*ttl.Keys, ",") != "/esq/node-1/nodeinfo" {
		t.Fatalf("timetolive %s", r.body)
	}

	r = e.doStr("POST", "/lease/revoke/"+id, "").ok(t, 200, nil)
	if string(r.body) != "null" {
		t.Fatalf("revoke answered %q", r.body)
	}
	e.doStr("GET", "/v1/kv/esq/node-1/nodeinfo", "").fails(t, 404, "not_found")
	r = e.form("/lease/kv/nodeinfo", "prefix=/esq/node").ok(t, 200, nil)
	if string(r.body) != `[]` {
		t.Fatalf("lease/kv after revoke %s", r.body)
	}
	e.doStr("POST", "/lease/revoke/"+id, "").fails(t, 404, "lease_not_found")
	e.form("/lease/keepalive/"+id, "").fails(t, 404, "lease_not_found")
	e.form("/lease/keepalive/"+id, form).fails(t, 404, "lease_not_found")
	e.doStr("POST", "/lease/timetolive/"+id, "").fails(t, 404, "lease_not_found")
}

func TestCompatLeaseKVOrderAndFilter(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// Name order differs from key order: "/esq/node-1-b/k" < "/esq/node-1/k".
	for _, n := range []struct{ name, data string }{
		{"/esq/node-1-b", `{"n":"1b"}`},
		{"/esq/node-1", `{"n":"1"}`},
		{"/esq/node-2", `plain text`},
		{"/other/node-3", `{"n":"3"}`},
		{"/esq/node-4", ``}, // holds another key only
	} {
		id := e.compatGrant("30", n.name)
		key := "info"
		if n.name == "/esq/node-4" {
			key = "other"
		}
		e.form("/lease/keepalive/"+id, "key="+key+"&data="+url.QueryEscape(n.data)).ok(t, 200, nil)
	}
	// A key of the right shape but not attached to a lease does not count.
	e.doStr("PUT", "/v1/kv/esq/node-9/info", `{"n":"9"}`).ok(t, 200, nil)

	r := e.form("/lease/kv/info", "prefix=/esq/node").ok(t, 200, nil)
	if string(r.body) != `[{"n":"1"},{"n":"1b"},"plain text"]` {
		t.Fatalf("lease/kv %s", r.body)
	}
	// The prefix may also come in the query string; an empty prefix is all.
	r = e.doStr("POST", "/lease/kv/info?prefix=/other", "").ok(t, 200, nil)
	if string(r.body) != `[{"n":"3"}]` {
		t.Fatalf("lease/kv query prefix %s", r.body)
	}
	r = e.doStr("POST", "/lease/kv/info", "").ok(t, 200, nil)
	if string(r.body) != `[{"n":"1"},{"n":"1b"},"plain text",{"n":"3"}]` {
		t.Fatalf("lease/kv all %s", r.body)
	}
	e.doStr("POST", "/lease/kv/", "").fails(t, 400, "invalid_argument")
}

func TestCompatBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rev := e.storeRevision()
	for _, q := range []string{"", "?ttl=", "?ttl=x", "?ttl=1", "?ttl=-10", "?ttl=10&name=a%00b"} {
		e.doStr("POST", "/lease/grant"+q, "").fails(t, 400, "invalid_argument")
	}
	if e.leaseCount() != 0 {
		t.Fatal("bad grants created a lease")
	}
	id := e.compatGrant("10", "/n")
	e.form("/lease/keepalive/x", "").fails(t, 400, "invalid_argument")
	e.form("/lease/keepalive/"+id, "key=a%00b&data=x").fails(t, 400, "invalid_argument")
	big := strings.Repeat("x", e.node.MaxValueBytes()+1)
	e.form("/lease/keepalive/"+id, "key=k&data="+big).fails(t, 413, "too_large")
	e.form("/lease/keepalive/"+id, "key=k&data="+strings.Repeat("%41", e.node.MaxValueBytes()+1)).fails(t, 413, "too_large")
	e.form("/lease/keepalive/"+id, "key=k&data=%zz").fails(t, 400, "invalid_argument")
	// A form over the limit without a Content-Length is refused, not cut.
	chunked := io.MultiReader(strings.NewReader("key=k&data="), strings.NewReader(strings.Repeat("y", 4*e.node.MaxValueBytes())))
	e.do("POST", "/lease/keepalive/"+id, struct{ io.Reader }{chunked},
		"Content-Type", "application/x-www-form-urlencoded").fails(t, 413, "too_large")
	e.doStr("POST", "/lease/revoke/0", "").fails(t, 400, "invalid_argument")
	e.doStr("POST", "/lease/timetolive/abc", "").fails(t, 400, "invalid_argument")
	e.doStr("PUT", "/key/a%00", "x").fails(t, 400, "invalid_argument")
	e.doStr("PUT", "/key/big", big).fails(t, 413, "too_large")
	if e.storeRevision() != rev {
		t.Fatal("bad compat requests changed the store")
	}
}

func TestCompatKeyRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	val := []byte{0x89, 'P', 'N', 'G', 0x00, 0xff}
	r := e.do("PUT", "/key/test", bytes.NewReader(val)).ok(t, 200, nil)
	if len(r.body) != 0 {
		t.Fatalf("put answered %q", r.body)
	}
	r = e.doStr("GET", "/key/test", "").ok(t, 200, nil)
	if !bytes.Equal(r.body, val) {
		t.Fatalf("get %x", r.body)
	}
	// The key is /{key}: the same as /v1/kv/test.
	r = e.doStr("GET", "/v1/kv/test?raw=true", "").ok(t, 200, nil)
	if !bytes.Equal(r.body, val) {
		t.Fatalf("v1 raw %x", r.body)
	}
	e.doStr("PUT", "/key/dir/sub", "nested").ok(t, 200, nil)
	if r := e.doStr("GET", "/v1/kv/dir/sub?raw=true", "").ok(t, 200, nil); string(r.body) != "nested" {
		t.Fatalf("nested %q", r.body)
	}
	r = e.doStr("DELETE", "/key/test", "").ok(t, 200, nil)
	if len(r.body) != 0 {
		t.Fatalf("delete answered %q", r.body)
	}
	e.doStr("GET", "/key/test", "").fails(t, 404, "not_found")
	e.doStr("DELETE", "/key/test", "").ok(t, 200, nil)
	e.doStr("POST", "/key/test", "").fails(t, 405, "method_not_allowed")
}

// TestLeaseNotFoundNamesTheLease: every route that names a lease in its
// path answers 404 lease_not_found with a message that names it, the
// revoke routes included (their error comes from the state machine, which
// does not). A lease revoked already is not found the same way.
func TestLeaseNotFoundNamesTheLease(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	revoked := e.compatGrant("10", "/esq/gone")
	e.doStr("POST", "/lease/revoke/"+revoked, "").ok(t, 200, nil)
	for _, id := range []string{"12345", revoked} {
		for _, r := range []struct{ method, path string }{
			{"POST", "/lease/revoke/" + id},
			{"POST", "/lease/keepalive/" + id},
			{"POST", "/lease/timetolive/" + id},
			{"DELETE", "/v1/leases/" + id},
			{"GET", "/v1/leases/" + id},
			{"POST", "/v1/leases/" + id + "/keepalive"},
		} {
			ae := e.doStr(r.method, r.path, "").fails(t, 404, "lease_not_found")
			if want := "lease not found: " + id; ae.Error.Message != want {
				t.Errorf("%s %s: message %q, want %q", r.method, r.path, ae.Error.Message, want)
			}
		}
	}
}
