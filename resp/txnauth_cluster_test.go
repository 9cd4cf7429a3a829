package resp

import (
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rosterhq/roster/fsm"
	"github.com/rosterhq/roster/internal/logging/logtest"
	"github.com/rosterhq/roster/internal/testutil"
	"github.com/rosterhq/roster/registry"
)

// TestExecOnFollowerReadOnlyKey: a token that may read /cfg/ and write
// /svc/ runs, on a follower, transactions that read or watch a key it
// may only read and write one it may write. The Txn compares the key
// only read with an fsm.Check, for which the leader, checking the
// forwarded Txn for the token, asks read (seen failing when it asked
// write): EXEC answers as on the leader, and the write applies.
func TestExecOnFollowerReadOnlyKey(t *testing.T) {
	t.Parallel()
	leader, follower, addr := securedFollowerPort(t)
	if _, err := leader.Put(ctx(), fsm.Put{Key: "/cfg/limit", Value: []byte("7")}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := leader.CreateToken(ctx(), "admin", []string{fsm.RootRole}); err != nil {
		t.Fatal(err)
	}
	if err := leader.PutRole(ctx(), fsm.Role{Name: "app", Rules: []fsm.Rule{
		{Prefix: "/cfg/", Read: true}, {Prefix: "/svc/", Read: true, Write: true},
	}}); err != nil {
		t.Fatal(err)
	}
	c := appTokenClient(t, leader, follower, addr)

	// Read inside the transaction.
	cmds, err := c.TxPipelined(ctx(), func(p redis.Pipeliner) error {
		p.Get(ctx(), "cfg/limit")
		p.Set(ctx(), "svc/a", "1", 0)
		return nil
	})
	if err != nil {
		t.Fatalf("EXEC reading a read-only key on a follower: %v", err)
	}
	if v := cmds[0].(*redis.StringCmd).Val(); v != "7" {
		t.Fatalf("GET inside EXEC = %q, want 7", v)
	}
	// Watched, and an absent key read (compared as absent).
	err = c.Watch(ctx(), func(tx *redis.Tx) error {
		_, err := tx.TxPipelined(ctx(), func(p redis.Pipeliner) error {
			p.Get(ctx(), "cfg/absent")
			p.Set(ctx(), "svc/b", "2", 0)
			return nil
		})
		if errors.Is(err, redis.Nil) { // the GET's answer
			err = nil
		}
		return err
	}, "cfg/limit")
	if err != nil {
		t.Fatalf("EXEC with a read-only key watched on a follower: %v", err)
	}
	// Only watched: the Txn's one compare of /cfg/limit is a Check, for
	// which the leader asks read. Changed since WATCH (by an admin, on
	// the leader): the nil array, nothing written.
	watchOnly := func(change bool) error {
		return c.Watch(ctx(), func(tx *redis.Tx) error {
			if change {
				if _, err := leader.Put(ctx(), fsm.Put{Key: "/cfg/limit", Value: []byte("7")}); err != nil {
					return err
				}
			}
			_, err := tx.TxPipelined(ctx(), func(p redis.Pipeliner) error {
				p.Set(ctx(), "svc/c", "3", 0)
				return nil
			})
			return err
		}, "cfg/limit")
	}
	if err := watchOnly(true); !errors.Is(err, redis.TxFailedErr) {
		t.Fatalf("EXEC with the watched key changed: %v, want TxFailedErr", err)
	}
	if err := watchOnly(false); err != nil {
		t.Fatalf("EXEC with only a read-only key watched on a follower: %v", err)
	}
	for k, want := range map[string]string{"/svc/a": "1", "/svc/b": "2", "/svc/c": "3"} {
		testutil.Eventually(t, 10*time.Second, k+" written", func() bool {
			st, err := leader.Read(ctx(), true)
			if err != nil {
				return false
			}
			kv, ok := st.Get(k)
			return ok && string(kv.Value) == want
		})
	}
	// The leader still refuses a real write of a key the token may only
	// read, forwarded inside a Txn.
	_, err = c.TxPipelined(ctx(), func(p redis.Pipeliner) error {
		p.Set(ctx(), "cfg/limit", "8", 0)
		return nil
	})
	wantErr(t, err, "EXECABORT Transaction discarded because of previous errors.")
}

// appTokenClient is a go-redis client of addr (served by follower)
// authenticated with a new token of role app, made on leader, once
// follower knows it.
func appTokenClient(t *testing.T, leader, follower *registry.Node, addr string) *redis.Client {
	t.Helper()
	_, tok, err := leader.CreateToken(ctx(), "app", []string{"app"})
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "the follower knows the token", func() bool {
		_, err := follower.Authenticate(tok)
		return err == nil
	})
	c := redis.NewClient(&redis.Options{Addr: addr, Password: tok, MaxRetries: -1, PoolSize: 1})
	t.Cleanup(func() { c.Close() })
	return c
}

// securedFollowerPort opens three in-process members and serves the
// Redis port of a follower, with the node's access control; it returns
// the leader, that follower and the port's address.
func securedFollowerPort(t *testing.T) (leader, follower *registry.Node, addr string) {
	t.Helper()
	log := logtest.ForTest(t)
	nodes := openCluster(t, log, 3)
	leader, follower = nodes[0], nodes[1]
	srv, err := New(Config{Auth: nodeAuth{follower}}, follower, log.With("redis", "follower"))
	if err != nil {
		t.Fatal(err)
	}
	addr = serveTest(t, srv)
	return leader, follower, addr
}
