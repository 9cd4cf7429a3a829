package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rosterhq/roster/api"
	"github.com/rosterhq/roster/fsm"
	"github.com/rosterhq/roster/internal/testutil"
	"github.com/rosterhq/roster/registry"
)

// TestAuthPrevNeedsRead: PUT ?prev=true answers the key's previous value,
// which is a read: a token that may write a key but not read it is
// refused, and the refusal changes nothing (etcd's rule for prev_kv).
func TestAuthPrevNeedsRead(t *testing.T) {
	e := newAuthEnv(t)
	e.putRole("dropbox", `{"rules":[{"prefix":"/drop/","write":true}]}`)
	w := e.createToken("writer", "dropbox")
	e.as(rootSecret, "PUT", "/v1/kv/drop/x", "secret").ok(t, 200, nil)

	e.as(w, "GET", "/v1/kv/drop/x", "").fails(t, 403, api.CodePermissionDenied)
	before := snapshotOf(e.node.FSM().State())
	r := e.as(w, "PUT", "/v1/kv/drop/x?prev=true", "mine")
	if strings.Contains(string(r.body), "secret") {
		t.Fatalf("a write-only token read the previous value through prev=true: %d %s", r.code, r.body)
	}
	r.fails(t, 403, api.CodePermissionDenied)
	if after := snapshotOf(e.node.FSM().State()); after != before {
		t.Fatalf("the refused put changed the state:\n%s\n---\n%s", before, after)
	}
	// Without prev the write is allowed.
	e.as(w, "PUT", "/v1/kv/drop/x", "mine").ok(t, 200, nil)
	e.as(w, "PUT", "/v1/kv/drop/x?prev=false", "mine").ok(t, 200, nil)
}

// laggingBackend is a real node seen the way a follower that has not yet
// applied the latest entries sees it: its own replica (stale reads, token
// checks) is an older state of the node, pinned by pin, while linearizable
// reads wait for the newest, as a follower's read index makes them do.
// States are immutable, so the pinned one is exactly what the node had.
type laggingBackend struct {
	*registry.Node
	pinned atomic.Pointer[fsm.State]
	linear atomic.Int64 // linearizable reads asked for
}

func (b *laggingBackend) pin()     { b.pinned.Store(b.Node.FSM().State()) }
func (b *laggingBackend) catchUp() { b.pinned.Store(nil) }
func (b *laggingBackend) replica() *fsm.State {
	if st := b.pinned.Load(); st != nil {
		return st
	}
	return b.Node.FSM().State()
}

func (b *laggingBackend) Read(ctx context.Context, stale bool) (*fsm.State, error) {
	if stale {
		return b.replica(), nil
	}
	b.linear.Add(1)
	return b.Node.Read(ctx, false)
}

func newLaggingAuthEnv(t *testing.T) (*env, *laggingBackend) {
	t.Helper()
	var lb *laggingBackend
	e := newEnvOpts(t, envOptions{
		node: func(rc *registry.Config) { rc.Auth, rc.RootTokenHash = true, registry.HashToken(rootSecret) },
		srv:  func(sc *Config) { sc.Auth = true },
		backend: func(n *registry.Node) Backend {
			lb = &laggingBackend{Node: n}
			return lb
		},
	})
	testutil.Eventually(t, 10*time.Second, "root token created", func() bool {
		return e.as(rootSecret, "GET", "/v1/auth/whoami", "").code == 200
	})
	return e, lb
}

