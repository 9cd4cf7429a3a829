package resp

import (
	"fmt"
	"strings"
	"testing"

	"github.com/rosterhq/roster/fsm"
)

// TestExecAnswersAsPlainCommands: EXEC's answers come from the state
// machine itself (a dry run of each queued write, fsm.State.Preview), so
// a transaction answers exactly what the same commands answer sent one by
// one, outside MULTI, on a node in the same state, and leaves the same
// keys, values and leases (their TTL and name). Each sequence runs on two
// fresh nodes after the same setup.
func TestExecAnswersAsPlainCommands(t *testing.T) {
	t.Parallel()
	setup := []string{"SET s text", "SET n 41", "SET l v EX 1000", "SET m w EX 500", "MSET a 1 b 2"}
	for _, seq := range [][]string{
		{"SET a 1", "INCR a", "GET a", "INCRBY a x", "INCR s", "DEL a b nope", "EXISTS a b s"},
		{"SET k v EX 100", "TTL k", "PERSIST k", "TTL k", "EXPIRE k 50", "TTL k", "GETEX k PERSIST", "TTL k", "PERSIST k"},
		{"SET k v XX", "SET k v NX GET", "SET k w XX GET", "GETSET k z", "GETDEL k", "GET k", "GETDEL k"},
		{"MSET a 1 b 2 a 3", "MGET a b c", "DEL a", "DECRBY b 5", "STRLEN b", "TYPE a", "TYPE b", "SETNX b 9", "SETNX c 9"},
		{"INCRBY n 9223372036854775807", "DECRBY n 41", "DECRBY n -9223372036854775807", "GET n", "INCR n"},
		{"SET l v2 KEEPTTL", "TTL l", "INCR l", "SET n 5 KEEPTTL", "TTL n", "SET l 7", "TTL l", "INCR l"},
		{"EXPIRE m 100 GT", "TTL m", "EXPIRE m 100 LT", "TTL m", "EXPIRE m 2000 NX", "EXPIRE s 30 XX", "EXPIRE s 30 NX", "TTL s"},
		{"SET k v EX 100", "DEL k", "EXISTS k", "SET k w EX 200", "SET k x KEEPTTL", "TTL k", "GETEX k EX 300", "TTL k"},
		{"GETEX l", "GETEX nope EX 10", "PERSIST l", "SET l a NX", "EXPIRE nope 10", "TTL nope", "PING", "ECHO hi"},
	} {
		t.Run(strings.Join(seq, ","), func(t *testing.T) {
			plain, txn := newEnv(t), newEnv(t)
			for _, e := range []*env{plain, txn} {
				exchange(t, e.dial(), wire(setup...))
			}
			want := exchange(t, plain.dial(), wire(seq...))
			got := exchange(t, txn.dial(), wire(append(append([]string{"MULTI"}, seq...), "EXEC")...))
			head := "+OK\r\n" + strings.Repeat("+QUEUED\r\n", len(seq)) + fmt.Sprintf("*%d\r\n", len(seq))
			if !strings.HasPrefix(got, head) || got[len(head):] != want {
				t.Fatalf("EXEC answered\n%q\none by one\n%q", got, head+want)
			}
			if a, b := keyspace(txn.node.FSM().State()), keyspace(plain.node.FSM().State()); a != b {
				t.Fatalf("after EXEC\n%s\none by one\n%s", a, b)
			}
		})
	}
}

// keyspace renders every key with its value and its lease's TTL and
// name: what a transaction and the same commands one by one must agree
// on (not revisions, nor lease IDs, which the leader picks).
func keyspace(st *fsm.State) string {
	var b strings.Builder
	st.Range("/", "", func(kv *fsm.KV) bool {
		fmt.Fprintf(&b, "%s=%q", kv.Key, kv.Value)
		if l, ok := st.Lease(kv.Lease); ok {
			fmt.Fprintf(&b, " lease ttl=%d name=%q", l.TTL, l.Name)
		}
		b.WriteByte('\n')
		return true
	})
	fmt.Fprintf(&b, "%d leases\n", st.LeaseCount())
	return b.String()
}
