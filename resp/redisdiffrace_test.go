package resp

import (
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rosterhq/roster/internal/logging/logtest"
	"github.com/rosterhq/roster/registry"
)

// TestRedisDiffExecRaced is differential with a concurrent client: another
// connection's commands (race: TTLs, deletes, non-integers, values) run
// between the transaction's queueing and its commit, on redis-server
// (before EXEC: Redis's EXEC then runs on what they left) and on Roster
// between EXEC's read and its Txn's proposal (racingBackend), where the
// apply-time operations (txnlate.go) evaluate on what they left. Both
// must answer EXEC alike and leave every key with the same value and
// TTL (within 2 s: the rounding to whole seconds docs/redis.md names,
// and a loaded machine). Every
// case also writes a key of its own (x), so that Roster proposes, and
// the race runs, on every path. It runs on one member and on a follower
// of three.
func TestRedisDiffExecRaced(t *testing.T) {
	t.Parallel()
	t.Run("one member", func(t *testing.T) {
		t.Parallel()
		log := logtest.ForTest(t)
		execRacedDiff(t, log, openTestNode(t, log, prometheus.NewRegistry()))
	})
	// On a follower, the Txn and the race are forwarded: the applied
	// results, their errors in place, cross the member channel.
	t.Run("follower", func(t *testing.T) {
		t.Parallel()
		log := logtest.ForTest(t)
		execRacedDiff(t, log, openCluster(t, log, 3)[1])
	})
}

