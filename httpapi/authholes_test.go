package httpapi

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

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
	return b.Node.Read(ctx, false)
}

func (b *laggingBackend) Authenticate(token string) (*registry.Principal, error) {
	return registry.Authenticate(b.replica(), token)
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