// TestAuthLeaseChecksOnALaggingReplica: what a token may do to a lease
// depends on the keys attached to it, and a member's replica may not have
// applied the lease or its keys yet when the request arrives. The check
// must not judge from that older state while the route acts on the newest:
// a lease unknown to the replica is not a lease without keys.
func TestAuthLeaseChecksOnALaggingReplica(t *testing.T) {
	e, lb := newLaggingAuthEnv(t)
	e.putRole("api", `{"rules":[{"prefix":"/services/api/","read":true,"write":true}]}`)
	tok := e.createToken("api-registrar", "api")
	fm := []string{"Content-Type", "application/x-www-form-urlencoded"}

	// The replica stops here: it knows the token, nothing after.
	lb.pin()
	defer lb.catchUp()

	// Any token may grant, and name its lease as it likes; the
	// compatibility keep-alive stores {name}/{key}, which must be a key the
	// token may write, whether or not this member has applied the grant.
	var id string
	r := e.as(tok, "POST", "/lease/grant?ttl=60&name=/other", "")
	if r.code != 200 {
		t.Fatalf("grant: %d %s", r.code, r.body)
	}
	id = string(r.body)
	before := snapshotOf(e.node.FSM().State())
	r = e.as(tok, "POST", "/lease/keepalive/"+id, "key=x&data=planted", fm...)
	if after := snapshotOf(e.node.FSM().State()); r.code != 403 || after != before {
		t.Errorf("keep-alive storing /other/x by a token without write there: %d %s; state before:\n%s\n---\nafter:\n%s", r.code, r.body, before, after)
	} else {
		r.fails(t, 403, api.CodePermissionDenied)
	}

	// Root's lease with a key the token may not write: the token may not
	// renew, inspect or revoke it, though the replica has not seen it.
	var l api.GrantResponse
	e.as(rootSecret, "POST", "/v1/leases", `{"ttl":60,"name":"/secret"}`).ok(t, 201, &l)
	L := l.ID.String()
	e.as(rootSecret, "PUT", "/v1/kv/secret/k?lease="+L, "s").ok(t, 200, nil)
	for _, tc := range []struct{ method, path, body string }{
		{"GET", "/v1/leases/" + L + "?keys=true", ""},
		{"POST", "/v1/leases/" + L + "/keepalive", ""},
		{"POST", "/v1/leases/keepalive", `{"ids":["` + L + `"]}`},
		{"POST", "/lease/timetolive/" + L, ""},
		{"POST", "/lease/keepalive/" + L, ""},
		{"POST", "/lease/revoke/" + L, ""},
		{"DELETE", "/v1/leases/" + L, ""},
	} {
		r := e.as(tok, tc.method, tc.path, tc.body)
		if r.code != 403 {
			t.Errorf("%s %s by a token without write on the lease's key: %d %s", tc.method, tc.path, r.code, r.body)
		}
	}
	if _, ok := e.node.FSM().State().Get("/secret/k"); !ok {
		t.Fatal("a token without write on /secret/k revoked its lease")
	}
}

// TestAuthKnownLeaseCheckedLocally: a keep-alive of a lease this member
// has applied is judged from its own replica, without a linearizable read
// (a read index on a follower) in front of every renewal; refusals still
// hold.
func TestAuthKnownLeaseCheckedLocally(t *testing.T) {
	e, lb := newLaggingAuthEnv(t)
	e.putRole("api", `{"rules":[{"prefix":"/services/api/","read":true,"write":true}]}`)
	tok := e.createToken("api-registrar", "api")
	var mine, root api.GrantResponse
	e.as(tok, "POST", "/v1/leases", `{"ttl":60}`).ok(t, 201, &mine)
	e.as(tok, "PUT", "/v1/kv/services/api/n1?lease="+mine.ID.String(), "v").ok(t, 200, nil)
	e.as(rootSecret, "POST", "/v1/leases", `{"ttl":60}`).ok(t, 201, &root)
	e.as(rootSecret, "PUT", "/v1/kv/secret/k?lease="+root.ID.String(), "s").ok(t, 200, nil)
	before := lb.linear.Load()
	for _, path := range []string{"/v1/leases/" + mine.ID.String() + "/keepalive", "/lease/keepalive/" + mine.ID.String()} {
		if r := e.as(tok, "POST", path, ""); r.code != 200 {
			t.Fatalf("%s: %d %s", path, r.code, r.body)
		}
	}
	e.as(tok, "POST", "/v1/leases/"+root.ID.String()+"/keepalive", "").fails(t, 403, api.CodePermissionDenied)
	if n := lb.linear.Load() - before; n != 0 {
		t.Fatalf("%d linearizable reads for keep-alives of leases the member knows, want none", n)
	}
}

// tokenID finds a token's ID by its name.
func (e *env) tokenID(name string) string {
	e.t.Helper()
	var list api.TokenList
	e.as(rootSecret, "GET", "/v1/auth/tokens", "").ok(e.t, 200, &list)
	for _, tk := range list.Tokens {
		if tk.Name == name {
			return tk.ID
		}
	}
	e.t.Fatalf("no token named %q", name)
	return ""
}

// endsWithout waits for the stream to end and fails if it delivers an
// event for key first.
func (s *stream) endsWithout(key string) {
	s.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				return
			}
			if strings.Contains(ev.data, `"key":"`+key+`"`) {
				s.t.Fatalf("event delivered after the token lost its rights: %s", ev.data)
			}
		case <-deadline:
			s.t.Fatalf("the stream stayed open after the token lost its rights")
		}
	}
}

