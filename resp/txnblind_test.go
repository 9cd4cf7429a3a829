package resp

import (
	"context"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rosterhq/roster/fsm"
	"github.com/rosterhq/roster/internal/logging/logtest"
	"github.com/rosterhq/roster/registry"
)

// racingBackend is a real node whose Txn, before proposing, lets another
// writer commit first (race, a real write through the same node): what a
// concurrent client's write between EXEC's read and its commit does, at
// a chosen place. races counts the Txns proposed.
type racingBackend struct {
	*registry.Node
	race  atomic.Pointer[func()]
	races atomic.Int64
}

func (b *racingBackend) Txn(ctx context.Context, ops []fsm.Command) (fsm.Result, error) {
	b.races.Add(1)
	if f := b.race.Load(); f != nil {
		(*f)()
	}
	return b.Node.Txn(ctx, ops)
}

// newRacingEnv serves a fresh node through a racingBackend.
func newRacingEnv(t *testing.T) (*env, *racingBackend) {
	t.Helper()
	log := logtest.ForTest(t)
	node := openTestNode(t, log, prometheus.NewRegistry())
	b := &racingBackend{Node: node}
	srv, err := New(Config{}, b, log)
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, node: node, srv: srv, addr: serveTest(t, srv)}, b
}

// checkRacedExec plays MULTI, seq and EXEC on a new connection of e and
// checks EXEC's answers, the Txns proposed through b and the keyspace
// after.
func checkRacedExec(t *testing.T, e *env, b *racingBackend, seq, want []string, txns int64, after string) {
	t.Helper()
	cmds := append(append([]string{"MULTI"}, seq...), "EXEC")
	got := exchange(t, e.dial(), wire(cmds...))
	head := "+OK\r\n" + strings.Repeat("+QUEUED\r\n", len(seq))
	if want := head + transcript(want...); got != want {
		t.Fatalf("EXEC answered\n%q\nwant\n%q", got, want)
	}
	if n := b.races.Load(); n != txns {
		t.Errorf("%d Txns proposed, want %d", n, txns)
	}
	if got := keyspace(e.node.FSM().State()); got != after {
		t.Errorf("keyspace after EXEC\n%s\nwant\n%s", got, after)
	}
}

// TestExecBlindWritesNotCompared: a key a transaction first overwrites
// blindly (SET without options, SETEX, MSET) is not compared at commit,
// so another client's write of it between EXEC's read and its commit
// does not make EXEC play again, as it never makes Redis's EXEC fail:
// the transaction applies over it at once, as the same commands would
// at the commit. Before, every such key was compared: with a writer
// committing the key before each attempt EXEC gave up after 100 (-ERR
// the key kept changing), and in a three-member cluster with plain SETs
// of the key on the leader, 538 of 800 such EXECs on a follower gave up.
// A key read or watched is still compared, and EXEC plays again: its
// answers show the other write. A key written only by a command whose
// answer or effect depends on it (INCR, DEL, SET … NX, SET … GET) is
// carried into the Txn as an apply-time operation (txnlate.go), not
// compared: the Txn applies at once and the answers show the other write
// too. A
// key overwritten and then deleted is deleted at commit even when a
// writer created it since the read. A watched key overwritten is still
// compared (TestExecBlindWriteOfWatchedKey).
func TestExecBlindWritesNotCompared(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		setup []string
		race  []string // key=value written before each Txn (every: true) or the first only
		every bool
		seq   []string
		want  []string // EXEC's answer, one line per item
		txns  int64    // Txns proposed
		after string   // keyspace afterwards
	}{
		{
			name: "blind writes", race: []string{"/a=other", "/b=other", "/c=other", "/d=other"}, every: true,
			seq:  []string{"SET a mine", "SETEX b 100 mine", "MSET c mine d mine", "GET a", "INCR a", "GET c"},
			want: []string{"*6", "+OK", "+OK", "+OK", "$4", "mine", "-ERR value is not an integer or out of range", "$4", "mine"},
			txns: 1, after: "/a=\"mine\"\n/b=\"mine\" lease ttl=100 name=\"/b\"\n/c=\"mine\"\n/d=\"mine\"\n1 leases\n",
		},
		{
			name: "blind write beside a key read", setup: []string{"SET r 1"}, race: []string{"/a=other"}, every: true,
			seq:  []string{"GET r", "SET a mine", "SET a 5", "INCR a"},
			want: []string{"*4", "$1", "1", "+OK", "+OK", ":6"},
			txns: 1, after: "/a=\"6\"\n/r=\"1\"\n0 leases\n",
		},
		{
			name: "overwritten then deleted", setup: []string{"SET x 1"}, race: []string{"/gone=created"},
			seq:  []string{"SET gone mine", "DEL gone", "SET x 2"},
			want: []string{"*3", "+OK", ":1", "+OK"},
			txns: 1, after: "/x=\"2\"\n0 leases\n",
		},
		{
			name: "read first", setup: []string{"SET a 1"}, race: []string{"/a=other"},
			seq:  []string{"GET a", "SET a mine"},
			want: []string{"*2", "$5", "other", "+OK"},
			txns: 2, after: "/a=\"mine\"\n0 leases\n",
		},
		{
			name: "answers depend on the key", setup: []string{"SET a 1", "SET b 1", "SET c 1"}, race: []string{"/a=7", "/b=other", "/c=other", "/d=other"},
			seq:  []string{"INCR a", "SET b mine GET", "SET c mine NX", "DEL d"},
			want: []string{"*4", ":8", "$5", "other", "$-1", ":1"},
			txns: 1, after: "/a=\"8\"\n/b=\"mine\"\n/c=\"other\"\n0 leases\n",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e, b := newRacingEnv(t)
			node := e.node
			exchange(t, e.dial(), wire(tc.setup...))
			var raced atomic.Bool
			race := func() {
				if !tc.every && !raced.CompareAndSwap(false, true) {
					return
				}
				for _, kv := range tc.race {
					k, v, _ := strings.Cut(kv, "=")
					if _, err := node.Put(ctx(), fsm.Put{Key: k, Value: []byte(v)}); err != nil {
						t.Error(err)
					}
				}
			}
			b.race.Store(&race)
			checkRacedExec(t, e, b, tc.seq, tc.want, tc.txns, tc.after)
		})
	}
}

