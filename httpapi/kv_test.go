package httpapi

import (
	"bytes"
	"encoding/base64"
	"io"
	"net/http"
	"strings"
	"testing"
)

type kvBody struct {
	Key            string  `json:"key"`
	Value          *string `json:"value"`
	ValueBase64    *string `json:"value_base64"`
	CreateRevision int64   `json:"create_revision"`
	ModRevision    int64   `json:"mod_revision"`
	Version        int64   `json:"version"`
	Lease          *string `json:"lease"`
}

type rangeBody struct {
	Revision int64    `json:"revision"`
	KVs      []kvBody `json:"kvs"`
	More     bool     `json:"more"`
}

func keysOf(kvs []kvBody) string {
	var ks []string
	for _, kv := range kvs {
		ks = append(ks, kv.Key)
	}
	return strings.Join(ks, ",")
}

func TestPutGet(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var put struct {
		Revision int64   `json:"revision"`
		Prev     *kvBody `json:"prev"`
	}
	r := e.doStr("PUT", "/v1/kv/services/api/node-1", "hello").ok(t, 200, &put)
	if put.Revision != 1 || r.revision(t) != 1 || put.Prev != nil || string(r.body) != `{"revision":1}` {
		t.Fatalf("put %s", r.body)
	}
	var kv kvBody
	r = e.doStr("GET", "/v1/kv/services/api/node-1", "").ok(t, 200, &kv)
	if kv.Key != "/services/api/node-1" || kv.Value == nil || *kv.Value != "hello" || kv.ValueBase64 != nil ||
		kv.CreateRevision != 1 || kv.ModRevision != 1 || kv.Version != 1 || r.revision(t) != 1 ||
		strings.Contains(string(r.body), "lease") {
		t.Fatalf("get %s", r.body)
	}
	r = e.doStr("PUT", "/v1/kv/services/api/node-1?prev=true", "world").ok(t, 200, &put)
	if put.Revision != 2 || put.Prev == nil || *put.Prev.Value != "hello" || put.Prev.ModRevision != 1 {
		t.Fatalf("put prev %s", r.body)
	}
	// prev=true on a new key: no prev.
	put.Prev = nil
	e.doStr("PUT", "/v1/kv/other?prev", "x").ok(t, 200, &put)
	if put.Prev != nil {
		t.Fatalf("prev of a new key %+v", put.Prev)
	}
	e.doStr("GET", "/v1/kv/services/api/node-1?stale=true", "").ok(t, 200, &kv)
	if *kv.Value != "world" || kv.Version != 2 || kv.CreateRevision != 1 || kv.ModRevision != 2 {
		t.Fatalf("second get %+v", kv)
	}
	r = e.doStr("GET", "/v1/kv/services/api/node-1?raw=true", "").ok(t, 200, nil)
	if string(r.body) != "world" || r.hdr.Get("Content-Type") != "application/octet-stream" || r.revision(t) != 3 {
		t.Fatalf("raw %q %v", r.body, r.hdr)
	}
	r = e.doStr("GET", "/v1/kv/missing", "")
	r.fails(t, 404, "not_found")
	if r.revision(t) != 3 {
		t.Fatalf("404 revision header %v", r.hdr)
	}
	e.doStr("GET", "/v1/kv/missing?raw=true", "").fails(t, 404, "not_found")

	// An empty value is a value.
	e.doStr("PUT", "/v1/kv/empty", "").ok(t, 200, nil)
	r = e.doStr("GET", "/v1/kv/empty", "").ok(t, 200, &kv)
	if kv.Value == nil || *kv.Value != "" {
		t.Fatalf("empty value %s", r.body)
	}
}

func TestBinaryValues(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	val := []byte{0xff, 0x00, 0x01, 'a', 0xc3}
	e.do("PUT", "/v1/kv/bin", bytes.NewReader(val)).ok(t, 200, nil)
	var kv kvBody
	r := e.doStr("GET", "/v1/kv/bin", "").ok(t, 200, &kv)
	if kv.Value != nil || kv.ValueBase64 == nil || *kv.ValueBase64 != base64.StdEncoding.EncodeToString(val) {
		t.Fatalf("binary get %s", r.body)
	}
	r = e.doStr("GET", "/v1/kv/bin?raw=1", "").ok(t, 200, nil)
	if !bytes.Equal(r.body, val) {
		t.Fatalf("raw %x", r.body)
	}
	// Text with characters JSON or HTML would escape comes back verbatim.
	text := "<a href=\"x\">&amp;</a>\n\t✓"
	e.doStr("PUT", "/v1/kv/text", text).ok(t, 200, nil)
	e.doStr("GET", "/v1/kv/text", "").ok(t, 200, &kv)
	if *kv.Value != text {
		t.Fatalf("text %q", *kv.Value)
	}
}