// TestAuthOpenStreamsFollowAccessChanges: a token's rights are in force as
// soon as a change applies, also for the requests it has open: a watch
// whose token is deleted, or whose role no longer covers the prefix,
// delivers nothing more and ends; a blocking read whose token is deleted
// while it waits answers 401, not the data.
func TestAuthOpenStreamsFollowAccessChanges(t *testing.T) {
	e := newAuthEnv(t)
	e.putRole("api", `{"rules":[{"prefix":"/services/api/","read":true,"write":true}]}`)
	e.putRole("watcher", `{"rules":[{"prefix":"/services/","read":true}]}`)
	w := e.createToken("w", "api")
	r := e.createToken("r", "watcher")
	b := e.createToken("b", "api")

	ws := e.openWatch("/v1/watch/services/api/?prefix=true", "Authorization", "Bearer "+w)
	rs := e.openWatch("/v1/watch/services/?prefix=true", "Authorization", "Bearer "+r)
	e.as(rootSecret, "PUT", "/v1/kv/services/api/a", "1").ok(t, 200, nil)
	if _, ev := ws.next(); ev.KV.Key != "/services/api/a" {
		t.Fatalf("first event: %+v", ev)
	}
	if _, ev := rs.next(); ev.KV.Key != "/services/api/a" {
		t.Fatalf("first event: %+v", ev)
	}

	// The watch token is deleted, the other one's role narrowed.
	e.as(rootSecret, "DELETE", "/v1/auth/tokens/"+e.tokenID("w"), "").ok(t, 200, nil)
	e.putRole("watcher", `{"rules":[{"prefix":"/elsewhere/","read":true}]}`)
	e.as(rootSecret, "PUT", "/v1/kv/services/api/b", "2").ok(t, 200, nil)
	ws.endsWithout("/services/api/b")
	rs.endsWithout("/services/api/b")

	// A blocking read whose token goes while it waits.
	rev := e.as(rootSecret, "GET", "/v1/kv/services/api/?prefix=true", "").ok(t, 200, nil).revision(t)
	done := make(chan response, 1)
	go func() {
		done <- e.as(b, "GET", fmt.Sprintf("/v1/kv/services/api/?prefix=true&index=%d&wait=20s", rev), "")
	}()
	testutil.Eventually(t, 5*time.Second, "the blocking read waiting", func() bool {
		return promtest.ToFloat64(e.srv.metrics.blocking) == 1
	})
	e.as(rootSecret, "DELETE", "/v1/auth/tokens/"+e.tokenID("b"), "").ok(t, 200, nil)
	e.as(rootSecret, "PUT", "/v1/kv/services/api/c", "3").ok(t, 200, nil)
	select {
	case resp := <-done:
		resp.fails(t, 401, api.CodeUnauthenticated)
	case <-time.After(10 * time.Second):
		t.Fatal("the blocking read did not answer")
	}
}

// TestAuthDeletedTokenOnALaggingReplica: a member whose replica has not
// applied a token's deletion yet still takes the token for what it serves
// from that replica (stale reads), but a linearizable read answers from a
// state that has applied the deletion, and must not answer the token, on
// any route that reads.
func TestAuthDeletedTokenOnALaggingReplica(t *testing.T) {
	e, lb := newLaggingAuthEnv(t)
	e.putRole("api", `{"rules":[{"prefix":"/services/api/","read":true,"write":true}]}`)
	e.putRole("admin", `{"admin":true}`)
	tok := e.createToken("api-registrar", "api")
	adm := e.createToken("second-admin", "admin")
	var l api.GrantResponse
	e.as(rootSecret, "POST", "/v1/leases", `{"ttl":60,"name":"/services/api/svc"}`).ok(t, 201, &l)
	L := l.ID.String()
	e.as(rootSecret, "PUT", "/v1/kv/services/api/svc/n1?lease="+L, "x").ok(t, 200, nil)
	e.as(tok, "POST", "/lease/kv/n1", "prefix=/services/api/", "Content-Type", "application/x-www-form-urlencoded").ok(t, 200, nil)
	lb.pin()
	defer lb.catchUp()
	e.as(rootSecret, "DELETE", "/v1/auth/tokens/"+e.tokenID("api-registrar"), "").ok(t, 200, nil)
	e.as(rootSecret, "DELETE", "/v1/auth/tokens/"+e.tokenID("second-admin"), "").ok(t, 200, nil)

	e.as(tok, "GET", "/v1/kv/services/api/svc/n1?stale=true", "").ok(t, 200, nil)
	fm := []string{"Content-Type", "application/x-www-form-urlencoded"}
	for _, tc := range []struct {
		token, method, path, body string
		header                    []string
	}{
		{tok, "GET", "/v1/kv/services/api/svc/n1", "", nil},
		{tok, "GET", "/v1/kv/services/api/?prefix=true", "", nil},
		{tok, "GET", "/key/services/api/svc/n1", "", nil},
		{tok, "POST", "/get", `{"key":"services/api/svc/n1"}`, nil},
		{tok, "GET", "/v1/leases/" + L + "?keys=true", "", nil},
		{tok, "POST", "/lease/timetolive/" + L, "", nil},
		{tok, "POST", "/lease/kv/n1", "prefix=/services/api/", fm},
		{adm, "GET", "/v1/leases", "", nil},
		{adm, "GET", "/v1/auth/tokens", "", nil},
		{adm, "GET", "/v1/auth/roles", "", nil},
	} {
		r := e.as(tc.token, tc.method, tc.path, tc.body, tc.header...)
		if r.code != 401 {
			t.Errorf("%s %s with a deleted token: %d %s", tc.method, tc.path, r.code, r.body)
		}
	}
}