// TestExecBlindWriteOfWatchedKey: a watched key stays compared though the
// transaction overwrites it blindly: changed between WATCH and EXEC, or
// between EXEC's read and its commit, EXEC answers the nil array and
// nothing is written.
func TestExecBlindWriteOfWatchedKey(t *testing.T) {
	t.Parallel()
	e, b := newRacingEnv(t)
	node := e.node
	race := func() {
		if _, err := node.Put(ctx(), fsm.Put{Key: "/a", Value: []byte("other")}); err != nil {
			t.Error(err)
		}
	}
	b.race.Store(&race)
	got := exchange(t, e.dial(), wire("WATCH a", "MULTI", "SET a mine", "SET b mine", "EXEC"))
	if want := "+OK\r\n+OK\r\n+QUEUED\r\n+QUEUED\r\n" + transcript("*-1"); got != want {
		t.Fatalf("EXEC answered\n%q\nwant\n%q", got, want)
	}
	if n := b.races.Load(); n != 1 {
		t.Errorf("%d Txns proposed, want 1", n)
	}
	if got, want := keyspace(node.FSM().State()), "/a=\"other\"\n0 leases\n"; got != want {
		t.Errorf("keyspace after EXEC\n%s\nwant\n%s", got, want)
	}
}

// TestExecWatchedKeyRecreated: a watched key deleted and created again
// with the same value between WATCH and EXEC has a new mod revision, so
// EXEC answers the nil array and writes nothing, as Redis does.
func TestExecWatchedKeyRecreated(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	exchange(t, e.dial(), wire("SET a same"))
	conn := e.dial()
	send := func(cmds ...string) {
		w := wire(cmds...)
		if _, err := conn.Write([]byte(w[:len(w)-len("*1\r\n$4\r\nQUIT\r\n")])); err != nil {
			t.Fatal(err)
		}
	}
	send("WATCH a")
	ok := make([]byte, len("+OK\r\n"))
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(conn, ok); err != nil || string(ok) != "+OK\r\n" {
		t.Fatalf("WATCH answered %q, %v", ok, err)
	}
	exchange(t, e.dial(), wire("DEL a", "SET a same"))
	send("MULTI", "SET b 1", "EXEC", "QUIT")
	got, err := io.ReadAll(conn)
	if err != nil {
		t.Fatal(err)
	}
	if want := "+OK\r\n+QUEUED\r\n" + transcript("*-1"); string(got) != want {
		t.Fatalf("answered %q, want %q", got, want)
	}
	if _, ok := e.value("/b"); ok {
		t.Fatal("EXEC wrote though its watched key was re-created")
	}
}