func TestKeysInPaths(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var kv kvBody
	// %2F, a space and unicode, percent-encoded, are part of the key.
	e.doStr("PUT", "/v1/kv/a%2Fb%20c/%E2%9C%93", "1").ok(t, 200, nil)
	e.doStr("GET", "/v1/kv/a/b c/✓", "").ok(t, 200, &kv)
	if kv.Key != "/a/b c/✓" {
		t.Fatalf("key %q", kv.Key)
	}
	// A trailing slash is kept: /dir/ and /dir are two keys.
	e.doStr("PUT", "/v1/kv/dir/", "slash").ok(t, 200, nil)
	e.doStr("PUT", "/v1/kv/dir", "plain").ok(t, 200, nil)
	e.doStr("GET", "/v1/kv/dir/", "").ok(t, 200, &kv)
	if kv.Key != "/dir/" || *kv.Value != "slash" {
		t.Fatalf("trailing slash %+v", kv)
	}
	e.doStr("GET", "/v1/kv/dir", "").ok(t, 200, &kv)
	if kv.Key != "/dir" || *kv.Value != "plain" {
		t.Fatalf("no trailing slash %+v", kv)
	}
	// A '?' and a '%' in a key, encoded.
	e.doStr("PUT", "/v1/kv/q%3Fx%25y", "1").ok(t, 200, nil)
	e.doStr("GET", "/v1/kv/q%3Fx%25y", "").ok(t, 200, &kv)
	if kv.Key != "/q?x%y" {
		t.Fatalf("key %q", kv.Key)
	}

	rev := e.storeRevision()
	long := "/" + strings.Repeat("k", 1024)
	for _, bad := range []string{"/v1/kv/", "/v1/kv/a%00b", "/v1/kv/%FF", "/v1/kv" + long} {
		if bad != "/v1/kv/" { // "/" is a valid key
			e.doStr("PUT", bad, "x").fails(t, 400, "invalid_argument")
			e.doStr("GET", bad, "").fails(t, 400, "invalid_argument")
			e.doStr("DELETE", bad, "").fails(t, 400, "invalid_argument")
			e.doStr("POST", bad+"/incr", "").fails(t, 400, "invalid_argument")
		}
	}
	e.doStr("POST", "/v1/kv/incr", "").fails(t, 400, "invalid_argument")
	if e.storeRevision() != rev {
		t.Fatal("bad keys changed the store")
	}
	e.doStr("PUT", "/v1/kv"+long[:1024], "x").ok(t, 200, nil) // 1024 bytes: the limit
}

func TestPrefixRange(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, k := range []string{"/p/b", "/p/a", "/pq", "/q", "/o"} {
		e.doStr("PUT", "/v1/kv"+k, "v"+k).ok(t, 200, nil)
	}
	var rb rangeBody
	r := e.doStr("GET", "/v1/kv/p?prefix=true", "").ok(t, 200, &rb)
	if keysOf(rb.KVs) != "/p/a,/p/b,/pq" || rb.More || rb.Revision != 5 || r.revision(t) != 5 || *rb.KVs[0].Value != "v/p/a" {
		t.Fatalf("range %s", r.body)
	}
	e.doStr("GET", "/v1/kv/p/?prefix=true", "").ok(t, 200, &rb)
	if keysOf(rb.KVs) != "/p/a,/p/b" {
		t.Fatalf("range /p/ %s", keysOf(rb.KVs))
	}
	e.doStr("GET", "/v1/kv/p?prefix=true&limit=2", "").ok(t, 200, &rb)
	if keysOf(rb.KVs) != "/p/a,/p/b" || !rb.More {
		t.Fatalf("limit %+v", rb)
	}
	e.doStr("GET", "/v1/kv/p?prefix=true&limit=2&after=/p/b", "").ok(t, 200, &rb)
	if keysOf(rb.KVs) != "/pq" || rb.More {
		t.Fatalf("after %+v", rb)
	}
	e.doStr("GET", "/v1/kv/p?prefix=true&limit=3", "").ok(t, 200, &rb)
	if len(rb.KVs) != 3 || rb.More {
		t.Fatalf("exact limit %+v", rb)
	}
	r = e.doStr("GET", "/v1/kv/p?prefix=true&keys_only=true", "").ok(t, 200, &rb)
	if len(rb.KVs) != 3 || strings.Contains(string(r.body), "value") || rb.KVs[0].ModRevision == 0 {
		t.Fatalf("keys_only %s", r.body)
	}
	r = e.doStr("GET", "/v1/kv/p?prefix=true&count_only=true", "").ok(t, 200, nil)
	if string(r.body) != `{"revision":5,"count":3}` {
		t.Fatalf("count_only %s", r.body)
	}
	r = e.doStr("GET", "/v1/kv/none?prefix=true", "").ok(t, 200, nil)
	if string(r.body) != `{"revision":5,"kvs":[],"more":false}` {
		t.Fatalf("empty range %s", r.body)
	}
	e.doStr("GET", "/v1/kv/?prefix=true", "").ok(t, 200, &rb)
	if keysOf(rb.KVs) != "/o,/p/a,/p/b,/pq,/q" {
		t.Fatalf("everything %s", keysOf(rb.KVs))
	}
	e.doStr("GET", "/v1/kv/p?prefix=yes", "").fails(t, 400, "invalid_argument")
	for _, q := range []string{"limit=-1", "limit=1.5", "keys_only=2", "count_only=x", "stale=no!", "raw=true", "limit=1%ZZ"} {
		e.doStr("GET", "/v1/kv/p?prefix=true&"+q, "").fails(t, 400, "invalid_argument")
	}
}