// TestAuthChangedRoleOnALaggingReplica: when a role changed between the
// check on the replica and the linearizable read, the route is checked
// again, body and all: refused if the role no longer covers the request,
// answered if it still does.
func TestAuthChangedRoleOnALaggingReplica(t *testing.T) {
	e, lb := newLaggingAuthEnv(t)
	e.putRole("narrowed", `{"rules":[{"prefix":"/services/","read":true}]}`)
	e.putRole("moved", `{"rules":[{"prefix":"/services/","read":true}]}`)
	narrowed := e.createToken("narrowed", "narrowed")
	moved := e.createToken("moved", "moved")
	e.as(rootSecret, "PUT", "/v1/kv/services/api/n1", "x").ok(t, 200, nil)
	lb.pin()
	defer lb.catchUp()
	e.putRole("narrowed", `{"rules":[{"prefix":"/elsewhere/","read":true}]}`)
	e.putRole("moved", `{"rules":[{"prefix":"/services/api/","read":true}]}`)

	if r := e.as(narrowed, "POST", "/get", `{"key":"services/api/n1"}`); r.code != 403 {
		t.Errorf("POST /get by a token whose role no longer covers the key: %d %s", r.code, r.body)
	}
	e.as(narrowed, "GET", "/v1/kv/services/api/n1", "").fails(t, 403, api.CodePermissionDenied)
	e.as(moved, "POST", "/get", `{"key":"services/api/n1"}`).ok(t, 200, nil)
	e.as(moved, "GET", "/v1/kv/services/api/n1", "").ok(t, 200, nil)
}

// TestAuthDebugRoutesNeedAdmin: with access control on, every request but
// the probes and /metrics needs a token; rosterd's -pprof profiles (and
// its command line) are an operator's: admin tokens only, not nobody.
func TestAuthDebugRoutesNeedAdmin(t *testing.T) {
	e := newEnvWith(t, func(rc *registry.Config) {
		rc.Auth, rc.RootTokenHash = true, registry.HashToken(rootSecret)
	}, func(sc *Config) {
		sc.Auth = true
		sc.Debug = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("profiles")) })
	})
	testutil.Eventually(t, 10*time.Second, "root token created", func() bool {
		return e.as(rootSecret, "GET", "/v1/auth/whoami", "").code == 200
	})
	e.putRole("api", `{"rules":[{"prefix":"/","read":true,"write":true}]}`)
	tok := e.createToken("api", "api")
	for _, m := range []string{"GET", "POST"} {
		e.as("", m, "/debug/pprof/", "").fails(t, 401, api.CodeUnauthenticated)
		e.as(tok, m, "/debug/pprof/", "").fails(t, 403, api.CodePermissionDenied)
		if r := e.as(rootSecret, m, "/debug/pprof/", ""); r.code != 200 || string(r.body) != "profiles" {
			t.Fatalf("%s /debug/pprof/ as root: %d %s", m, r.code, r.body)
		}
	}
}

