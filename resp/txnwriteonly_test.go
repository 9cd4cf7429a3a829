package resp

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rosterhq/roster/fsm"
	"github.com/rosterhq/roster/internal/logging/logtest"
	"github.com/rosterhq/roster/internal/testutil"
	"github.com/rosterhq/roster/registry"
)

// TestExecWriteOnlyToken: a token that may write /svc/ but not read it
// runs, inside MULTI, writes that change nothing (DEL of an absent key,
// SET … NX of one that exists) beside one that does, on the leader and
// on a follower. Their keys are compared at commit with a compare-only
// operation (fsm.Check), which the rules asked read for: the whole EXEC
// was refused (-NOPERM … read /svc/zz), though each command alone is
// allowed (Redis's DEL and SET need no read), and nothing was written.
// A compare writes nothing and tells a write-only token no more than the
// write it compares for; it needs read or write on its key now.
func TestExecWriteOnlyToken(t *testing.T) {
	t.Parallel()
	log := logtest.ForTest(t)
	nodes := openCluster(t, log, 2)
	leader, follower := nodes[0], nodes[1]
	if _, _, err := leader.CreateToken(ctx(), "admin", []string{fsm.RootRole}); err != nil {
		t.Fatal(err)
	}
	if err := leader.PutRole(ctx(), fsm.Role{Name: "drop", Rules: []fsm.Rule{{Prefix: "/svc/", Write: true}}}); err != nil {
		t.Fatal(err)
	}
	_, tok, err := leader.CreateToken(ctx(), "drop", []string{"drop"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leader.Put(ctx(), fsm.Put{Key: "/svc/a", Value: []byte("1")}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*registry.Node{leader, follower} {
		testutil.Eventually(t, 10*time.Second, n.ID()+" knows the token", func() bool {
			_, err := n.Authenticate(tok)
			return err == nil
		})
		srv, err := New(Config{Auth: nodeAuth{n}}, n, log.With("redis", n.ID()))
		if err != nil {
			t.Fatal(err)
		}
		c := redis.NewClient(&redis.Options{Addr: serveTest(t, srv), Password: tok, MaxRetries: -1, PoolSize: 1})
		t.Cleanup(func() { c.Close() })
		key := "svc/new-" + n.ID()
		var del *redis.IntCmd
		var setNX *redis.StatusCmd
		_, err = c.TxPipelined(ctx(), func(p redis.Pipeliner) error {
			p.Set(ctx(), key, "1", 0)
			del = p.Del(ctx(), "svc/absent")
			setNX = p.SetArgs(ctx(), "svc/a", "2", redis.SetArgs{Mode: "NX"})
			return nil
		})
		if err != nil && err != redis.Nil {
			t.Fatalf("EXEC on %s by a write-only token: %v", n.ID(), err)
		}
		if del.Val() != 0 || setNX.Err() != redis.Nil {
			t.Errorf("on %s: DEL of an absent key %d, SET NX of an existing one %v", n.ID(), del.Val(), setNX.Err())
		}
		if kv, ok := leader.FSM().State().Get("/" + key); !ok || string(kv.Value) != "1" {
			t.Errorf("on %s: the transaction's write was not applied", n.ID())
		}
	}
	if kv, _ := leader.FSM().State().Get("/svc/a"); string(kv.Value) != "1" {
		t.Errorf("SET NX of an existing key wrote %q", kv.Value)
	}
}

// TestExecKeepingAnothersLease: inside MULTI, a write that keeps a key on
// a lease the token may not renew (INCR, SET … KEEPTTL of a key on a
// lease that also holds another token's key) answers NOPERM inside
// EXEC's array and does nothing, the rest of the transaction applying,
// as docs/redis.md says of a command no longer permitted at EXEC. Before
// the fix the whole EXEC answered -NOPERM and nothing was written.
func TestExecKeepingAnothersLease(t *testing.T) {
	t.Parallel()
	auth := &testAuth{tokens: map[string]testIdentity{
		"svc": {read: []string{"/svc/"}, write: []string{"/svc/"}},
	}}
	e := newEnvWith(t, func(c *Config) { c.Auth = auth })
	shared, err := e.node.Grant(ctx(), 600, "shared", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []fsm.Put{
		{Key: "/svc/a", Value: []byte("1"), Lease: shared.ID},
		{Key: "/svc/k", Value: []byte("k"), Lease: shared.ID},
		{Key: "/other/c", Value: []byte("c"), Lease: shared.ID},
	} {
		if _, err := e.node.Put(ctx(), p); err != nil {
			t.Fatal(err)
		}
	}
	c := redis.NewClient(&redis.Options{Addr: e.addr, Password: "svc", MaxRetries: -1, PoolSize: 1})
	t.Cleanup(func() { c.Close() })
	var set *redis.StatusCmd
	var incr *redis.IntCmd
	var keep, get *redis.StatusCmd
	_, _ = c.TxPipelined(ctx(), func(p redis.Pipeliner) error {
		set = p.Set(ctx(), "svc/b", "1", 0)
		incr = p.Incr(ctx(), "svc/a")
		keep = p.Set(ctx(), "svc/k", "2", redis.KeepTTL)
		get = p.Set(ctx(), "svc/d", "1", 0)
		return nil
	})
	want := "NOPERM this token has no permission to write every key attached to lease " + itoa(shared.ID)
	if set.Err() != nil || get.Err() != nil {
		t.Fatalf("the permitted writes: %v, %v", set.Err(), get.Err())
	}
	wantErr(t, incr.Err(), want)
	wantErr(t, keep.Err(), want)
	for k, v := range map[string]string{"/svc/b": "1", "/svc/d": "1", "/svc/a": "1", "/svc/k": "k"} {
		if got, _ := e.value(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
}
