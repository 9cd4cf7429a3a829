package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rosterhq/roster/fsm"
	"github.com/rosterhq/roster/registry"
)

// FuzzHTTP sends random requests (method, target with path and query,
// headers, body) to the real handler chain in front of a real one-member
// node, and checks what the contract promises of every answer:
//
//   - it is a documented success shape, or a 4xx/5xx with the JSON error
//     envelope whose code belongs to its status (500 is a bug);
//   - nothing panicked, not even behind the recovery middleware;
//   - an answer with a 4xx changed nothing: same revision, keys, leases,
//     members.
//
// The seeds below (and testdata/fuzz/FuzzHTTP) run with every go test.
//
//	go test -run '^$' -fuzz=FuzzHTTP -fuzztime=5m ./httpapi/
func FuzzHTTP(f *testing.F) {
	for _, s := range httpSeeds {
		f.Add(s[0], s[1], s[2], []byte(s[3]))
	}
	fz := newFuzzEnv(f)
	f.Fuzz(func(t *testing.T, method, target, header string, body []byte) {
		req := fuzzRequest(method, target, header, body)
		if req == nil {
			return // net/http would have refused it before any handler
		}
		fz.panicked.Store(nil)
		before, expired := fz.fingerprint(), fz.e.node.FSM().Expired()
		ctx, cancel := context.WithTimeout(context.Background(), fuzzRequestTimeout(req))
		defer cancel()
		rec := httptest.NewRecorder()
		fz.e.srv.Handler().ServeHTTP(rec, req.WithContext(ctx))

		if p := fz.panicked.Load(); p != nil {
			t.Fatalf("%s %s: a handler panicked (the recovery middleware answered): %s", req.Method, req.RequestURI, *p)
		}
		checkAnswer(t, req, rec)
		if rec.Code >= 400 && rec.Code < 500 {
			if after := fz.fingerprint(); after != before && fz.e.node.FSM().Expired() == expired {
				t.Fatalf("%s %s answered %d %s but changed the state:\n before %s\n after  %s",
					req.Method, req.RequestURI, rec.Code, rec.Body.Bytes(), before, after)
			}
		}
	})
}

// httpSeeds: method, target, header lines, body. One of each route, good
// and bad, plus the shapes that found bugs before.
var httpSeeds = [][4]string{
	{"GET", "/healthz", "", ""},
	{"HEAD", "/readyz", "", ""},
	{"GET", "/metrics", "", ""},
	{"GET", "/v1/cluster", "", ""},
	{"POST", "/v1/cluster/snapshot", "", ""},
	{"POST", "/v1/cluster/members", "Content-Type: application/json", `{"id":"n9","raft_addr":"127.0.0.1:1"}`},
	{"DELETE", "/v1/cluster/members/n9", "", ""},
	{"POST", "/v1/leases", "", `{"ttl":60,"name":"/svc/a"}`},
	{"POST", "/v1/leases", "", `{"ttl":1}`},
	{"POST", "/v1/leases", "", `{"ttl":60,"id":"00012"}`},
	{"POST", "/v1/leases", "", `{"ttl":60} {"ttl":60}`},
	{"GET", "/v1/leases?limit=2&after=0", "", ""},
	{"GET", "/v1/leases?after=-1", "", ""},
	{"GET", "/v1/leases/123?keys=true", "", ""},
	{"POST", "/v1/leases/123/keepalive", "", ""},
	{"POST", "/v1/leases/keepalive", "", `{"ids":["1","2",3]}`},
	{"POST", "/v1/leases/keepalive", "", `{"ids":["0"]}`},
	{"DELETE", "/v1/leases/99999999999999999999", "", ""},
	{"PUT", "/v1/kv/a/b?prev=true", "", "value"},
	{"PUT", "/v1/kv/a/b?cas=0&lease=5", "", "v"},
	{"PUT", "/v1/kv/no-slash-after%00nul", "", "v"},
	{"PUT", "/v1/kv/%ff%fe", "", "v"},
	{"GET", "/v1/kv/a/?prefix=true&limit=1&after=/a/a&keys_only=true", "", ""},
	{"GET", "/v1/kv/a/?prefix=true&count_only=true&stale=true", "", ""},
	{"GET", "/v1/kv/a/b?raw=true", "", ""},
	{"GET", "/v1/kv/a/b?raw=true&prefix=true", "", ""},
	{"GET", "/v1/kv/a/b?index=1&wait=10ms", "", ""},
	{"GET", "/v1/kv/a/b?wait=1s", "", ""},
	{"GET", "/v1/kv/a/b?index=1&wait=-5s", "", ""},
	{"DELETE", "/v1/kv/a/?prefix=true", "", ""},
	{"DELETE", "/v1/kv/a/b?cas=7", "", ""},
	{"DELETE", "/v1/kv/a/?prefix=true&cas=1", "", ""},
	{"POST", "/v1/kv/n/incr", "", `{"by":-3}`},
	{"POST", "/v1/kv/n/incr", "", `{"by":9223372036854775807}`},
	{"POST", "/v1/kv/n/other", "", ""},
	{"GET", "/v1/watch/a/?prefix=true&rev=0&prev_kv=true", "", ""},
	{"GET", "/v1/watch/a/b", "Last-Event-ID: x", ""},
	// The largest revision once overflowed the history's lookup: 500.
	{"GET", "/v1/watch/a/b?rev=9223372036854775807", "", ""},
	{"GET", "/v1/watch/a/b", "Last-Event-ID: 9223372036854775807", ""},
	{"GET", "/v1/kv/a/b?index=9223372036854775807&wait=10ms", "", ""},
	{"PATCH", "/v1/kv/a", "", ""},
	{"GET", "/nope", "", ""},
	{"POST", "/lease/grant?ttl=10&name=/esq/n1", "", ""},
	{"POST", "/lease/grant", "Content-Type: application/x-www-form-urlencoded", "ttl=10&name=%zz"},
	{"POST", "/lease/keepalive/1", "Content-Type: application/x-www-form-urlencoded", "key=info&data=x"},
	{"POST", "/lease/revoke/1", "", ""},
	{"POST", "/lease/timetolive/1", "", ""},
	{"POST", "/lease/kv/info", "Content-Type: multipart/form-data; boundary=x", "--x\r\nContent-Disposition: form-data; name=\"prefix\"\r\n\r\n/esq\r\n--x--\r\n"},
	{"PUT", "/key/k", "", "raw"},
	{"GET", "/key/k", "", ""},
	{"DELETE", "/key/k", "", ""},
	{"POST", "/join", "", `{"id":"n2","addr":"127.0.0.1:2"}`},
	{"POST", "/key", "", `{"a":"b"}`},
	{"POST", "/put", "", `{"key":"k","value":1}`},
	{"POST", "/get", "", `{"key":"k"}`},
	{"POST", "/inc", "", `{"key":"k","value":"x"}`},
	{"GET", "/", "If-None-Match: \"x\"", ""},
	{"GET", "/ui/app.js", "", ""},
	{"GET", "/ui/../v1/cluster", "", ""},
	{"GET", "/v1/cluster/status", "", ""},
}