func TestCAS(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// cas=0: only if absent.
	e.doStr("PUT", "/v1/kv/c?cas=0", "1").ok(t, 200, nil)
	ae := e.doStr("PUT", "/v1/kv/c?cas=0", "2").fails(t, 409, "cas_failed")
	if ae.Error.CurrentModRevision == nil || *ae.Error.CurrentModRevision != 1 {
		t.Fatalf("current_mod_revision %+v", ae.Error)
	}
	e.doStr("PUT", "/v1/kv/c?cas=7", "2").fails(t, 409, "cas_failed")
	e.doStr("PUT", "/v1/kv/c?cas=1", "2").ok(t, 200, nil)
	// Absent key: current_mod_revision is present, and 0.
	r := e.doStr("PUT", "/v1/kv/absent?cas=3", "x")
	ae = r.fails(t, 409, "cas_failed")
	if ae.Error.CurrentModRevision == nil || *ae.Error.CurrentModRevision != 0 || !strings.Contains(string(r.body), `"current_mod_revision":0`) {
		t.Fatalf("absent cas %s", r.body)
	}
	e.doStr("DELETE", "/v1/kv/c?cas=1", "").fails(t, 409, "cas_failed")
	e.doStr("DELETE", "/v1/kv/absent?cas=1", "").fails(t, 409, "cas_failed")
	rev := e.storeRevision()
	// A malformed query (a bad escape, a semicolon) is refused, not read
	// as if the parameter were absent: that would make a CAS write
	// unconditional.
	for _, q := range []string{"cas=-1", "cas=x", "cas=", "lease=x", "lease=0", "lease=-3", "prev=maybe", "cas=1%ZZ", "cas=1;x=y", "x=%ZZ&cas=1"} {
		e.doStr("PUT", "/v1/kv/c?"+q, "z").fails(t, 400, "invalid_argument")
	}
	e.doStr("DELETE", "/v1/kv/c?prefix=true&cas=2", "").fails(t, 400, "invalid_argument")
	e.doStr("DELETE", "/v1/kv/c?cas=x", "").fails(t, 400, "invalid_argument")
	e.doStr("DELETE", "/v1/kv/c?cas=1%ZZ", "").fails(t, 400, "invalid_argument")
	e.doStr("DELETE", "/v1/kv/c?prefix=2", "").fails(t, 400, "invalid_argument")
	e.doStr("PUT", "/v1/kv/c?lease=123", "z").fails(t, 404, "lease_not_found")
	if e.storeRevision() != rev {
		t.Fatal("refused writes changed the store")
	}
	var d struct {
		Revision int64 `json:"revision"`
		Deleted  int64 `json:"deleted"`
	}
	e.doStr("DELETE", "/v1/kv/c?cas=2", "").ok(t, 200, &d)
	if d.Deleted != 1 || d.Revision != rev+1 {
		t.Fatalf("cas delete %+v", d)
	}
}

