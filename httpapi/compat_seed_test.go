package httpapi

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// formType is what `curl -d` sends: the seed scripts' bodies are JSON
// whatever their Content-Type says.
const formType = "application/x-www-form-urlencoded"

// snapshotKV is everything stored, for "nothing changed" checks.
func (e *env) snapshotKV() string {
	e.t.Helper()
	return string(e.doStr(http.MethodGet, "/v1/kv/?prefix=true", "").ok(e.t, 200, nil).body)
}

// TestCompatSetKeys is hraftd's `curl -XPOST localhost:11000/key -d
// '{"foo": "bar"}'`: every key of the object is stored under /key, in one
// entry, with consecutive revisions in key order.
func TestCompatSetKeys(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.doStr("PUT", "/v1/kv/m", "x") // revision 1
	r := e.doStr("POST", "/key", `{"foo": "bar", "a": "b", "m": "é\u00e9", "dir/sub": ""}`, "Content-Type", formType).ok(t, 200, nil)
	if len(r.body) != 0 || r.revision(t) != 5 {
		t.Fatalf("answer %q, revision %s", r.body, r.hdr.Get("X-Roster-Revision"))
	}
	var list struct {
		KVs []kvBody `json:"kvs"`
	}
	e.doStr("GET", "/v1/kv/?prefix=true", "").ok(t, 200, &list)
	got := []string{}
	for _, kv := range list.KVs {
		got = append(got, kv.Key+"="+*kv.Value+"@"+strconv.FormatInt(kv.ModRevision, 10))
	}
	// Key order: /a, /dir/sub, /foo, /m.
	want := "/a=b@2 /dir/sub=@3 /foo=bar@4 /m=éé@5"
	if strings.Join(got, " ") != want {
		t.Fatalf("stored %q, want %q", strings.Join(got, " "), want)
	}
	// hraftd's reads are raftd's raw route: GET /key/foo answers bar.
	if r := e.doStr("GET", "/key/foo", "").ok(t, 200, nil); string(r.body) != "bar" {
		t.Fatalf("GET /key/foo = %q", r.body)
	}
}

// TestCompatSetKeysBadBodies: every refused body changes nothing, not even
// the keys of the object that were fine.
func TestCompatSetKeysBadBodies(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.doStr("POST", "/key", `{"keep": "me"}`).ok(t, 200, nil)
	rev, before := e.storeRevision(), e.snapshotKV()
	big := strings.Repeat("x", e.node.MaxValueBytes()+1)
	for _, tc := range []struct{ body, code string }{
		{``, "invalid_argument"},
		{`{}`, "invalid_argument"},
		{` { } `, "invalid_argument"},
		{`null`, "invalid_argument"},
		{`[]`, "invalid_argument"},
		{`["a", "b"]`, "invalid_argument"},
		{`"a"`, "invalid_argument"},
		{`{"a": 1}`, "invalid_argument"},
		{`{"a": null}`, "invalid_argument"},
		{`{"a": true}`, "invalid_argument"},
		{`{"a": {"b": "c"}}`, "invalid_argument"},
		{`{"a": ["b"]}`, "invalid_argument"},
		{`{"ok": "fine", "b": 2}`, "invalid_argument"},
		{`{"a": "x"} {"b": "y"}`, "invalid_argument"},
		{`{"a": "x"`, "invalid_argument"},
		{`{"a\u0000b": "x"}`, "invalid_argument"},
		{"{\"a\xffb\": \"x\"}", "invalid_argument"}, // not UTF-8
		{"{\"a\": \"\xff\"}", "invalid_argument"},
		{`{"` + strings.Repeat("k", 1100) + `": "x"}`, "invalid_argument"},
		{`{"ok": "fine", "big": "` + big + `"}`, "too_large"},
	} {
		status := 400
		if tc.code == "too_large" {
			status = 413
		}
		r := e.doStr("POST", "/key", tc.body, "Content-Type", formType)
		r.fails(t, status, tc.code)
	}
	if e.storeRevision() != rev || e.snapshotKV() != before {
		t.Fatal("a refused POST /key changed the store")
	}
}

// demoAnswer asserts a demo route's answer: the status and the exact body.
func demoAnswer(t *testing.T, r response, code int, body string) {
	t.Helper()
	if r.code != code || string(r.body) != body {
		t.Fatalf("answer %d %s, want %d %s", r.code, r.body, code, body)
	}
}

// demoError asserts the demo's error shape: exactly {"error": "<message>"}.
func demoErr(t *testing.T, r response, code int) {
	t.Helper()
	var m map[string]any
	if r.code != code || json.Unmarshal(r.body, &m) != nil || len(m) != 1 {
		t.Fatalf("answer %d %s, want %d {\"error\": …}", r.code, r.body, code)
	}
	if msg, ok := m["error"].(string); !ok || msg == "" {
		t.Fatalf("error answer %s", r.body)
	}
}