// fuzzEnv is one node and server per fuzzing process.
type fuzzEnv struct {
	e        *env
	panicked *atomic.Pointer[string]
}

func newFuzzEnv(f *testing.F) *fuzzEnv {
	panicked := new(atomic.Pointer[string])
	e := newEnvOpts(f, envOptions{
		// Quiet (a log line per input would drown the fuzzer), except for
		// the record of a recovered panic.
		log:     slog.New(panicCatcher{panicked}),
		backend: func(n *registry.Node) Backend { return fuzzBackend{n} },
	})
	return &fuzzEnv{e: e, panicked: panicked}
}

// fingerprint is what a refused request must leave as it was.
func (fz *fuzzEnv) fingerprint() string {
	st := fz.e.node.FSM().State()
	return fmt.Sprintf("revision=%d keys=%d leases=%d members=%d", st.Revision(), st.KeyCount(), st.LeaseCount(), len(st.Members()))
}

// fuzzBackend is the node with two changes. Membership changes are refused
// (a fuzzed request adding a voter at a random address would take the
// one-member cluster's quorum away, and every later input would time out).
// Writes run to their end whatever the request's deadline, so that no
// write is still in flight when the next input compares states.
type fuzzBackend struct{ *registry.Node }

var errNotFuzzed = fmt.Errorf("%w: membership changes are not fuzzed", registry.ErrNoLeader)

func (fuzzBackend) AddMember(context.Context, registry.JoinRequest) error { return errNotFuzzed }
func (fuzzBackend) RemoveMember(context.Context, string) error            { return errNotFuzzed }

func (b fuzzBackend) Grant(ctx context.Context, ttl int64, name string, id int64) (fsm.LeaseStatus, error) {
	return b.Node.Grant(context.WithoutCancel(ctx), ttl, name, id)
}

func (b fuzzBackend) Revoke(ctx context.Context, id int64) (int64, error) {
	return b.Node.Revoke(context.WithoutCancel(ctx), id)
}

func (b fuzzBackend) KeepAlive(ctx context.Context, ids []int64) ([]fsm.LeaseStatus, []int64, error) {
	return b.Node.KeepAlive(context.WithoutCancel(ctx), ids)
}

func (b fuzzBackend) Put(ctx context.Context, p fsm.Put) (fsm.Result, error) {
	return b.Node.Put(context.WithoutCancel(ctx), p)
}

func (b fuzzBackend) Delete(ctx context.Context, d fsm.Delete) (fsm.Result, error) {
	return b.Node.Delete(context.WithoutCancel(ctx), d)
}

func (b fuzzBackend) Incr(ctx context.Context, key string, by int64) (fsm.Result, error) {
	return b.Node.Incr(context.WithoutCancel(ctx), key, by)
}

func (b fuzzBackend) Txn(ctx context.Context, ops []fsm.Command) (fsm.Result, error) {
	return b.Node.Txn(context.WithoutCancel(ctx), ops)
}

