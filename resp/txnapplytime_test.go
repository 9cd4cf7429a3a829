package resp

import (
	"strings"
	"sync/atomic"
	"testing"

	"github.com/rosterhq/roster/fsm"
)

// TestExecApplyTimeAnswersWhatApplied: a write whose answer depends on
// its key (INCR and kin, SET … NX|XX|GET, SETNX, GETSET, GETDEL, DEL's
// count), when no other command of the transaction touches the key, is
// evaluated as the Txn applies, so another client's write of the key
// between EXEC's read and its commit (racingBackend: a real write through
// the same node, before every Txn proposed) neither makes EXEC play again
// nor goes unseen: EXEC proposes once and answers what applied, as the
// commands would at the commit. A key a later command reads again, or
// one watched, or a write that keeps the key's lease (SET … KEEPTTL,
// EXPIRE), stays compared: EXEC plays again (the race
// writes once) and answers the second play. Before, every such key was
// compared, and a writer of it before every Txn made EXEC give up after
// 100 plays.
func TestExecApplyTimeAnswersWhatApplied(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		setup []string
		race  []string // "/k=v" puts, "/k" deletes, before each Txn (every) or the first only
		every bool
		seq   []string
		want  []string // EXEC's answer, one line per item
		txns  int64
		after string
	}{
		{
			name: "incr", setup: []string{"SET n 1"}, race: []string{"/n=41"}, every: true,
			seq:  []string{"INCR n", "INCRBY m 5", "DECR n2", "DECRBY n3 2"},
			want: []string{"*4", ":42", ":5", ":-1", ":-2"},
			txns: 1, after: "/m=\"5\"\n/n=\"42\"\n/n2=\"-1\"\n/n3=\"-2\"\n0 leases\n",
		},
		{
			name: "incr of a value raced into no integer", setup: []string{"SET n 1"}, race: []string{"/n=abc", "/max=9223372036854775807"}, every: true,
			seq:  []string{"INCR n", "SET x 1", "INCR max"},
			want: []string{"*3", "-ERR value is not an integer or out of range", "+OK", "-ERR increment or decrement would overflow"},
			txns: 1, after: "/max=\"9223372036854775807\"\n/n=\"abc\"\n/x=\"1\"\n0 leases\n",
		},
		{
			name: "set nx of a key created since", race: []string{"/k=other", "/j=other"}, every: true,
			seq:  []string{"SET k mine NX", "SETNX j mine", "SET l mine NX"},
			want: []string{"*3", "$-1", ":0", "+OK"},
			txns: 1, after: "/j=\"other\"\n/k=\"other\"\n/l=\"mine\"\n0 leases\n",
		},
		{
			name: "set xx of a key created and one deleted since", setup: []string{"SET gone 1"}, race: []string{"/k=other", "/gone"}, every: true,
			seq:  []string{"SET k mine XX", "SET gone mine XX GET"},
			want: []string{"*2", "+OK", "$-1"},
			txns: 1, after: "/k=\"mine\"\n0 leases\n",
		},
		{
			name: "get answers the value raced in", setup: []string{"SET a 1", "SET b 1", "SET c 1", "SET d 1"},
			race: []string{"/a=ra", "/b=rb", "/c=rc", "/d=rd"}, every: true,
			seq:  []string{"SET a mine GET", "GETSET b mine", "GETDEL c", "SET d mine NX GET"},
			want: []string{"*4", "$2", "ra", "$2", "rb", "$2", "rc", "$2", "rd"},
			txns: 1, after: "/a=\"mine\"\n/b=\"mine\"\n/d=\"rd\"\n0 leases\n",
		},
		{
			name: "set get with a ttl", setup: []string{"SET a 1"}, race: []string{"/a=ra"},
			seq:  []string{"SET a mine EX 100 GET", "TTL a"},
			want: []string{"*2", "$2", "ra", ":100"},
			txns: 2, after: "/a=\"mine\" lease ttl=100 name=\"/a\"\n1 leases\n", // TTL reads a: compared
		},
		{
			name: "set get with a ttl alone", setup: []string{"SET a 1"}, race: []string{"/a=ra"}, every: true,
			seq:  []string{"SET a mine EX 100 GET", "SET b 2"},
			want: []string{"*2", "$2", "ra", "+OK"},
			txns: 1, after: "/a=\"mine\" lease ttl=100 name=\"/a\"\n/b=\"2\"\n1 leases\n",
		},
		{
			name: "nothing changed: answered from the read", setup: []string{"SET lock held"}, race: []string{"/absent=new"}, every: true,
			seq:  []string{"SET lock mine NX", "DEL absent", "GETDEL absent2", "SETNX lock x"},
			want: []string{"*4", "$-1", ":0", "$-1", ":0"},
			txns: 0, after: "/lock=\"held\"\n0 leases\n",
		},
		{
			name: "one change: all at apply time", setup: []string{"SET lock held"}, race: []string{"/absent=new"}, every: true,
			seq:  []string{"SET lock mine NX", "DEL absent", "INCRBY lock2 0"},
			want: []string{"*3", "$-1", ":1", ":0"},
			txns: 1, after: "/lock=\"held\"\n/lock2=\"0\"\n0 leases\n", // INCRBY 0 of an absent key writes it
		},
		{
			name: "del counts what it found", setup: []string{"SET a 1", "SET b 1"}, race: []string{"/a", "/c=new"}, every: true,
			seq:  []string{"DEL a b c d", "UNLINK e"},
			want: []string{"*2", ":2", ":0"},
			txns: 1, after: "0 leases\n",
		},
		{
			name: "del beside a key read again", setup: []string{"SET a 1", "SET b 1"}, race: []string{"/a", "/b=2"},
			seq:  []string{"DEL a b", "GET b"},
			want: []string{"*2", ":1", "$-1"},
			txns: 2, after: "0 leases\n", // b read again: compared; a apply-time, deleted by the race
		},
		{
			name: "a key read again stays compared", setup: []string{"SET n 1"}, race: []string{"/n=7"},
			seq:  []string{"INCR n", "GET n"},
			want: []string{"*2", ":8", "$1", "8"},
			txns: 2, after: "/n=\"8\"\n0 leases\n",
		},
		{
			name: "a key read first stays compared", setup: []string{"SET n 1"}, race: []string{"/n=7"},
			seq:  []string{"GET n", "INCR n"},
			want: []string{"*2", "$1", "7", ":8"},
			txns: 2, after: "/n=\"8\"\n0 leases\n",
		},
		{
			name: "incr twice stays compared", setup: []string{"SET n 1"}, race: []string{"/n=7"},
			seq:  []string{"INCR n", "INCR n"},
			want: []string{"*2", ":8", ":9"},
			txns: 2, after: "/n=\"9\"\n0 leases\n",
		},
		{
			name: "set nx with a ttl of a key created since", race: []string{"/k=other"}, every: true,
			seq:  []string{"SET k mine NX EX 100"},
			want: []string{"*1", "$-1"},
			txns: 1, after: "/k=\"other\"\n0 leases\n", // the lease granted for it went
		},
		{
			name: "set nx with a ttl of a key deleted since", setup: []string{"SET k held"}, race: []string{"/k"}, every: true,
			seq:  []string{"SET k mine NX EX 100", "SET j 1"},
			want: []string{"*2", "+OK", "+OK"},
			txns: 1, after: "/j=\"1\"\n/k=\"mine\" lease ttl=100 name=\"/k\"\n1 leases\n",
		},
		{
			name: "set xx with a ttl of a key deleted since", setup: []string{"SET k held"}, race: []string{"/k"}, every: true,
			seq:  []string{"SET k mine XX PX 100000 GET"},
			want: []string{"*1", "$-1"},
			txns: 1, after: "0 leases\n",
		},
		{
			name: "keepttl stays compared", setup: []string{"SET k 1 EX 100"}, race: []string{"/k=2"},
			seq:  []string{"SET k mine XX KEEPTTL"},
			want: []string{"*1", "+OK"},
			txns: 2, after: "/k=\"mine\"\n1 leases\n", // the race's put took k off its lease, which stays
		},
		{
			name: "expire stays compared", setup: []string{"SET k 1"}, race: []string{"/k=2"},
			seq:  []string{"EXPIRE k 100", "INCR n"},
			want: []string{"*2", ":1", ":1"},
			txns: 2, after: "/k=\"2\" lease ttl=100 name=\"/k\"\n/n=\"1\"\n1 leases\n",
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
				for _, w := range tc.race {
					var err error
					if k, v, put := strings.Cut(w, "="); put {
						_, err = node.Put(ctx(), fsm.Put{Key: k, Value: []byte(v)})
					} else {
						_, err = node.Delete(ctx(), fsm.Delete{Key: k})
					}
					if err != nil {
						t.Error(err)
					}
				}
			}
			b.race.Store(&race)
			checkRacedExec(t, e, b, tc.seq, tc.want, tc.txns, tc.after)
		})
	}
}

// TestExecApplyTimeWatchedKeyCompared: a watched key is compared even
// when the transaction only increments it: changed between EXEC's read
// and its commit, EXEC answers the nil array and writes nothing.
func TestExecApplyTimeWatchedKeyCompared(t *testing.T) {
	t.Parallel()
	e, b := newRacingEnv(t)
	node := e.node
	race := func() {
		if _, err := node.Put(ctx(), fsm.Put{Key: "/n", Value: []byte("7")}); err != nil {
			t.Error(err)
		}
	}
	b.race.Store(&race)
	got := exchange(t, e.dial(), wire("WATCH n", "MULTI", "INCR n", "INCR m", "EXEC"))
	if want := "+OK\r\n+OK\r\n+QUEUED\r\n+QUEUED\r\n" + transcript("*-1"); got != want {
		t.Fatalf("EXEC answered\n%q\nwant\n%q", got, want)
	}
	if got, want := keyspace(node.FSM().State()), "/n=\"7\"\n0 leases\n"; got != want {
		t.Errorf("keyspace after EXEC\n%s\nwant\n%s", got, want)
	}
}
