package resp

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/rosterhq/roster/fsm"
	"github.com/rosterhq/roster/internal/rulespy"
	"github.com/rosterhq/roster/registry"
)

// TestAuthWritesAskTheRegistryRules: a write's keys are checked, before
// its arguments are parsed, with the registry's rules of writes (what any
// write of the key needs; read too where the answer shows the value), and
// the command built is checked whole with the same rules before it is
// proposed: the rules the HTTP routes and the leader check writes with.
func TestAuthWritesAskTheRegistryRules(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	spy := &rulespy.Spy{Node: e.node}
	auth := &testAuth{tokens: map[string]testIdentity{
		"svc": {read: []string{"/svc/"}, write: []string{"/svc/"}},
	}}
	srv, err := New(Config{Auth: auth}, spy, e.srv.log)
	if err != nil {
		t.Fatal(err)
	}
	addr := serveTest(t, srv)
	conn := (&env{t: t, addr: addr}).client().Conn()
	defer conn.Close()
	if err := conn.Do(ctx(), "AUTH", "svc").Err(); err != nil {
		t.Fatal(err)
	}
	prev := func(c fsm.Command) string { return rulespy.Describe(c, registry.AnswerPrev) }
	whole := func(c fsm.Command) string { return rulespy.Describe(c, registry.AnswerOutcome) }
	for _, tt := range []struct {
		args []any
		want []string
	}{
		{[]any{"INCR", "svc/n"}, []string{prev(fsm.Put{Key: "/svc/n"}), whole(fsm.Incr{Key: "/svc/n", By: 1, Canonical: true})}},
		{[]any{"SET", "svc/a", "1"}, []string{whole(fsm.Put{Key: "/svc/a"}), whole(fsm.Put{Key: "/svc/a", Value: []byte("1"), DropOldLease: true})}},
	} {
		spy.Take()
		if err := conn.Do(ctx(), tt.args...).Err(); err != nil {
			t.Fatalf("%v: %v", tt.args, err)
		}
		got := spy.Take()
		if fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("%v asked the rules about\n%q\nwant\n%q", tt.args, got, tt.want)
		}
	}
	// A refusal of the rules is a NOPERM naming the key.
	wantErr(t, conn.Do(ctx(), "GETDEL", "other").Err(), "NOPERM this token has no permission to write /other")
}

// TestAuthKeepTTLNeedsWhatRenewingNeeds: SET … KEEPTTL keeps the key on
// its lease: a put naming the lease, which needs what renewing the lease
// needs, write on every key attached to it, as a put attaching a key to
// a lease over HTTP does, and as the leader checks a forwarded put. The
// Redis port did not check the lease before the rules were one set: a
// token that may write one key of another's lease could rewrite it there.
// A SET without KEEPTTL takes the key off the lease, which needs write on
// the key alone.
func TestAuthKeepTTLNeedsWhatRenewingNeeds(t *testing.T) {
	t.Parallel()
	auth := &testAuth{tokens: map[string]testIdentity{
		"svc":  {read: []string{"/svc/"}, write: []string{"/svc/"}},
		"root": {read: []string{"/"}, write: []string{"/"}, admin: true},
	}}
	e := newEnvWith(t, func(c *Config) { c.Auth = auth })
	shared, err := e.node.Grant(ctx(), 600, "shared", 0)
	if err != nil {
		t.Fatal(err)
	}
	own, err := e.node.Grant(ctx(), 600, "own", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []fsm.Put{
		{Key: "/svc/a", Value: []byte("1"), Lease: shared.ID},
		{Key: "/other/c", Value: []byte("c"), Lease: shared.ID},
		{Key: "/svc/b", Value: []byte("1"), Lease: own.ID},
	} {
		if _, err := e.node.Put(ctx(), p); err != nil {
			t.Fatal(err)
		}
	}
	conn := e.client().Conn()
	defer conn.Close()
	if err := conn.Do(ctx(), "AUTH", "svc").Err(); err != nil {
		t.Fatal(err)
	}
	// The refusal names no key of the lease the token may not read.
	want := "NOPERM this token has no permission to write every key attached to lease " + strconv.FormatInt(shared.ID, 10)
	wantErr(t, conn.Do(ctx(), "SET", "svc/a", "2", "KEEPTTL").Err(), want)
	if v, _ := e.value("/svc/a"); v != "1" {
		t.Fatalf("a refused SET … KEEPTTL wrote: %q", v)
	}
	if err := conn.Do(ctx(), "SET", "svc/b", "2", "KEEPTTL").Err(); err != nil {
		t.Fatalf("SET … KEEPTTL on a lease of the token's own keys: %v", err)
	}
	if err := conn.Do(ctx(), "SET", "svc/a", "3").Err(); err != nil {
		t.Fatalf("SET without KEEPTTL: %v", err)
	}
	if kv, ok := e.node.FSM().State().Get("/svc/a"); !ok || kv.Lease != 0 || string(kv.Value) != "3" {
		t.Fatalf("/svc/a after SET: %+v", kv)
	}
	if err := conn.Do(ctx(), "AUTH", "root").Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.node.Put(ctx(), fsm.Put{Key: "/svc/a", Value: []byte("1"), Lease: shared.ID}); err != nil {
		t.Fatal(err)
	}
	if err := conn.Do(ctx(), "SET", "svc/a", "4", "KEEPTTL").Err(); err != nil {
		t.Fatalf("SET … KEEPTTL by admin: %v", err)
	}
}