// panicCatcher is a log handler that drops everything but the record of a
// panic, which it keeps.
type panicCatcher struct{ got *atomic.Pointer[string] }

func (p panicCatcher) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelError }

func (p panicCatcher) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "panic") {
		var sb strings.Builder
		sb.WriteString(r.Message)
		r.Attrs(func(a slog.Attr) bool {
			sb.WriteString(" " + a.String())
			return true
		})
		s := sb.String()
		p.got.Store(&s)
	}
	return nil
}

func (p panicCatcher) WithAttrs([]slog.Attr) slog.Handler { return p }
func (p panicCatcher) WithGroup(string) slog.Handler      { return p }

// fuzzRequest parses the request net/http would hand the handler, or nil
// when net/http would have answered it itself (a malformed request line or
// header, an OPTIONS *). The Host and Content-Length headers are set here.
func fuzzRequest(method, target, header string, body []byte) *http.Request {
	var b bytes.Buffer
	b.WriteString(method + " " + target + " HTTP/1.1\r\nHost: roster\r\n")
	for _, line := range strings.Split(header, "\n") {
		line = strings.TrimRight(line, "\r")
		name, _, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "host", "content-length", "transfer-encoding":
			continue
		}
		b.WriteString(line + "\r\n")
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n", len(body))
	b.Write(body)
	req, err := http.ReadRequest(bufio.NewReader(&b))
	if err != nil || req.RequestURI == "*" || len(req.Header.Values("Host")) > 0 {
		return nil
	}
	req.RemoteAddr = "127.0.0.1:1"
	return req
}

// fuzzRequestTimeout: watches and blocking reads wait for changes that
// never come; they get a short while, everything else ample time.
func fuzzRequestTimeout(req *http.Request) time.Duration {
	if strings.HasPrefix(req.URL.Path, "/v1/watch") || req.URL.Query().Has("index") {
		return 50 * time.Millisecond
	}
	return 10 * time.Second
}

// codeStatus is the contract's status for each error code.
var codeStatus = map[string]int{
	"invalid_argument": 400, "unauthenticated": 401, "permission_denied": 403,
	"not_found": 404, "lease_not_found": 404, "method_not_allowed": 405,
	"cas_failed": 409, "already_exists": 409, "compacted": 410, "too_large": 413,
	"rate_limited": 429, "internal": 500, "no_leader": 503, "not_ready": 503, "timeout": 504,
}

// demoRoutes answer errors as {"error": "message"}, as the demo they come
// from did (API.md "Compatibility routes").
var demoRoutes = map[string]bool{"/put": true, "/get": true, "/delete": true, "/inc": true}

// checkAnswer checks one answer against the contract's shapes.
func checkAnswer(t *testing.T, req *http.Request, rec *httptest.ResponseRecorder) {
	t.Helper()
	code, ct, body := rec.Code, rec.Header().Get("Content-Type"), rec.Body.Bytes()
	what := fmt.Sprintf("%s %q answered %d (%s) %.300q", req.Method, req.RequestURI, code, ct, body)
	if console := req.URL.Path == "/" || strings.HasPrefix(req.URL.Path, "/ui/"); console && (code < 300 || code == http.StatusNotModified) {
		// The web console: a page and the files it loads, of their own
		// types (API.md "Web console"), and 304 to a browser's cache.
		if code != http.StatusNotModified && ct == "" {
			t.Fatalf("%s: a console file without a content type", what)
		}
		return
	}
	switch {
	case code < 200 || code >= 300 && code < 400:
		t.Fatalf("%s: neither a success nor an error", what)
	case code < 300:
		switch {
		case strings.HasPrefix(ct, contentJSON):
			if req.Method != http.MethodHead && !json.Valid(body) {
				t.Fatalf("%s: invalid JSON", what)
			}
		case ct == "text/event-stream", ct == contentBinary, strings.HasPrefix(ct, "text/plain"):
		case ct == "" && len(body) == 0:
		default:
			t.Fatalf("%s: undocumented content type", what)
		}
		return
	}
	if !strings.HasPrefix(ct, contentJSON) {
		t.Fatalf("%s: an error that is not JSON", what)
	}
	if req.Method == http.MethodHead && len(body) == 0 {
		return
	}
	var env struct {
		Error json.RawMessage `json:"error"`
	}
	if err := json.Unmarshal(body, &env); err != nil || env.Error == nil {
		t.Fatalf("%s: not an error envelope: %v", what, err)
	}
	var detail struct{ Code, Message string }
	if err := json.Unmarshal(env.Error, &detail); err != nil {
		var msg string
		if demoRoutes[req.URL.Path] && json.Unmarshal(env.Error, &msg) == nil && msg != "" {
			return
		}
		t.Fatalf("%s: error is neither an object nor (on a demo route) a message: %v", what, err)
	}
	if detail.Message == "" || codeStatus[detail.Code] != code {
		t.Fatalf("%s: code %q with status %d, or no message", what, detail.Code, code)
	}
	if code == http.StatusInternalServerError {
		t.Fatalf("%s: an internal error is a bug", what)
	}
}