// TestDemoRoutes replays what the gin + raft KV demo's users sent, with
// curl -d (a form Content-Type).
func TestDemoRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	post := func(path, body string) response {
		t.Helper()
		return e.doStr("POST", path, body, "Content-Type", formType)
	}
	demoAnswer(t, post("/put", `{"key":"name","value":"gin"}`), 200, `{"value":"gin"}`)
	demoAnswer(t, post("/get", `{"key":"name"}`), 200, `{"value":"gin"}`)
	if r := e.doStr("GET", "/key/name", "").ok(t, 200, nil); string(r.body) != "gin" {
		t.Fatalf("the demo's key name is /name: %q", r.body)
	}
	// Integers in, integers out; the key may be an integer too.
	demoAnswer(t, post("/put", `{"key":7,"value":-17}`), 200, `{"value":-17}`)
	demoAnswer(t, post("/get", `{"key":"7"}`), 200, `{"value":-17}`)
	demoAnswer(t, post("/put", `{"key":"s","value":"42"}`), 200, `{"value":"42"}`)
	demoAnswer(t, post("/get", `{"key":"s"}`), 200, `{"value":42}`) // the stored text is what counts
	// Only the canonical spelling reads as an integer.
	for _, v := range []string{"007", "+5", "-0", "1.5", "9223372036854775808", " 1"} {
		e.doStr("PUT", "/key/n", v).ok(t, 200, nil)
		want, _ := json.Marshal(map[string]string{"value": v})
		demoAnswer(t, post("/get", `{"key":"n"}`), 200, string(want))
	}
	demoAnswer(t, post("/put", `{"key":"html","value":"<a&b>"}`), 200, `{"value":"<a&b>"}`)
	demoErr(t, post("/get", `{"key":"absent"}`), 404)

	demoAnswer(t, post("/inc", `{"key":"c","value":5}`), 200, `{"value":5}`) // absent: counts from 0
	demoAnswer(t, post("/inc", `{"key":"c","value":-7}`), 200, `{"value":-2}`)
	demoAnswer(t, post("/get", `{"key":"c"}`), 200, `{"value":-2}`)
	rev := e.storeRevision()
	demoErr(t, post("/inc", `{"key":"name","value":1}`), 400) // "gin" is not an integer
	e.doStr("PUT", "/key/max", "9223372036854775807").ok(t, 200, nil)
	demoErr(t, post("/inc", `{"key":"max","value":1}`), 400) // overflow
	if e.storeRevision() != rev+1 {
		t.Fatal("a refused /inc changed the store")
	}

	demoAnswer(t, post("/delete", `{"key":"name"}`), 200, `{"value":null}`)
	demoAnswer(t, post("/delete", `{"key":"name"}`), 200, `{"value":null}`) // absent: the same
	demoErr(t, post("/get", `{"key":"name"}`), 404)
	// A body over the limit is refused before it is read, in the demo's
	// shape too.
	demoErr(t, e.doStr("POST", "/put", strings.Repeat("x", 9<<20)), 413)
}

// TestDemoBadBodies: every malformed body is 400 {"error": …} and changes
// nothing.
func TestDemoBadBodies(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.doStr("POST", "/put", `{"key":"k","value":"v"}`).ok(t, 200, nil)
	e.doStr("POST", "/put", `{"key":"n","value":1}`).ok(t, 200, nil)
	rev, before := e.storeRevision(), e.snapshotKV()
	common := []string{
		``, ` `, `null`, `[]`, `[{"key":"k"}]`, `"k"`, `{}`, `{"key":null}`, `{"key":1.5}`, `{"key":1e3}`,
		`{"key":true}`, `{"key":{"a":1}}`, `{"key":["k"]}`, `{"key":"k","extra":1}`, `{"Key2":"k"}`,
		`{"key":"k"} {"key":"k"}`, `{"key":"k"`, `{"key":"a\u0000"}`, `{"key":"` + strings.Repeat("k", 1100) + `"}`,
		`{"key":99999999999999999999}`, "{\"key\":\"k\xff\"}",
	}
	cases := map[string][]string{
		"/put":    append([]string{"{\"key\":\"k\",\"value\":\"\xff\"}", `{"key":"k"}`, `{"key":"k","value":null}`, `{"key":"k","value":1.5}`, `{"key":"k","value":true}`, `{"key":"k","value":{"a":"b"}}`, `{"key":"k","value":["v"]}`}, common...),
		"/inc":    append([]string{`{"key":"n"}`, `{"key":"n","value":"1"}`, `{"key":"n","value":1.5}`, `{"key":"n","value":null}`, `{"key":"n","value":99999999999999999999}`}, common...),
		"/get":    append([]string{`{"key":"k","value":"v"}`}, common...),
		"/delete": append([]string{`{"key":"k","value":"v"}`}, common...),
	}
	for path, bodies := range cases {
		for _, b := range bodies {
			r := e.doStr("POST", path, b, "Content-Type", formType)
			if r.code != 400 {
				t.Errorf("POST %s %s: %d %s, want 400", path, b, r.code, r.body)
				continue
			}
			demoErr(t, r, 400)
		}
	}
	// A wrong method is a demo route's error too.
	for path := range cases {
		demoErr(t, e.doStr("GET", path, ""), 405)
	}
	if e.storeRevision() != rev || e.snapshotKV() != before {
		t.Fatal("a refused demo request changed the store")
	}
}
