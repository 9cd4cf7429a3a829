package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/rosterhq/roster/api"
	"github.com/rosterhq/roster/fsm"
	"github.com/rosterhq/roster/internal/testutil"
	"github.com/rosterhq/roster/registry"
)

const rootSecret = "root-secret-for-tests-0123456789"

// newAuthEnv is a one-member node with access control on and the root
// token bootstrapped.
func newAuthEnv(t *testing.T) *env {
	t.Helper()
	e := newEnvWith(t, func(rc *registry.Config) {
		rc.Auth, rc.RootTokenHash = true, registry.HashToken(rootSecret)
	}, func(sc *Config) { sc.Auth = true })
	testutil.Eventually(t, 10*time.Second, "root token created", func() bool {
		return e.as(rootSecret, "GET", "/v1/auth/whoami", "").code == 200
	})
	return e
}

// as sends a request with token as its bearer token ("" for none).
func (e *env) as(token, method, path, body string, header ...string) response {
	e.t.Helper()
	if token != "" {
		header = append(header, "Authorization", "Bearer "+token)
	}
	return e.doStr(method, path, body, header...)
}

// createToken makes a token with roles through the API and returns its secret.
func (e *env) createToken(name string, roles ...string) string {
	e.t.Helper()
	b, _ := json.Marshal(api.CreateTokenRequest{Name: name, Roles: roles})
	var ct api.CreatedToken
	e.as(rootSecret, "POST", "/v1/auth/tokens", string(b)).ok(e.t, http.StatusCreated, &ct)
	if ct.ID == "" || !strings.HasPrefix(ct.Token, "roster_") || ct.Name != name {
		e.t.Fatalf("created token %+v", ct)
	}
	return ct.Token
}

func (e *env) putRole(name, body string) {
	e.t.Helper()
	e.as(rootSecret, "PUT", "/v1/auth/roles/"+name, body).ok(e.t, 200, nil)
}

// snapshotOf is everything a refused request must leave as it was.
func snapshotOf(st *fsm.State) string {
	var b strings.Builder
	fmt.Fprintf(&b, "rev=%d keys=%d leases=%d\n", st.Revision(), st.KeyCount(), st.LeaseCount())
	st.Range("/", "", func(kv *fsm.KV) bool {
		fmt.Fprintf(&b, "%s=%q@%d lease=%d\n", kv.Key, kv.Value, kv.ModRevision, kv.Lease)
		return true
	})
	st.Leases(0, func(l fsm.LeaseStatus) bool { fmt.Fprintf(&b, "lease %d %q\n", l.ID, l.Name); return true })
	fmt.Fprintf(&b, "%+v\n%+v\n", st.Roles(), st.Tokens())
	return b.String()
}

func TestEveryRouteHasAnAccessRule(t *testing.T) {
	e := newEnvWith(t, nil, func(sc *Config) { sc.Debug = http.NotFoundHandler() }) // every route registered
	registered := map[string]bool{}
	for _, r := range e.srv.engine.Routes() {
		key := r.Method + " " + r.Path
		registered[key] = true
		if _, ok := routeAccess[key]; !ok {
			t.Errorf("route %s has no entry in routeAccess (httpapi/auth.go): decide what it needs", key)
		}
	}
	for key := range routeAccess {
		if !registered[key] {
			t.Errorf("routeAccess has %s, which is not a registered route", key)
		}
	}
}

