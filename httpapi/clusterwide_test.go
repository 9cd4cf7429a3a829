package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rosterhq/roster/api"
	"github.com/rosterhq/roster/fsm"
	"github.com/rosterhq/roster/internal/testutil"
	"github.com/rosterhq/roster/registry"
)

// TestAuthClusterWideOnAMemberWithoutAuth: in a three-member cluster whose
// third member was started without access control, that member serves
// without a token only while the replicated state has no admin token. As
// soon as it has applied one (the root token a member with -auth
// bootstraps, here an admin token made through the node), every route but
// the open ones needs a token there too, the seed routes and the
// console's API included, and what the token's roles allow is enforced;
// refusals change nothing, and writes with a good token are forwarded as
// on any member.
func TestAuthClusterWideOnAMemberWithoutAuth(t *testing.T) {
	made := 0
	envs := newClusterEnvOpts(t, 3, func(rc *registry.Config) {
		rc.Auth = rc.ID != "n3"
	}, func(sc *Config) {
		made++
		sc.Auth = made != 3
	})
	var open, guarded *env
	for _, e := range envs {
		if e.node.ID() == "n3" {
			open = e
		} else if guarded == nil {
			guarded = e
		}
	}
	// No token in the cluster yet: the member without -auth is open, the
	// others refuse everything.
	open.client.Timeout = 15 * time.Second // a watch let through would not end
	rev := open.as("", "PUT", "/v1/kv/services/a", "1").ok(t, 200, nil).revision(t)
	guarded.as("", "GET", "/v1/kv/services/a", "").fails(t, 401, api.CodeUnauthenticated)
	// A watch and a blocking read opened while it is open end once access
	// control is on.
	ws := open.openWatch("/v1/watch/services/?prefix=true")
	blocked := make(chan response, 1)
	go func() {
		blocked <- open.as("", "GET", fmt.Sprintf("/v1/kv/services/?prefix=true&index=%d&wait=10s", rev), "")
	}()
	testutil.Eventually(t, 5*time.Second, "the blocking read waiting", func() bool {
		return promtest.ToFloat64(open.srv.metrics.blocking) == 1
	})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, admin, err := envs[0].node.CreateToken(ctx, "admin", []string{fsm.RootRole})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := open.node.Read(ctx, false); err != nil { // n3 has applied it
		t.Fatal(err)
	}
	if !open.node.FSM().State().AccessControlled() {
		t.Fatal("the state with an admin token does not have access control on")
	}
	if _, err := envs[0].node.Put(ctx, fsm.Put{Key: "/services/after", Value: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	ws.endsWithout("/services/after")
	select {
	case r := <-blocked:
		if r.code != 401 {
			t.Fatalf("a blocking read opened before access control was on answered %d %s", r.code, r.body)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the blocking read did not answer")
	}
	before := snapshotOf(open.node.FSM().State())
	form := []string{"Content-Type", "application/x-www-form-urlencoded"}
	for _, tc := range []struct {
		method, path, body string
		header             []string
	}{
		{"GET", "/v1/kv/services/a", "", nil},
		{"GET", "/v1/kv/services/?prefix=true&stale=true", "", nil},
		{"PUT", "/v1/kv/services/b", "planted", nil},
		{"DELETE", "/v1/kv/services/a", "", nil},
		{"POST", "/v1/kv/services/n/incr", `{}`, nil},
		{"GET", "/v1/watch/services/?prefix=true", "", nil},
		{"POST", "/v1/leases", `{"ttl":60}`, nil},
		{"GET", "/v1/leases", "", nil},
		{"GET", "/v1/cluster", "", nil},
		{"GET", "/v1/cluster/status", "", nil}, // the console's view
		{"POST", "/v1/cluster/snapshot", "", nil},
		{"POST", "/v1/auth/tokens", `{"name":"mine","roles":["root"]}`, nil},
		{"GET", "/v1/auth/whoami", "", nil},
		{"PUT", "/key/services/c", "planted", nil},
		{"GET", "/key/services/a", "", nil},
		{"POST", "/key", `{"services/d":"planted"}`, nil},
		{"POST", "/put", `{"key":"services/e","value":"planted"}`, nil},
		{"POST", "/get", `{"key":"services/a"}`, nil},
		{"POST", "/lease/grant?ttl=60", "", form},
		{"POST", "/join", `{"id":"n9","addr":"127.0.0.1:1"}`, nil},
	} {
		r := open.as("", tc.method, tc.path, tc.body, tc.header...)
		if r.code != http.StatusUnauthorized {
			t.Errorf("%s %s without a token on the member without -auth: %d %s", tc.method, tc.path, r.code, r.body)
		}
		if r := open.as("roster_not-a-token", tc.method, tc.path, tc.body, tc.header...); r.code != http.StatusUnauthorized {
			t.Errorf("%s %s with an unknown token on the member without -auth: %d %s", tc.method, tc.path, r.code, r.body)
		}
	}
	if after := snapshotOf(open.node.FSM().State()); after != before {
		t.Fatalf("refused requests changed the state:\n%s\n---\n%s", before, after)
	}
	// The open routes stay open.
	for _, path := range []string{"/healthz", "/readyz", "/"} {
		if r := open.as("", "GET", path, ""); r.code != 200 {
			t.Errorf("GET %s without a token: %d %s", path, r.code, r.body)
		}
	}
	// With a token, as on any member: roles enforced, writes forwarded.
	open.as(admin, "PUT", "/v1/kv/services/b", "2").ok(t, 200, nil)
	open.as(admin, "GET", "/v1/kv/services/b", "").ok(t, 200, nil)
	open.as(admin, "PUT", "/v1/auth/roles/reader", `{"rules":[{"prefix":"/services/","read":true}]}`).ok(t, 200, nil)
	var ct api.CreatedToken
	open.as(admin, "POST", "/v1/auth/tokens", `{"name":"reader","roles":["reader"]}`).ok(t, 201, &ct)
	if _, err := open.node.Read(ctx, false); err != nil { // n3 has applied the token
		t.Fatal(err)
	}
	open.as(ct.Token, "GET", "/v1/kv/services/b", "").ok(t, 200, nil)
	open.as(ct.Token, "PUT", "/v1/kv/services/b", "3").fails(t, 403, api.CodePermissionDenied)
	if r := open.as(ct.Token, "POST", "/put", `{"key":"services/b","value":"3"}`); r.code != 403 {
		t.Fatalf("POST /put with a read-only token: %d %s", r.code, r.body)
	}
	if kv, ok := open.node.FSM().State().Get("/services/b"); !ok || string(kv.Value) != "2" {
		t.Fatalf("services/b is %+v", kv)
	}
}

// TestAuthClusterWideKeepsOpenRequestsWithAGoodToken: a member without
// -auth lets every request in while access control is off, also one that
// presents a token (a cluster may hold roles and tokens before its first
// admin token). Once the state turns access control on, such a request
// still open (a blocking read, a watch) is judged as if it came now: by
// its token. It was judged as one without a token: a reader whose token
// may read the prefix got 401 from its blocking read, and its watch ended.
// A token that may not read what it asked for is refused as before.
func TestAuthClusterWideKeepsOpenRequestsWithAGoodToken(t *testing.T) {
	envs := newClusterEnvOpts(t, 1, nil, nil)
	e := envs[0]
	e.client.Timeout = 15 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, r := range []fsm.Role{
		{Name: "reader", Rules: []fsm.Rule{{Prefix: "/services/", Read: true}}},
		{Name: "other", Rules: []fsm.Rule{{Prefix: "/elsewhere/", Read: true}}},
	} {
		if err := e.node.PutRole(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	_, reader, err := e.node.CreateToken(ctx, "reader", []string{"reader"})
	if err != nil {
		t.Fatal(err)
	}
	_, other, err := e.node.CreateToken(ctx, "other", []string{"other"})
	if err != nil {
		t.Fatal(err)
	}
	if e.node.FSM().State().AccessControlled() {
		t.Fatal("access control is on without an admin token")
	}
	rev := e.as("", "PUT", "/v1/kv/services/a", "1").ok(t, 200, nil).revision(t)
	auth := func(tok string) []string { return []string{"Authorization", "Bearer " + tok} }
	good := e.openWatch("/v1/watch/services/?prefix=true", auth(reader)...)
	bad := e.openWatch("/v1/watch/services/?prefix=true", auth(other)...)
	blocked := make(chan response, 2)
	for _, tok := range []string{reader, other} {
		go func() {
			blocked <- e.as(tok, "GET", fmt.Sprintf("/v1/kv/services/?prefix=true&index=%d&wait=10s", rev), "")
		}()
	}
	testutil.Eventually(t, 5*time.Second, "both blocking reads waiting", func() bool {
		return promtest.ToFloat64(e.srv.metrics.blocking) == 2
	})

	if _, _, err := e.node.CreateToken(ctx, "admin", []string{fsm.RootRole}); err != nil {
		t.Fatal(err)
	}
	if !e.node.FSM().State().AccessControlled() {
		t.Fatal("the state with an admin token does not have access control on")
	}
	if _, err := e.node.Put(ctx, fsm.Put{Key: "/services/after", Value: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	codes := map[int]int{}
	for range 2 {
		select {
		case r := <-blocked:
			codes[r.code]++
			if r.code == 200 && !strings.Contains(string(r.body), "/services/after") {
				t.Fatalf("the reader's blocking read answered %s", r.body)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("a blocking read did not answer")
		}
	}
	if codes[200] != 1 || codes[403] != 1 {
		t.Fatalf("the blocking reads answered %v, want one 200 (the reader) and one 403 (a token for another prefix)", codes)
	}
	if _, we := good.next(); we.KV.Key != "/services/after" {
		t.Fatalf("the reader's watch delivered %+v, want /services/after", we)
	}
	bad.endsWithout("/services/after")
}
