package registry

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/rosterhq/roster/fsm"
	"github.com/rosterhq/roster/internal/testutil"
)

// TestFatesMatchTheNonceNotTheCommand: the state machine wrapper resolves
// a waiter by the nonce of the entry at its index, so another client's
// identical command (two increments of one key) at that index is not
// taken for the waiter's own.
func TestFatesMatchTheNonceNotTheCommand(t *testing.T) {
	f, err := newFates()
	if err != nil {
		t.Fatal(err)
	}
	ours, theirs := f.nonce(), f.nonce()
	if bytes.Equal(ours, theirs) || len(ours) != fateNonceLen {
		t.Fatalf("nonces %x and %x", ours, theirs)
	}
	data := fsm.Encode(fsm.Incr{Key: "k", By: 1})
	wait := func(idx uint64) *fateWaiter {
		w := &fateWaiter{nonce: ours, done: make(chan struct{})}
		f.mu.Lock()
		f.waiters[idx] = w
		f.mu.Unlock()
		f.armed.Add(1)
		return w
	}
	w7, w8 := wait(7), wait(8)
	f.applied([]*raft.Log{
		{Index: 7, Type: raft.LogCommand, Data: data, Extensions: theirs},
		{Index: 8, Type: raft.LogCommand, Data: data, Extensions: ours},
	}, []interface{}{fsm.Result{Value: 1}, fsm.Result{Value: 2}})
	for _, w := range []*fateWaiter{w7, w8} {
		select {
		case <-w.done:
		default:
			t.Fatal("a waiter was not resolved")
		}
	}
	if w7.ours {
		t.Error("identical command bytes under another nonce taken for ours")
	}
	if !w8.ours || w8.res.Value != 2 {
		t.Errorf("our entry: ours %v, result %+v; want ours, value 2", w8.ours, w8.res)
	}
	if got := f.seen.Load(); got != 8 {
		t.Errorf("seen = %d, want 8", got)
	}
}

// cutHooks lets a test cut one member's outgoing raft RPCs, starting at
// the moment it proposes a client's write: the entry is appended on the
// leader and then cannot commit as it would.
type cutHooks struct {
	mode  atomic.Int32
	armTo atomic.Int32 // cutNone: not armed
}

func (h *cutHooks) hooks() *testHooks {
	return &testHooks{
		cut: func(cutRPC) cutMode { return cutMode(h.mode.Load()) },
		proposing: func(name string) {
			if name == "tick" || name == "member" {
				return
			}
			if m := h.armTo.Swap(int32(cutNone)); m != int32(cutNone) {
				h.mode.Store(m)
			}
		},
	}
}

// armOn cuts the member with mode when it next proposes a client's write.
func (h *cutHooks) armOn(mode cutMode) { h.armTo.Store(int32(mode)) }

// startCutCluster starts three members whose raft links tests can cut.
func startCutCluster(t *testing.T) (*testCluster, []*cutHooks) {
	cuts := []*cutHooks{{}, {}, {}}
	tc := startCluster(t, 3, clusterOpts{
		hooks: func(i int) *testHooks { return cuts[i].hooks() },
		// The request's deadline bounds the wait, not the default 10s.
		cfg: func(i int, c *Config) { c.ApplyTimeout = time.Minute },
	})
	return tc, cuts
}

func (tc *testCluster) index(n *Node) int {
	for i, m := range tc.nodes {
		if m == n {
			return i
		}
	}
	tc.t.Fatalf("%s is not in the cluster", n.ID())
	return -1
}

// loseLeadership cuts the leader l with mode as it proposes the first
// client write, runs writes (each in a goroutine of its own; they
// should propose on l while it leads), waits until l lost leadership and
// another member leads, and heals l once every write has answered.
func loseLeadership(t *testing.T, tc *testCluster, cuts []*cutHooks, l *Node, mode cutMode, writes ...func()) {
	t.Helper()
	h := cuts[tc.index(l)]
	h.armOn(mode)
	var wg sync.WaitGroup
	for _, w := range writes {
		wg.Add(1)
		go func() { defer wg.Done(); w() }()
	}
	testutil.Eventually(t, 20*time.Second, l.ID()+" to lose leadership", func() bool { return !l.IsLeader() })
	// l must not lead again before another member was elected: it would
	// commit its own entries itself.
	h.mode.Store(int32(cutDrop))
	testutil.Eventually(t, 20*time.Second, "another member to lead", func() bool {
		for _, n := range tc.followers(l) {
			if n.leaderIsReady() {
				return true
			}
		}
		return false
	})
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the writes did not answer")
	}
	h.mode.Store(int32(cutNone))
}