func execRacedDiff(t *testing.T, log *slog.Logger, node *registry.Node) {
	redisAddr := startRedis(t)
	b := &racingBackend{Node: node}
	srv, err := New(Config{}, b, log)
	if err != nil {
		t.Fatal(err)
	}
	rosterAddr := serveTest(t, srv)
	dial := func(addr string) *rconn {
		c, err := dialRESP(addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.close)
		return c
	}
	redisTx, redisRace := dial(redisAddr), dial(redisAddr)
	rosterTx, rosterRace := dial(rosterAddr), dial(rosterAddr)
	for i, tc := range []struct {
		name              string
		setup, race, exec []string // commands, words split on spaces; $ is the case's key prefix
	}{
		{"incr of a key given a ttl", []string{"SET $n 5"}, []string{"SET $n 7 EX 100"}, []string{"INCR $n", "DECRBY $m 3"}},
		{"incr of a key deleted", []string{"SET $n 5 EX 100"}, []string{"DEL $n"}, []string{"INCRBY $n 5"}},
		{"incr of a key made no integer", []string{"SET $n 5"}, []string{"SET $n abc EX 100"}, []string{"INCR $n", "INCR $m"}},
		{"incr of a value made non-canonical or full", []string{"SET $n 5", "SET $m 5"}, []string{"SET $n 007", "SET $m 9223372036854775807"}, []string{"INCR $n", "INCR $m", "DECRBY $k -2"}},
		{"incr of a key given its ttl back", []string{"SET $n 5 EX 100"}, []string{"PERSIST $n"}, []string{"INCR $n"}},
		{"set xx of a key given a ttl", []string{"SET $k a"}, []string{"SET $k b EX 100"}, []string{"SET $k mine XX", "SET $j mine XX GET"}},
		{"set nx ex of a key made", nil, []string{"SET $k other EX 100"}, []string{"SET $k mine NX EX 50", "SETNX $j 1"}},
		{"set nx px get of a lock held since", nil, []string{"SET $lock held PX 100000"}, []string{"SET $lock mine NX PX 5000 GET"}},
		{"set nx ex of a key deleted", []string{"SET $k held EX 100"}, []string{"DEL $k"}, []string{"SET $k mine NX EX 50"}},
		{"set xx ex get of a key deleted", []string{"SET $k held"}, []string{"UNLINK $k"}, []string{"SET $k mine XX EX 50 GET"}},
		{"set xx ex of a key made", nil, []string{"SET $k other EX 100"}, []string{"SET $k mine XX EX 50"}},
		{"getset of a key given a ttl", []string{"SET $k a"}, []string{"SET $k b EX 100"}, []string{"GETSET $k mine"}},
		{"getdel of a key given a ttl", []string{"SET $k a"}, []string{"EXPIRE $k 100"}, []string{"GETDEL $k", "GETDEL $j"}},
		{"del counts what is there", []string{"SET $a 1", "SET $b 1 EX 100"}, []string{"DEL $a", "SET $c 1 EX 100", "MSET $d 1"}, []string{"DEL $a $b $c $d $e", "UNLINK $d"}},
		{"set get of a key changed", []string{"SET $k a EX 100"}, []string{"SET $k b"}, []string{"SET $k mine GET EX 70"}},
		// Keys another command touches too: compared, played again.
		{"incr then get", []string{"SET $n 1"}, []string{"SET $n 7 EX 100"}, []string{"INCR $n", "GET $n", "TTL $n"}},
		{"set nx then ttl", nil, []string{"SET $k other EX 100"}, []string{"SET $k mine NX EX 50", "TTL $k", "EXISTS $k $j"}},
		{"del beside a read", []string{"SET $a 1", "SET $b 1"}, []string{"DEL $a", "SET $b 2 EX 100"}, []string{"DEL $a $b", "GET $b", "INCR $a"}},
		{"keepttl and expire", []string{"SET $k 1 EX 100", "SET $j 1"}, []string{"SET $k 2 EX 200", "DEL $j"}, []string{"SET $k mine XX KEEPTTL", "EXPIRE $j 100", "GETDEL $a"}},
		{"getex and persist", []string{"SET $k 1", "SET $j 1 EX 100"}, []string{"SET $k 2 EX 100", "PERSIST $j"}, []string{"GETEX $k PERSIST", "PERSIST $j", "SETNX $a 1"}},
	} {
		p := fmt.Sprintf("r%d:", i)
		words := func(cmd string) []string { return strings.Split(strings.ReplaceAll(cmd, "$", p), " ") }
		all := func(c *rconn, cmds []string) []rval {
			t.Helper()
			args := make([][]string, len(cmds))
			for j, cmd := range cmds {
				args[j] = words(cmd)
			}
			vs, err := c.pipeline(args)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			return vs
		}
		queue := append(append([]string{"MULTI"}, tc.exec...), "SET "+p+"x 1")
		all(redisTx, tc.setup)
		all(redisTx, queue)
		all(redisRace, tc.race)
		want := all(redisTx, []string{"EXEC"})[0]

		all(rosterTx, tc.setup)
		var fired atomic.Bool
		race := func() {
			if fired.CompareAndSwap(false, true) {
				all(rosterRace, tc.race)
			}
		}
		b.race.Store(&race)
		got := all(rosterTx, append(queue, "EXEC"))[len(queue)]
		b.race.Store(nil)
		if !fired.Load() {
			t.Fatalf("%s: Roster's EXEC proposed nothing", tc.name)
		}
		if want.String() != got.String() {
			t.Errorf("%s: EXEC of %q raced by %q answered\n  Redis  %s\n  Roster %s", tc.name, tc.exec, tc.race, want, got)
		}
		for _, k := range []string{"n", "m", "k", "j", "lock", "a", "b", "c", "d", "e", "x"} {
			key := p + k
			rv, _ := redisTx.do("GET", key)
			gv, _ := rosterTx.do("GET", key)
			rt, _ := redisTx.do("TTL", key)
			gt, _ := rosterTx.do("TTL", key)
			rn, _ := rt.int()
			gn, _ := gt.int()
			if rv.String() != gv.String() || (rn < 0 || gn < 0) && rn != gn || rn > 0 && (gn < rn-2 || gn > rn+2) {
				t.Errorf("%s: after EXEC, %s is %s TTL %s on Redis, %s TTL %s on Roster", tc.name, key, rv, rt, gv, gt)
			}
		}
	}
}
