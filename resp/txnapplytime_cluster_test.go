package resp

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/rosterhq/roster/fsm"
	"github.com/rosterhq/roster/internal/logging/logtest"
	"github.com/rosterhq/roster/internal/testutil"
	"github.com/rosterhq/roster/registry"
)

// TestExecIncrOfHotKeyNeverGivesUp is the fifth bug hunt's measurement as
// a test: in a three-member cluster, eight clients send MULTI; INCR hot;
// EXEC to a follower while eight others pipeline plain INCR hot to the
// leader. Before the increments were evaluated at apply time, 148 of 200
// such EXECs gave up (-ERR the key kept changing). Now none does, every
// increment acknowledged is counted once (the counter ends at their
// number), and every answer, EXEC's and the plain ones', is a distinct
// value the counter took: EXEC's came from what applied, not from a
// state another increment had already left.
func TestExecIncrOfHotKeyNeverGivesUp(t *testing.T) {
	t.Parallel()
	_, addrs := serveCluster(t)
	const clients, execs, pipeline = 8, 25, 10
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		answers = make(map[int64]string)
		failed  atomic.Int64
		execsOK atomic.Int64
		plainOK atomic.Int64
		done    = make(chan struct{})
	)
	seen := func(v int64, who string) {
		mu.Lock()
		defer mu.Unlock()
		if prev, dup := answers[v]; dup {
			t.Errorf("%s and %s both answered %d", prev, who, v)
		}
		answers[v] = who
	}
	var execWG sync.WaitGroup
	for i := range clients {
		tx := clientOf(t, addrs[1])
		execWG.Add(1)
		go func() {
			defer execWG.Done()
			for j := range execs {
				var incr *redis.IntCmd
				_, err := tx.TxPipelined(ctx(), func(p redis.Pipeliner) error {
					incr = p.Incr(ctx(), "hot")
					return nil
				})
				if err != nil {
					failed.Add(1)
					t.Errorf("EXEC %d of client %d: %v", j, i, err)
					continue
				}
				execsOK.Add(1)
				seen(incr.Val(), fmt.Sprintf("EXEC %d/%d", i, j))
			}
		}()
		plain := clientOf(t, addrs[0])
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; ; k++ {
				select {
				case <-done:
					return
				default:
				}
				cmds, err := plain.Pipelined(ctx(), func(p redis.Pipeliner) error {
					for range pipeline {
						p.Incr(ctx(), "hot")
					}
					return nil
				})
				if err != nil {
					t.Errorf("plain INCR pipeline of client %d: %v", i, err)
					return
				}
				for n, c := range cmds {
					plainOK.Add(1)
					seen(c.(*redis.IntCmd).Val(), fmt.Sprintf("INCR %d/%d/%d", i, k, n))
				}
			}
		}()
	}
	execWG.Wait()
	close(done)
	wg.Wait()
	if n := failed.Load(); n != 0 {
		t.Fatalf("%d of %d EXECs failed", n, clients*execs)
	}
	total := execsOK.Load() + plainOK.Load()
	got, err := clientOf(t, addrs[0]).Get(ctx(), "hot").Int64()
	if err != nil || got != total {
		t.Fatalf("hot = %d, %v; want the %d increments acknowledged (%d in EXEC)", got, err, total, execsOK.Load())
	}
	for v := int64(1); v <= total; v++ {
		if _, ok := answers[v]; !ok {
			t.Fatalf("no answer was %d of 1..%d", v, total)
		}
	}
	t.Logf("%d EXECs and %d plain increments", execsOK.Load(), plainOK.Load())
}