func TestAccessControl(t *testing.T) {
	e := newAuthEnv(t)
	e.putRole("api", `{"rules":[{"prefix":"/services/api/","read":true,"write":true}]}`)
	e.putRole("reader", `{"rules":[{"prefix":"/services/","read":true}]}`)
	reg := e.createToken("api-registrar", "api")
	disc := e.createToken("discoverer", "reader")

	// Data owned by root: a lease per service with a key attached.
	var l1, l2 api.GrantResponse
	e.as(rootSecret, "POST", "/v1/leases", `{"ttl":60,"name":"/services/api/esq"}`).ok(t, 201, &l1)
	e.as(rootSecret, "POST", "/v1/leases", `{"ttl":60,"name":"/services/web"}`).ok(t, 201, &l2)
	L1, L2 := l1.ID.String(), l2.ID.String()
	e.as(rootSecret, "PUT", "/v1/kv/services/api/n1?lease="+L1, "a").ok(t, 200, nil)
	e.as(rootSecret, "PUT", "/v1/kv/services/web/w1?lease="+L2, "w").ok(t, 200, nil)
	e.as(rootSecret, "PUT", "/v1/kv/other/x", "1").ok(t, 200, nil)
	form := "Content-Type"

	type req struct {
		token, method, path, body string
		want                      int
		header                    []string
	}
	fm := []string{form, "application/x-www-form-urlencoded"}
	cases := []req{
		// Open routes need nothing.
		{"", "GET", "/healthz", "", 200, nil},
		{"", "HEAD", "/healthz", "", 200, nil},
		{"", "GET", "/readyz", "", 200, nil},
		{"", "GET", "/metrics", "", 200, nil},
		{"", "GET", "/", "", 200, nil}, // the console asks for a token itself
		{"", "GET", "/v1/cluster/status?local=true", "", 401, nil},
		{reg, "GET", "/v1/cluster/status?local=true", "", 200, nil},
		// No token, or an unknown one: 401.
		{"", "GET", "/v1/kv/services/api/n1", "", 401, nil},
		{"", "PUT", "/v1/kv/services/api/n1", "x", 401, nil},
		{"", "POST", "/v1/leases", `{"ttl":10}`, 401, nil},
		{"", "GET", "/v1/cluster", "", 401, nil},
		{"", "GET", "/v1/auth/whoami", "", 401, nil},
		{"", "DELETE", "/v1/cluster/members/n1", "", 401, nil},
		{"", "POST", "/lease/grant?ttl=10", "", 401, nil},
		{"", "GET", "/key/other/x", "", 401, nil},
		{"roster_not-a-real-token", "GET", "/v1/kv/other/x", "", 401, nil},
		{rootSecret + "x", "GET", "/v1/leases", "", 401, nil},

		// The registrar: read and write under /services/api/ only.
		{reg, "PUT", "/v1/kv/services/api/n2", "b", 200, nil},
		{reg, "PUT", "/v1/kv/services/api/n2?cas=0", "b", 409, nil}, // allowed, fails on state
		{reg, "PUT", "/v1/kv/services/web/x", "b", 403, nil},
		{reg, "PUT", "/v1/kv/other/x?cas=0", "b", 403, nil},
		{reg, "GET", "/v1/kv/services/api/n1", "", 200, nil},
		{reg, "GET", "/v1/kv/services/api/n1?stale=true", "", 200, nil},
		{reg, "GET", "/v1/kv/services/api/?prefix=true", "", 200, nil},
		{reg, "GET", "/v1/kv/services/api/?prefix=true&count_only=true", "", 200, nil},
		{reg, "GET", "/v1/kv/services/?prefix=true", "", 403, nil}, // wider than the rule: refused, not filtered
		{reg, "GET", "/v1/kv/services/web/w1", "", 403, nil},
		{reg, "GET", "/v1/kv/?prefix=true", "", 403, nil},
		{reg, "POST", "/v1/kv/services/api/ctr/incr", `{"by":2}`, 200, nil},
		{reg, "POST", "/v1/kv/other/ctr/incr", `{"by":2}`, 403, nil},
		{reg, "DELETE", "/v1/kv/services/api/n2", "", 200, nil},
		{reg, "DELETE", "/v1/kv/services/web/w1", "", 403, nil},
		{reg, "DELETE", "/v1/kv/services/?prefix=true", "", 403, nil},
		{reg, "DELETE", "/v1/kv/services/api/zz/?prefix=true", "", 200, nil},
		{reg, "GET", "/v1/watch/services/?prefix=true", "", 403, nil},
		{reg, "GET", "/v1/watch/other/x", "", 403, nil},
		{reg, "POST", "/v1/leases", `{"ttl":10}`, 201, nil}, // any token may grant
		{reg, "GET", "/v1/cluster", "", 200, nil},
		{reg, "GET", "/v1/auth/whoami", "", 200, nil},
		// Leases: write on every attached key, or admin.
		{reg, "POST", "/v1/leases/" + L1 + "/keepalive", "", 200, nil},
		{reg, "POST", "/v1/leases/" + L2 + "/keepalive", "", 403, nil},
		{reg, "POST", "/v1/leases/keepalive", `{"ids":["` + L1 + `"]}`, 200, nil},
		{reg, "POST", "/v1/leases/keepalive", `{"ids":["` + L1 + `","` + L2 + `"]}`, 403, nil}, // one bad lease refuses the batch
		{reg, "GET", "/v1/leases/" + L1 + "?keys=true", "", 200, nil},
		{reg, "GET", "/v1/leases/" + L2, "", 403, nil},
		{reg, "DELETE", "/v1/leases/" + L2, "", 403, nil},
		{reg, "GET", "/v1/leases", "", 403, nil},                          // listing all leases: admin
		{reg, "PUT", "/v1/kv/services/api/n3?lease=" + L2, "c", 403, nil}, // attaching needs what renewing needs (etcd's checkLeasePuts)
		{reg, "PUT", "/v1/kv/services/api/n3?lease=" + L1, "c", 200, nil},
		// Admin routes.
		{reg, "POST", "/v1/cluster/snapshot", "", 403, nil},
		{reg, "POST", "/v1/cluster/members", `{"id":"n9","raft_addr":"127.0.0.1:1"}`, 403, nil},
		{reg, "DELETE", "/v1/cluster/members/n1", "", 403, nil},
		{reg, "GET", "/v1/auth/roles", "", 403, nil},
		{reg, "GET", "/v1/auth/roles/api", "", 403, nil},
		{reg, "PUT", "/v1/auth/roles/api", `{"admin":true}`, 403, nil},
		{reg, "DELETE", "/v1/auth/roles/api", "", 403, nil},
		{reg, "POST", "/v1/auth/tokens", `{"name":"x","roles":["root"]}`, 403, nil},
		{reg, "GET", "/v1/auth/tokens", "", 403, nil},
		{reg, "DELETE", "/v1/auth/tokens/root", "", 403, nil},
		// Compatibility routes, checked the same way.
		{reg, "POST", "/lease/grant?ttl=10&name=/services/api", "", 200, nil},
		{reg, "POST", "/lease/keepalive/" + L1, "key=n9&data=x", 200, fm},
		{reg, "POST", "/lease/keepalive/" + L1, "", 200, fm},
		{reg, "POST", "/lease/keepalive/" + L2, "key=n9&data=x", 403, fm},
		{reg, "POST", "/lease/revoke/" + L2, "", 403, nil},
		{reg, "POST", "/lease/timetolive/" + L2, "", 403, nil},
		{reg, "POST", "/lease/timetolive/" + L1, "", 200, nil},
		{reg, "POST", "/lease/kv/n9", "prefix=/services/api/", 200, fm},
		{reg, "POST", "/lease/kv/n9", "prefix=/services/api", 403, fm}, // also covers /services/apix...
		{reg, "POST", "/lease/kv/n1", "prefix=/services", 403, fm},
		{reg, "POST", "/lease/kv/n1", "prefix=", 403, fm},
		{reg, "PUT", "/key/services/api/k", "v", 200, nil},
		{reg, "GET", "/key/services/api/k", "", 200, nil},
		{reg, "DELETE", "/key/services/api/k", "", 200, nil},
		{reg, "PUT", "/key/other/x", "v", 403, nil},
		{reg, "GET", "/key/other/x", "", 403, nil},
		{reg, "DELETE", "/key/other/x", "", 403, nil},
		{reg, "POST", "/join", `{"id":"n9","addr":"127.0.0.1:1"}`, 403, nil},
		{reg, "POST", "/key", `{"services/api/h1":"1","services/api/h2":"2"}`, 200, nil},
		{reg, "POST", "/key", `{"services/api/h3":"1","other/h":"2"}`, 403, nil}, // all or nothing
		{reg, "POST", "/put", `{"key":"services/api/p","value":1}`, 200, nil},
		{reg, "POST", "/put", `{"key":"other/p","value":1}`, 403, nil},
		{"", "POST", "/put", `{"key":"services/api/p","value":1}`, 401, nil},
		{reg, "POST", "/get", `{"key":"services/api/p"}`, 200, nil},
		{reg, "POST", "/get", `{"key":"other/x"}`, 403, nil},
		{reg, "POST", "/inc", `{"key":"services/api/p","value":2}`, 200, nil},
		{reg, "POST", "/inc", `{"key":"other/n","value":2}`, 403, nil},
		{reg, "POST", "/delete", `{"key":"other/x"}`, 403, nil},
		{reg, "POST", "/delete", `{"key":"services/api/p"}`, 200, nil},

		// The discoverer: reads /services/, writes nothing.
		{disc, "GET", "/v1/kv/services/?prefix=true", "", 200, nil},
		{disc, "GET", "/v1/kv/services/web/w1", "", 200, nil},
		{disc, "GET", "/v1/kv/?prefix=true", "", 403, nil},
		{disc, "GET", "/v1/kv/other/x", "", 403, nil},
		{disc, "PUT", "/v1/kv/services/api/x", "v", 403, nil},
		{disc, "POST", "/v1/leases/" + L1 + "/keepalive", "", 403, nil},

		// Root may do everything.
		{rootSecret, "GET", "/v1/leases", "", 200, nil},
		{rootSecret, "GET", "/v1/kv/?prefix=true", "", 200, nil},
		{rootSecret, "POST", "/v1/leases/keepalive", `{"ids":["` + L1 + `","` + L2 + `"]}`, 200, nil},
		{rootSecret, "POST", "/v1/cluster/snapshot", "", 200, nil},
		{rootSecret, "GET", "/v1/auth/tokens", "", 200, nil},
	}
	for _, tc := range cases {
		before := snapshotOf(e.node.FSM().State())
		r := e.as(tc.token, tc.method, tc.path, tc.body, tc.header...)
		who := map[string]string{"": "nobody", reg: "registrar", disc: "discoverer", rootSecret: "root"}[tc.token]
		if who == "" {
			who = "a bad token"
		}
		if r.code != tc.want {
			t.Errorf("%s %s as %s: %d, want %d; %s", tc.method, tc.path, who, r.code, tc.want, r.body)
			continue
		}
		demo := map[string]bool{"/put": true, "/get": true, "/inc": true, "/delete": true}[tc.path]
		switch {
		case demo && tc.want >= 400:
			// The demo's routes answer errors in the demo's shape.
			var e struct{ Error string }
			if err := json.Unmarshal(r.body, &e); err != nil || e.Error == "" {
				t.Errorf("%s %s: error %s, want {\"error\": \"...\"}", tc.method, tc.path, r.body)
			}
		case tc.want == 401:
			r.fails(t, 401, api.CodeUnauthenticated)
			if r.hdr.Get("WWW-Authenticate") == "" {
				t.Errorf("%s %s: 401 without WWW-Authenticate", tc.method, tc.path)
			}
		case tc.want == 403:
			r.fails(t, 403, api.CodePermissionDenied)
		}
		if tc.want == 401 || tc.want == 403 {
			if after := snapshotOf(e.node.FSM().State()); after != before {
				t.Errorf("%s %s as %s was refused but changed the state:\n%s\n---\n%s", tc.method, tc.path, who, before, after)
			}
		}
	}

	// An allowed watch streams; the refusal above never opened one.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	hr, _ := http.NewRequestWithContext(ctx, "GET", e.ts.URL+"/v1/watch/services/api/?prefix=true", nil)
	hr.Header.Set("Authorization", "Bearer "+reg)
	resp, err := e.client.Do(hr)
	if err != nil || resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("allowed watch: %v %v", resp, err)
	}
	resp.Body.Close()

	// whoami describes the token; roles and tokens list without secrets.
	var who api.WhoAmI
	e.as(reg, "GET", "/v1/auth/whoami", "").ok(t, 200, &who)
	if who.Name != "api-registrar" || who.Admin || len(who.Roles) != 1 || who.Roles[0] != "api" {
		t.Fatalf("whoami: %+v", who)
	}
	e.as(rootSecret, "GET", "/v1/auth/whoami", "").ok(t, 200, &who)
	if who.ID != "root" || !who.Admin {
		t.Fatalf("root whoami: %+v", who)
	}
	tl := e.as(rootSecret, "GET", "/v1/auth/tokens", "").ok(t, 200, nil)
	if strings.Contains(string(tl.body), reg) || strings.Contains(string(tl.body), "token\":") {
		t.Fatalf("the token list shows a secret: %s", tl.body)
	}

	// A deleted token stops working at once; a deleted role grants nothing.
	regID := e.tokenID("api-registrar")
	e.as(rootSecret, "DELETE", "/v1/auth/tokens/"+regID, "").ok(t, 200, nil)
	e.as(reg, "GET", "/v1/kv/services/api/n1", "").fails(t, 401, api.CodeUnauthenticated)
	e.as(rootSecret, "DELETE", "/v1/auth/tokens/"+regID, "").fails(t, 404, api.CodeNotFound)
	e.as(rootSecret, "DELETE", "/v1/auth/roles/reader", "").ok(t, 200, nil)
	e.as(disc, "GET", "/v1/kv/services/web/w1", "").fails(t, 403, api.CodePermissionDenied)
	// The last admin token cannot go.
	e.as(rootSecret, "DELETE", "/v1/auth/tokens/root", "").fails(t, 400, api.CodeInvalidArgument)
	e.as(rootSecret, "POST", "/v1/auth/tokens", `{"name":"x","roles":["nope"]}`).fails(t, 400, api.CodeInvalidArgument)
	e.as(rootSecret, "PUT", "/v1/auth/roles/root", `{"admin":false}`).fails(t, 400, api.CodeInvalidArgument)
	e.as(rootSecret, "GET", "/v1/auth/roles/"+url.PathEscape("absent"), "").fails(t, 404, api.CodeNotFound)
}

// TestAuthOffChangesNothing: without Config.Auth every route behaves as
// before, tokens or not.
func TestAuthOffChangesNothing(t *testing.T) {
	e := newEnv(t)
	e.doStr("PUT", "/v1/kv/a", "1").ok(t, 200, nil)
	e.doStr("GET", "/v1/leases", "").ok(t, 200, nil)
	e.as("garbage", "GET", "/v1/kv/a", "").ok(t, 200, nil)
	// whoami has no caller to describe, and says why: "a token is required"
	// would send a newcomer hunting for a token the open cluster never asks
	// for (rosterctl auth whoami printed just that).
	if msg := e.doStr("GET", "/v1/auth/whoami", "").fails(t, 401, api.CodeUnauthenticated).Error.Message; !strings.Contains(msg, "access control is off") || strings.Contains(msg, "token is required") {
		t.Fatalf("whoami without access control: %q, want it to say access control is off", msg)
	}
}