// readKV reads key linearizably on n.
func readKV(t *testing.T, n *Node, key string) (*fsm.KV, bool) {
	t.Helper()
	s, err := n.Read(ctxT(t, 20*time.Second), false)
	if err != nil {
		t.Fatalf("read on %s: %v", n.ID(), err)
	}
	return s.Get(key)
}

type writeOutcome struct {
	res fsm.Result
	err error
}

// TestLeaderLossAnswersCommittedWrites: a leader loses leadership with
// writes its followers stored but it never saw commit. The next leader
// commits them; the former leader, now a follower, answers each with its
// real result (the revision the key got; each of two identical increments
// its own value), not "outcome unknown".
func TestLeaderLossAnswersCommittedWrites(t *testing.T) {
	tc, cuts := startCutCluster(t)
	l := tc.leader()
	ctx := ctxT(t, 30*time.Second)
	var put writeOutcome
	incr := make([]writeOutcome, 2)
	writes := []func(){func() { put.res, put.err = l.Put(ctx, fsm.Put{Key: "/c/put", Value: []byte("v")}) }}
	for i := range incr {
		writes = append(writes, func() { incr[i].res, incr[i].err = l.Incr(ctx, "/c/ctr", 1) })
	}
	var batch []BatchResult
	writes = append(writes, func() { batch = l.Batch(ctx, []fsm.Command{fsm.Put{Key: "/c/batch", Value: []byte("b")}}) })
	loseLeadership(t, tc, cuts, l, cutLoseReplies, writes...)
	if batch[0].Err != nil {
		t.Errorf("batched put: %v; want its committed result", batch[0].Err)
	} else if kv, ok := readKV(t, tc.leader(), "/c/batch"); !ok || kv.ModRevision != batch[0].Result.Revision {
		t.Errorf("batched put answered revision %d; the key is %+v (found %v)", batch[0].Result.Revision, kv, ok)
	}
	if put.err != nil {
		t.Fatalf("put: %v; want its committed result", put.err)
	}
	next := tc.leader()
	kv, ok := readKV(t, next, "/c/put")
	if !ok || kv.ModRevision != put.res.Revision {
		t.Errorf("put answered revision %d; the key is %+v (found %v)", put.res.Revision, kv, ok)
	}
	values := map[int64]bool{}
	for i, o := range incr {
		if o.err != nil {
			t.Fatalf("incr %d: %v; want its committed result", i, o.err)
		}
		values[o.res.Value] = true
	}
	if !values[1] || !values[2] {
		t.Errorf("the two increments answered %+v and %+v; want values 1 and 2", incr[0].res, incr[1].res)
	}
	if kv, ok := readKV(t, next, "/c/ctr"); !ok || string(kv.Value) != "2" {
		t.Errorf("counter is %+v (found %v), want 2", kv, ok)
	}
}

// TestLeaderLossRefusesTruncatedWrites: a leader loses leadership with
// writes no other member stored; the next leader replaces them. The former
// leader answers each with a refusal (no leader: nothing changed), and the
// keys are indeed unchanged.
func TestLeaderLossRefusesTruncatedWrites(t *testing.T) {
	tc, cuts := startCutCluster(t)
	l := tc.leader()
	ctx := ctxT(t, 30*time.Second)
	out := make([]writeOutcome, 4) // a put, two increments, a batched put
	writes := []func(){func() { out[0].res, out[0].err = l.Put(ctx, fsm.Put{Key: "/t/put", Value: []byte("v")}) }}
	for i := 1; i < 3; i++ {
		writes = append(writes, func() { out[i].res, out[i].err = l.Incr(ctx, "/t/ctr", 1) })
	}
	writes = append(writes, func() {
		b := l.Batch(ctx, []fsm.Command{fsm.Put{Key: "/t/batch", Value: []byte("b")}})
		out[3] = writeOutcome{b[0].Result, b[0].Err}
	})
	loseLeadership(t, tc, cuts, l, cutDrop, writes...)
	for i, o := range out {
		if !errors.Is(o.err, ErrNoLeader) || errors.Is(o.err, ErrTimeout) {
			t.Errorf("write %d: %v; want a refusal (no leader)", i, o.err)
		} else if !strings.Contains(o.err.Error(), "replaced by the next leader") {
			t.Errorf("write %d was refused before it was proposed (%v): the test did not put it in flight", i, o.err)
		}
	}
	next := tc.leader()
	for _, key := range []string{"/t/put", "/t/ctr", "/t/batch"} {
		if kv, ok := readKV(t, next, key); ok {
			t.Errorf("%s was written: %+v", key, kv)
		}
		if kv, ok := readKV(t, l, key); ok {
			t.Errorf("%s was written on the former leader: %+v", key, kv)
		}
	}
}