// TestExecGetSetChainOnEveryMember: clients on every member of a
// three-member cluster each run MULTI; GETSET k <own value>; INCR ops;
// EXEC. As every GETSET applies at once on the value the one before it
// left, the old values answered form one chain: each value set is
// answered exactly once as an old value, but the last one, which k
// holds. Compared answers from a stale read could not show that without
// replays, and apply-time answers from a preview would repeat a value.
func TestExecGetSetChainOnEveryMember(t *testing.T) {
	t.Parallel()
	_, addrs := serveCluster(t)
	const clients, each = 6, 15
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		olds = make(map[string]int)
	)
	for i := range clients {
		c := clientOf(t, addrs[i%len(addrs)])
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range each {
				var gs *redis.StringCmd
				_, err := c.TxPipelined(ctx(), func(p redis.Pipeliner) error {
					gs = p.GetSet(ctx(), "k", fmt.Sprintf("%d/%d", i, j))
					p.Incr(ctx(), "ops")
					return nil
				})
				if err != nil && !errors.Is(err, redis.Nil) {
					t.Errorf("client %d: %v", i, err)
					return
				}
				mu.Lock()
				if old, err := gs.Result(); err == nil {
					olds[old]++
				} else {
					olds["<nil>"]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	last, err := clientOf(t, addrs[0]).Get(ctx(), "k").Result()
	if err != nil {
		t.Fatal(err)
	}
	if olds["<nil>"] != 1 {
		t.Fatalf("%d GETSETs found k absent, want 1", olds["<nil>"])
	}
	for i := range clients {
		for j := range each {
			v := fmt.Sprintf("%d/%d", i, j)
			want := 1
			if v == last {
				want = 0
			}
			if olds[v] != want {
				t.Fatalf("%s answered %d times as the old value, want %d (k holds %s)", v, olds[v], want, last)
			}
		}
	}
	if n, err := clientOf(t, addrs[2]).Get(ctx(), "ops").Int(); err != nil || n != clients*each {
		t.Fatalf("ops = %d, %v; want %d", n, err, clients*each)
	}
}

// TestExecInPlaceErrorsForwarded: EXEC sent to a follower, whose Txn the
// leader applies and whose per-operation results come back over the
// member channel: an increment failing as it applies (a value that is no
// integer, an overflow) answers Redis's error in place and the other
// commands apply, as in Redis.
func TestExecInPlaceErrorsForwarded(t *testing.T) {
	t.Parallel()
	_, addrs := serveCluster(t)
	leader := clientOf(t, addrs[0])
	if err := leader.MSet(ctx(), "s", "abc", "max", strconv.FormatInt(1<<63-1, 10), "n", "41", "nx", "held").Err(); err != nil {
		t.Fatal(err)
	}
	f := clientOf(t, addrs[2])
	cmds, err := f.TxPipelined(ctx(), func(p redis.Pipeliner) error {
		p.Incr(ctx(), "s")
		p.Set(ctx(), "x", "1", 0)
		p.IncrBy(ctx(), "max", 1)
		p.Incr(ctx(), "n")
		p.SetNX(ctx(), "nx", "mine", 0)
		p.Del(ctx(), "s2", "n2")
		return nil
	})
	if err == nil {
		t.Fatal("EXEC answered no error for INCR of a non-integer")
	}
	wantErrs := []string{"ERR value is not an integer or out of range", "", "ERR increment or decrement would overflow", "", "", ""}
	for i, c := range cmds {
		got := ""
		if c.Err() != nil {
			got = c.Err().Error()
		}
		if got != wantErrs[i] {
			t.Fatalf("command %d (%s): error %q, want %q", i, c.Name(), got, wantErrs[i])
		}
	}
	if v := cmds[3].(*redis.IntCmd).Val(); v != 42 {
		t.Fatalf("INCR n answered %d", v)
	}
	if v := cmds[4].(*redis.BoolCmd).Val(); v {
		t.Fatal("SETNX of a held key answered set")
	}
	want := map[string]string{"s": "abc", "x": "1", "max": strconv.FormatInt(1<<63-1, 10), "n": "42", "nx": "held"}
	for k, v := range want {
		if got, err := leader.Get(ctx(), k).Result(); err != nil || got != v {
			t.Fatalf("%s = %q, %v; want %q", k, got, err, v)
		}
	}
}

// tooOldLeader is a real node that refuses, as a leader of the version
// before the apply-time operations does (its decoder knows neither an
// Incr in a Txn nor Put.Only, and it writes nothing), every Txn holding
// one: the error a follower's forward gets from such a leader
// (registry.ErrLeaderTooOld).
type tooOldLeader struct {
	*registry.Node
	refused atomic.Int64
}

func (b *tooOldLeader) Txn(ctx context.Context, ops []fsm.Command) (fsm.Result, error) {
	for _, op := range ops {
		p, isPut := op.(fsm.Put)
		if _, isIncr := op.(fsm.Incr); isIncr || isPut && p.Only != fsm.PutAlways {
			b.refused.Add(1)
			return fsm.Result{}, fmt.Errorf("%w: txn: %w: type 10: field 6: unknown field (%w; nothing was written: retry once every member is upgraded)",
				fsm.ErrInvalidArgument, fsm.ErrDecode, registry.ErrLeaderTooOld)
		}
	}
	return b.Node.Txn(ctx, ops)
}

// TestExecFallsBackForAnOlderLeader: during a rolling upgrade, a leader
// too old to decode the apply-time operations refuses them having written
// nothing; EXEC then plays again with every key compared, as before them,
// and answers as ever.
func TestExecFallsBackForAnOlderLeader(t *testing.T) {
	t.Parallel()
	log := logtest.ForTest(t)
	node := openTestNode(t, log, prometheus.NewRegistry())
	b := &tooOldLeader{Node: node}
	srv, err := New(Config{}, b, log)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, node: node, srv: srv, addr: serveTest(t, srv)}
	exchange(t, e.dial(), wire("SET n 41", "SET s abc"))
	got := exchange(t, e.dial(), wire("MULTI", "INCR n", "INCR s", "SET k v NX", "DEL n2", "EXEC"))
	if want := "+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n" +
		transcript("*4", ":42", "-ERR value is not an integer or out of range", "+OK", ":0"); got != want {
		t.Fatalf("EXEC answered\n%q\nwant\n%q", got, want)
	}
	if n := b.refused.Load(); n != 1 {
		t.Fatalf("the older leader refused %d Txns, want 1 (then the compared form)", n)
	}
	if got, want := keyspace(node.FSM().State()), "/k=\"v\"\n/n=\"42\"\n/s=\"abc\"\n0 leases\n"; got != want {
		t.Errorf("keyspace after EXEC\n%s\nwant\n%s", got, want)
	}
}

// TestExecApplyTimeOnFollowerWithToken: the leader checks a forwarded
// Txn's apply-time operations for the token as the plain commands are
// checked: an increment needs read and write on its key, SET … NX and a
// delete write. A token that may read and write /svc/ and only write
// /wo/ runs them on a follower: what it may run plainly applies, an
// INCR of a key it may only write is refused as plain INCR is.
func TestExecApplyTimeOnFollowerWithToken(t *testing.T) {
	t.Parallel()
	leader, follower, addr := securedFollowerPort(t)
	if _, _, err := leader.CreateToken(ctx(), "admin", []string{fsm.RootRole}); err != nil {
		t.Fatal(err)
	}
	if err := leader.PutRole(ctx(), fsm.Role{Name: "app", Rules: []fsm.Rule{
		{Prefix: "/svc/", Read: true, Write: true}, {Prefix: "/wo/", Write: true},
	}}); err != nil {
		t.Fatal(err)
	}
	if _, err := leader.Put(ctx(), fsm.Put{Key: "/svc/d", Value: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	c := appTokenClient(t, leader, follower, addr)
	cmds, err := c.TxPipelined(ctx(), func(p redis.Pipeliner) error {
		p.Incr(ctx(), "svc/n")
		p.SetNX(ctx(), "svc/k", "v", 0)
		p.SetNX(ctx(), "wo/k", "v", 0)
		p.Del(ctx(), "svc/d", "wo/d")
		return nil
	})
	if err != nil {
		t.Fatalf("EXEC of apply-time operations the token may run, on a follower: %v", err)
	}
	if n := cmds[0].(*redis.IntCmd).Val(); n != 1 {
		t.Fatalf("INCR answered %d", n)
	}
	if n := cmds[3].(*redis.IntCmd).Val(); n != 1 {
		t.Fatalf("DEL answered %d", n)
	}
	for k, want := range map[string]string{"/svc/n": "1", "/svc/k": "v", "/wo/k": "v"} {
		testutil.Eventually(t, 10*time.Second, k+" applied", func() bool {
			kv, ok := leader.FSM().State().Get(k)
			return ok && string(kv.Value) == want
		})
	}
	_, err = c.TxPipelined(ctx(), func(p redis.Pipeliner) error {
		p.Incr(ctx(), "wo/n")
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "NOPERM") && !strings.Contains(err.Error(), "EXECABORT") {
		t.Fatalf("INCR of a key the token may only write, in EXEC: %v", err)
	}
	if err := c.Incr(ctx(), "wo/n").Err(); err == nil || !strings.Contains(err.Error(), "NOPERM") {
		t.Fatalf("plain INCR of a key the token may only write: %v", err)
	}
}