// TestAuthDeletedTokenWritesRefusedByTheLeader: a follower whose replica
// has not applied a token's deletion takes the token, but every write it
// forwards for it is refused by the leader, which has applied the
// deletion (registry.WithCaller), and changes nothing; reads from the
// follower's replica (stale) are its own to answer.
func TestAuthDeletedTokenWritesRefusedByTheLeader(t *testing.T) {
	envs := newClusterEnvOpts(t, 2, func(rc *registry.Config) {
		rc.Auth, rc.RootTokenHash = true, registry.HashToken(rootSecret)
	}, func(sc *Config) { sc.Auth = true })
	leader, follower := envs[0], envs[1]
	testutil.Eventually(t, 10*time.Second, "root token created", func() bool {
		return leader.as(rootSecret, "GET", "/v1/auth/whoami", "").code == 200
	})
	leader.putRole("api", `{"rules":[{"prefix":"/services/","read":true,"write":true}]}`)
	leader.putRole("narrowed", `{"rules":[{"prefix":"/services/","read":true,"write":true}]}`)
	tok := leader.createToken("api-registrar", "api")
	narrowed := leader.createToken("narrowed", "narrowed")
	var l api.GrantResponse
	leader.as(tok, "POST", "/v1/leases", `{"ttl":60}`).ok(t, 201, &l)
	leader.as(tok, "PUT", "/v1/kv/services/a", "1").ok(t, 200, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := follower.node.Read(ctx, false); err != nil { // it has the token
		t.Fatal(err)
	}

	// The follower's API, judging tokens from a replica that stops here.
	lb := &laggingBackend{Node: follower.node}
	reg := prometheus.NewRegistry()
	srv, err := New(Config{Auth: true, Gatherer: reg}, lb, testLogger(t), reg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	lagging := &env{t: t, node: follower.node, srv: srv, ts: ts, client: ts.Client(), reg: reg}
	lb.pin()
	defer lb.catchUp()
	leader.as(rootSecret, "DELETE", "/v1/auth/tokens/"+leader.tokenID("api-registrar"), "").ok(t, 200, nil)
	leader.putRole("narrowed", `{"rules":[{"prefix":"/services/ok/","read":true,"write":true}]}`)

	lagging.as(tok, "GET", "/v1/kv/services/a?stale=true", "").ok(t, 200, nil)
	before := snapshotOf(leader.node.FSM().State())
	L := l.ID.String()
	fm := []string{"Content-Type", "application/x-www-form-urlencoded"}
	for _, tc := range []struct {
		method, path, body string
		header             []string
	}{
		{"PUT", "/v1/kv/services/b", "planted", nil},
		{"PUT", "/v1/kv/services/a?lease=" + L, "moved", nil},
		{"DELETE", "/v1/kv/services/a", "", nil},
		{"DELETE", "/v1/kv/services/?prefix=true", "", nil},
		{"POST", "/v1/kv/services/n/incr", `{"by":1}`, nil},
		{"POST", "/v1/leases", `{"ttl":60}`, nil},
		{"DELETE", "/v1/leases/" + L, "", nil},
		{"PUT", "/key/services/c", "planted", nil},
		{"POST", "/put", `{"key":"services/d","value":"planted"}`, nil},
		{"POST", "/lease/grant?ttl=60", "", nil},
		{"POST", "/lease/revoke/" + L, "", fm},
		{"POST", "/v1/leases/" + L + "/keepalive", "", nil},
		{"POST", "/v1/leases/keepalive", `{"ids":["` + L + `"]}`, nil},
		{"POST", "/lease/keepalive/" + L, "", fm},
	} {
		r := lagging.as(tok, tc.method, tc.path, tc.body, tc.header...)
		if r.code != 401 {
			t.Errorf("%s %s with a token the leader deleted: %d %s", tc.method, tc.path, r.code, r.body)
		}
	}
	if after := snapshotOf(leader.node.FSM().State()); after != before {
		t.Fatalf("writes of a deleted token changed the state:\n%s\n---\n%s", before, after)
	}

	// A token whose role was narrowed: what the role no longer allows is
	// refused, the rest goes through.
	for _, tc := range []struct{ method, path, body string }{
		{"PUT", "/v1/kv/services/b", "planted"},
		{"DELETE", "/v1/kv/services/?prefix=true", ""},
		{"POST", "/v1/kv/services/n/incr", `{"by":1}`},
		{"POST", "/key", `{"services/ok/x":"a","services/y":"b"}`},
	} {
		if r := lagging.as(narrowed, tc.method, tc.path, tc.body); r.code != 403 {
			t.Errorf("%s %s with a token whose role the leader narrowed: %d %s", tc.method, tc.path, r.code, r.body)
		}
	}
	if after := snapshotOf(leader.node.FSM().State()); after != before {
		t.Fatalf("writes of a narrowed token changed the state:\n%s\n---\n%s", before, after)
	}
	lagging.as(narrowed, "PUT", "/v1/kv/services/ok/x", "fine").ok(t, 200, nil)
}

// TestAuthIncrNeedsRead: POST /v1/kv/{key}/incr and the demo's /inc
// answer the key's new value, from which its old one follows (by 0 is a
// read): a token that may write a counter but not read it is refused,
// and the refusal changes nothing.
func TestAuthIncrNeedsRead(t *testing.T) {
	e := newAuthEnv(t)
	e.putRole("dropbox", `{"rules":[{"prefix":"/drop/","write":true}]}`)
	e.putRole("counter", `{"rules":[{"prefix":"/drop/","read":true,"write":true}]}`)
	w := e.createToken("writer", "dropbox")
	rw := e.createToken("counter", "counter")
	e.as(rootSecret, "PUT", "/v1/kv/drop/n", "41").ok(t, 200, nil)

	before := snapshotOf(e.node.FSM().State())
	for _, tc := range []struct{ path, body string }{
		{"/v1/kv/drop/n/incr", `{"by":0}`},
		{"/v1/kv/drop/n/incr", ``},
		{"/inc", `{"key":"drop/n","value":0}`},
	} {
		r := e.as(w, "POST", tc.path, tc.body)
		if strings.Contains(string(r.body), "41") || strings.Contains(string(r.body), "42") || r.code != 403 {
			t.Errorf("POST %s %s by a write-only token: %d %s, want 403", tc.path, tc.body, r.code, r.body)
		}
	}
	if after := snapshotOf(e.node.FSM().State()); after != before {
		t.Fatalf("a refused incr changed the state:\n%s\n---\n%s", before, after)
	}
	e.as(rw, "POST", "/v1/kv/drop/n/incr", `{"by":1}`).ok(t, 200, nil)
	e.as(rw, "POST", "/inc", `{"key":"drop/n","value":1}`).ok(t, 200, nil)
}

// TestAuthAttachingToAnotherTokensLease: a put that attaches a key to a
// lease needs what renewing the lease needs, write on every key already
// attached to it (etcd's checkLeasePuts). Otherwise a token could attach
// a key of its own to another token's lease, and the owner, no longer
// allowed to write every key attached, could not renew it: its
// registration would expire.
func TestAuthAttachingToAnotherTokensLease(t *testing.T) {
	e := newAuthEnv(t)
	e.putRole("a", `{"rules":[{"prefix":"/a/","read":true,"write":true}]}`)
	e.putRole("b", `{"rules":[{"prefix":"/b/","read":true,"write":true}]}`)
	a := e.createToken("a", "a")
	b := e.createToken("b", "b")
	var lb, la, free api.GrantResponse
	e.as(b, "POST", "/v1/leases", `{"ttl":60}`).ok(t, 201, &lb)
	e.as(b, "PUT", "/v1/kv/b/n1?lease="+lb.ID.String(), "10.0.0.1").ok(t, 200, nil)
	e.as(a, "POST", "/v1/leases", `{"ttl":60}`).ok(t, 201, &la)
	e.as(b, "POST", "/v1/leases", `{"ttl":60}`).ok(t, 201, &free)

	before := snapshotOf(e.node.FSM().State())
	e.as(a, "PUT", "/v1/kv/a/x?lease="+lb.ID.String(), "mine").fails(t, 403, api.CodePermissionDenied)
	if after := snapshotOf(e.node.FSM().State()); after != before {
		t.Fatalf("a refused put changed the state:\n%s\n---\n%s", before, after)
	}
	e.as(b, "POST", "/v1/leases/"+lb.ID.String()+"/keepalive", "").ok(t, 200, nil)

	// Its own lease, a lease without keys yet, and admin: allowed.
	e.as(a, "PUT", "/v1/kv/a/x?lease="+la.ID.String(), "mine").ok(t, 200, nil)
	e.as(a, "PUT", "/v1/kv/a/y?lease="+free.ID.String(), "mine").ok(t, 200, nil)
	e.as(rootSecret, "PUT", "/v1/kv/a/z?lease="+lb.ID.String(), "root's").ok(t, 200, nil)
}
