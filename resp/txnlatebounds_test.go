package resp

import (
	"fmt"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/rosterhq/roster/registry"
)

// TestExecApplyTimeStaysWithinTxnBound: a SET … NX EX of a key that
// exists writes nothing and costs one operation in the Txn, a compare
// (docs/redis.md: a key counts two only when the transaction leaves it on
// a TTL it set). Carried at apply time it would travel as a grant and a
// put, two: 5,001 of them beside one write made a Txn of 10,003
// operations, refused (-ERR invalid argument), where the compared form,
// 5,002 operations, applies. Past what fits, such keys stay compared.
func TestExecApplyTimeStaysWithinTxnBound(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client()
	const n = registry.MaxTxnOps/2 + 1
	pairs := make([]any, 0, 2*n)
	for i := range n {
		pairs = append(pairs, fmt.Sprintf("k%d", i), "held")
	}
	if err := c.MSet(ctx(), pairs...).Err(); err != nil {
		t.Fatal(err)
	}
	cmds, err := c.TxPipelined(ctx(), func(p redis.Pipeliner) error {
		for i := range n {
			p.SetArgs(ctx(), fmt.Sprintf("k%d", i), "mine", redis.SetArgs{Mode: "NX", TTL: 100e9})
		}
		p.Set(ctx(), "x", "1", 0)
		return nil
	})
	if err != nil && err != redis.Nil {
		t.Fatalf("EXEC of %d SET … NX EX of held keys and one SET: %v", n, err)
	}
	for i, cmd := range cmds[:n] {
		if err := cmd.Err(); err != redis.Nil {
			t.Fatalf("SET k%d … NX EX answered %v, want nil", i, err)
		}
	}
	if got, _ := e.value("/x"); got != "1" {
		t.Fatalf("x = %q, want 1", got)
	}
	if got, _ := e.value("/k0"); got != "held" {
		t.Fatalf("k0 = %q, want held", got)
	}
	if n := e.node.FSM().State().LeaseCount(); n != 0 {
		t.Fatalf("%d leases left", n)
	}
}
