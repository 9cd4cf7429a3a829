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