func TestLeaseAttach(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := e.grant(30, "/n")
	var kv kvBody
	e.doStr("PUT", "/v1/kv/n/ep?lease="+id, "x").ok(t, 200, nil)
	r := e.doStr("GET", "/v1/kv/n/ep", "").ok(t, 200, &kv)
	if kv.Lease == nil || *kv.Lease != id || !strings.Contains(string(r.body), `"lease":"`+id+`"`) {
		t.Fatalf("lease field %s", r.body)
	}
}

func TestDelete(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, k := range []string{"/d/a", "/d/b", "/d/c", "/e"} {
		e.doStr("PUT", "/v1/kv"+k, "v").ok(t, 200, nil)
	}
	var d struct {
		Revision int64 `json:"revision"`
		Deleted  int64 `json:"deleted"`
	}
	r := e.doStr("DELETE", "/v1/kv/e", "").ok(t, 200, &d)
	if d.Deleted != 1 || d.Revision != 5 || r.revision(t) != 5 {
		t.Fatalf("delete %s", r.body)
	}
	r = e.doStr("DELETE", "/v1/kv/e", "").ok(t, 200, nil)
	if string(r.body) != `{"revision":5,"deleted":0}` {
		t.Fatalf("delete absent %s", r.body)
	}
	e.doStr("DELETE", "/v1/kv/d/?prefix=true", "").ok(t, 200, &d)
	if d.Deleted != 3 || d.Revision != 8 {
		t.Fatalf("prefix delete %+v", d)
	}
	var rb rangeBody
	e.doStr("GET", "/v1/kv/?prefix=true", "").ok(t, 200, &rb)
	if len(rb.KVs) != 0 || rb.Revision != 8 {
		t.Fatalf("after delete %+v", rb)
	}
}

func TestIncr(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var inc struct {
		Revision int64 `json:"revision"`
		Value    int64 `json:"value"`
	}
	r := e.doStr("POST", "/v1/kv/ctr/incr", "").ok(t, 200, &inc)
	if inc.Value != 1 || inc.Revision != 1 || r.revision(t) != 1 {
		t.Fatalf("incr %s", r.body)
	}
	e.doStr("POST", "/v1/kv/ctr/incr", `{"by":5}`).ok(t, 200, &inc)
	if inc.Value != 6 {
		t.Fatalf("incr by 5 %+v", inc)
	}
	e.doStr("POST", "/v1/kv/ctr/incr", `{}`).ok(t, 200, &inc)
	e.doStr("POST", "/v1/kv/ctr/incr", `{"by":-7}`).ok(t, 200, &inc)
	if inc.Value != 0 {
		t.Fatalf("incr by -7 %+v", inc)
	}
	r = e.doStr("GET", "/v1/kv/ctr?raw=true", "").ok(t, 200, nil)
	if string(r.body) != "0" {
		t.Fatalf("stored %q", r.body)
	}
	e.doStr("PUT", "/v1/kv/text", "abc").ok(t, 200, nil)
	rev := e.storeRevision()
	for _, body := range []string{`{"by":"1"}`, `{"by":1.5}`, `{"by":1} x`, `[`, `{"by":99999999999999999999}`} {
		e.doStr("POST", "/v1/kv/ctr/incr", body).fails(t, 400, "invalid_argument")
	}
	e.doStr("POST", "/v1/kv/text/incr", "").fails(t, 400, "invalid_argument")
	e.doStr("PUT", "/v1/kv/max", "9223372036854775807").ok(t, 200, nil)
	rev++
	e.doStr("POST", "/v1/kv/max/incr", "").fails(t, 400, "invalid_argument")
	if e.storeRevision() != rev {
		t.Fatal("refused incrs changed the store")
	}
}

func TestValueTooLarge(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	max := e.node.MaxValueBytes()
	rev := e.storeRevision()
	e.doStr("PUT", "/v1/kv/big", strings.Repeat("x", max+1)).fails(t, 413, "too_large")
	// Without a Content-Length (chunked), the limit holds while reading.
	body := io.MultiReader(strings.NewReader(strings.Repeat("y", max)), strings.NewReader("!"))
	req, err := http.NewRequest("PUT", e.ts.URL+"/v1/kv/big", struct{ io.Reader }{body})
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 413 {
		t.Fatalf("chunked oversized put: %d", res.StatusCode)
	}
	if e.storeRevision() != rev {
		t.Fatal("oversized puts changed the store")
	}
	e.doStr("PUT", "/v1/kv/big", strings.Repeat("x", max)).ok(t, 200, nil)
}
