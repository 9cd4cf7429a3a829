package registry_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rosterhq/roster/fsm"
	"github.com/rosterhq/roster/registry"
)

// TestBatchKeepsOrder: a batch's writes apply in the order given, each with
// its own result; an invalid one is refused alone and never proposed.
func TestBatchKeepsOrder(t *testing.T) {
	n := openNode(t, t.TempDir(), 100*time.Millisecond)
	ctx := context.Background()
	var cmds []fsm.Command
	for i := range 50 {
		cmds = append(cmds, fsm.Put{Key: "/k", Value: []byte{byte('a' + i%26)}})
	}
	cmds = append(cmds,
		fsm.Incr{Key: "/n", By: 2},
		fsm.Put{Key: "bad"},
		fsm.Put{Key: "/c", HasCAS: true, CAS: 999},
		fsm.Txn{Ops: []fsm.Command{fsm.Put{Key: "/t1"}, fsm.Delete{Key: "/k"}}},
		fsm.Incr{Key: "/n", By: 3},
		fsm.Revoke{ID: 1},
	)
	res := n.Batch(ctx, cmds)
	if len(res) != len(cmds) {
		t.Fatalf("%d results for %d commands", len(res), len(cmds))
	}
	for i := range 50 {
		if res[i].Err != nil || res[i].Result.Revision != int64(i+1) {
			t.Fatalf("put %d: revision %d, %v", i, res[i].Result.Revision, res[i].Err)
		}
	}
	if r := res[50]; r.Err != nil || r.Result.Value != 2 || r.Result.Revision != 51 {
		t.Fatalf("incr: %+v", r)
	}
	if !errors.Is(res[51].Err, fsm.ErrInvalidArgument) {
		t.Fatalf("bad key: %v", res[51].Err)
	}
	var ce *fsm.CASError
	if !errors.As(res[52].Err, &ce) {
		t.Fatalf("cas: %v", res[52].Err)
	}
	if r := res[53]; r.Err != nil || r.Result.Revision != 53 || len(r.Result.Ops) != 2 {
		t.Fatalf("txn: %+v", r)
	}
	if r := res[54]; r.Err != nil || r.Result.Value != 5 || r.Result.Revision != 54 {
		t.Fatalf("second incr: %+v", r)
	}
	if !errors.Is(res[55].Err, fsm.ErrInvalidArgument) {
		t.Fatalf("a revoke is not a batch write: %v", res[55].Err)
	}
	st := n.FSM().State()
	if _, ok := st.Get("/k"); ok || st.Revision() != 54 {
		t.Fatalf("final revision %d", st.Revision())
	}
	// A batch whose request already ended proposes nothing.
	done, cancel := context.WithCancel(ctx)
	cancel()
	for _, r := range n.Batch(done, []fsm.Command{fsm.Put{Key: "/late"}}) {
		if !errors.Is(r.Err, registry.ErrNoLeader) {
			t.Fatalf("canceled batch: %v", r.Err)
		}
	}
	if _, ok := n.FSM().State().Get("/late"); ok {
		t.Fatal("a canceled batch wrote")
	}
}
