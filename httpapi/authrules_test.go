package httpapi

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rosterhq/roster/api"
	"github.com/rosterhq/roster/fsm"
	"github.com/rosterhq/roster/internal/rulespy"
	"github.com/rosterhq/roster/internal/testutil"
	"github.com/rosterhq/roster/registry"
)

// TestAuthWriteRoutesAskTheRegistryRules: every route that writes has
// the registry's rule set (registry.MayApply, which the leader checks a
// forwarded write with again) judge the command it proposes, whole (the
// lease it attaches to, a prefix, what its answer shows), rather than a
// rule of its own; and what the rules refuse, the route refuses with 403
// and the rules' message.
func TestAuthWriteRoutesAskTheRegistryRules(t *testing.T) {
	var spy *rulespy.Spy
	e := newAuthEnvOpts(t, func(n *registry.Node) Backend { spy = &rulespy.Spy{Node: n}; return spy })
	e.putRole("svc", `{"rules":[{"prefix":"/svc/","read":true,"write":true}]}`)
	tok := e.createToken("svc", "svc")
	var l api.GrantResponse
	e.as(tok, "POST", "/v1/leases", `{"ttl":60,"name":"/svc/l"}`).ok(t, 201, &l)
	id := int64(l.ID)
	ls := l.ID.String()
	for _, tt := range []struct {
		method, path, body string
		want               []fsm.Command
		prev               bool
	}{
		{"PUT", "/v1/kv/svc/a?lease=" + ls + "&prev=true", "v", []fsm.Command{fsm.Put{Key: "/svc/a", Lease: id}}, true},
		{"PUT", "/v1/kv/svc/b", "v", []fsm.Command{fsm.Put{Key: "/svc/b"}}, false},
		{"DELETE", "/v1/kv/svc/?prefix=true", "", []fsm.Command{fsm.Delete{Key: "/svc/", Prefix: true}}, false},
		{"POST", "/v1/kv/svc/n/incr", "", []fsm.Command{fsm.Incr{Key: "/svc/n"}}, false},
		{"POST", "/v1/leases/" + ls + "/keepalive", "", []fsm.Command{fsm.KeepAlive{IDs: []int64{id}}}, false},
		{"POST", "/v1/leases/keepalive", `{"ids":["` + ls + `"]}`, []fsm.Command{fsm.KeepAlive{IDs: []int64{id}}}, false},
		{"PUT", "/key/svc/c", "v", []fsm.Command{fsm.Put{Key: "/svc/c"}}, false},
		{"DELETE", "/key/svc/c", "", []fsm.Command{fsm.Delete{Key: "/svc/c"}}, false},
		{"POST", "/key", `{"svc/e":"1","svc/d":"2"}`, []fsm.Command{fsm.Txn{Ops: []fsm.Command{fsm.Put{Key: "/svc/d"}, fsm.Put{Key: "/svc/e"}}}}, false},
		{"POST", "/put", `{"key":"svc/f","value":1}`, []fsm.Command{fsm.Put{Key: "/svc/f"}}, false},
		{"POST", "/inc", `{"key":"svc/f","value":1}`, []fsm.Command{fsm.Incr{Key: "/svc/f"}}, false},
		{"POST", "/delete", `{"key":"svc/f"}`, []fsm.Command{fsm.Delete{Key: "/svc/f"}}, false},
		{"POST", "/lease/keepalive/" + ls + "?key=x&data=d", "", []fsm.Command{fsm.KeepAlive{IDs: []int64{id}}, fsm.Put{Key: "/svc/l/x", Lease: id}}, false},
		{"DELETE", "/v1/leases/" + ls, "", []fsm.Command{fsm.Revoke{ID: id}}, false},
	} {
		spy.Take()
		r := e.as(tok, tt.method, tt.path, tt.body)
		if r.code != http.StatusOK {
			t.Errorf("%s %s: %d %s", tt.method, tt.path, r.code, r.body)
		}
		var want []string
		for _, c := range tt.want {
			a := registry.AnswerOutcome
			if tt.prev {
				a = registry.AnswerPrev
			}
			want = append(want, rulespy.Describe(c, a))
		}
		if got := spy.Take(); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s %s asked the rules about\n%s\nwant\n%s", tt.method, tt.path, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}

	// What the rules refuse, the route refuses, in the rules' words: the
	// routes that change the membership or the access control tables
	// too, whose records need admin.
	before := snapshotOf(e.node.FSM().State())
	for _, tt := range []struct {
		method, path, body string
		want               fsm.Command
		message            string
	}{
		{"PUT", "/v1/auth/roles/x", `{"rules":[]}`, fsm.PutRole{}, `permission denied: token "svc" may not change access control (admin only)`},
		{"POST", "/v1/auth/tokens", `{"name":"x","roles":["svc"]}`, fsm.PutRole{}, `permission denied: token "svc" may not change access control (admin only)`},
		{"DELETE", "/v1/cluster/members/n9", "", fsm.SetMember{}, `permission denied: token "svc" may not change the membership (admin only)`},
		{"POST", "/join", `{"id":"n9","addr":"127.0.0.1:1"}`, fsm.SetMember{}, `permission denied: token "svc" may not change the membership (admin only)`},
	} {
		spy.Take()
		d := e.as(tok, tt.method, tt.path, tt.body).fails(t, 403, api.CodePermissionDenied)
		if d.Error.Message != tt.message {
			t.Errorf("%s %s: message %q, want %q", tt.method, tt.path, d.Error.Message, tt.message)
		}
		if got, want := strings.Join(spy.Take(), "\n"), rulespy.Describe(tt.want, registry.AnswerOutcome); got != want {
			t.Errorf("%s %s asked the rules about %s, want %s", tt.method, tt.path, got, want)
		}
	}
	r := e.as(tok, "DELETE", "/v1/kv/s?prefix=true", "")
	d := r.fails(t, 403, api.CodePermissionDenied)
	if want := `permission denied: token "svc" may not delete every key under "/s"`; d.Error.Message != want {
		t.Errorf("message %q, want %q", d.Error.Message, want)
	}
	if after := snapshotOf(e.node.FSM().State()); after != before {
		t.Fatalf("a refused delete changed the state:\n%s\n---\n%s", before, after)
	}
}

// newAuthEnvOpts is newAuthEnv with the server's backend wrapped.
func newAuthEnvOpts(t *testing.T, backend func(*registry.Node) Backend) *env {
	t.Helper()
	e := newEnvOpts(t, envOptions{
		node:    func(rc *registry.Config) { rc.Auth, rc.RootTokenHash = true, registry.HashToken(rootSecret) },
		srv:     func(sc *Config) { sc.Auth = true },
		backend: backend,
	})
	testutil.Eventually(t, 10*time.Second, "root token created", func() bool {
		return e.as(rootSecret, "GET", "/v1/auth/whoami", "").code == 200
	})
	return e
}
