package registry

import (
	"testing"
	"time"

	"github.com/rosterhq/roster/fsm"
	"github.com/rosterhq/roster/internal/testutil"
)

// TestLeaderReelectedAtOnceAnswersItsWrites: a leader loses leadership
// with writes its followers stored, and wins the next election itself
// (its log is as long as theirs): it commits them in its new term, and
// the writes get their own results.
func TestLeaderReelectedAtOnceAnswersItsWrites(t *testing.T) {
	tc, cuts := startCutCluster(t)
	l := tc.leader()
	h := cuts[tc.index(l)]
	ctx := ctxT(t, 30*time.Second)
	term := l.raft.CurrentTerm()
	h.armOn(cutLoseReplies)
	type outcome struct {
		res fsm.Result
		err error
	}
	done := make(chan outcome, 2)
	go func() { r, err := l.Incr(ctx, "/r/ctr", 1); done <- outcome{r, err} }()
	go func() {
		b := l.Batch(ctx, []fsm.Command{fsm.Incr{Key: "/r/ctr", By: 1}, fsm.Incr{Key: "/r/ctr", By: 1}})
		for _, r := range b {
			done <- outcome{r.Result, r.Err}
		}
	}()
	testutil.Eventually(t, 20*time.Second, l.ID()+" to lose leadership", func() bool { return !l.IsLeader() })
	h.mode.Store(int32(cutNone)) // heal at once: it may well win again
	values := map[int64]bool{}
	for range 3 {
		select {
		case o := <-done:
			if o.err != nil {
				t.Errorf("increment: %v; want its committed result", o.err)
				continue
			}
			values[o.res.Value] = true
		case <-time.After(30 * time.Second):
			t.Fatal("the writes did not answer")
		}
	}
	next := tc.leader()
	t.Logf("leader %s in term %d (was %s in term %d)", next.ID(), next.raft.CurrentTerm(), l.ID(), term)
	if !values[1] || !values[2] || !values[3] {
		t.Errorf("the increments answered %v; want 1, 2 and 3", values)
	}
	if kv, ok := readKV(t, next, "/r/ctr"); !ok || string(kv.Value) != "3" {
		t.Errorf("counter is %+v (found %v), want 3", kv, ok)
	}
}
