package registry

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/rosterhq/roster/fsm"
	"github.com/rosterhq/roster/internal/testutil"
)

// TestCloseAnswersWritesInFlight: a leader that is closed (a planned
// restart) with writes in flight hands leadership over, and then answers
// each write with its real outcome, learned as a follower (fate.go),
// before it shuts raft down: none ends "outcome unknown", and the
// committed ones are on the other members.
//
// The writes (some forwarded by a follower) are held uncommitted on the
// leader until the handover: of
// five members, the leader never learns that three of them stored its
// entries (their replies to the AppendEntries that carry entries are
// lost; heartbeats pass, so it keeps its lease), and the fourth alone is
// no quorum with it. That fourth is fully caught up, so the transfer
// picks it and succeeds; it commits the entries once elected, in its own
// term. Before the fix, Close shut raft down as soon as the transfer
// returned, long before that commit reached the former leader: every
// write answered ErrTimeout.
func TestCloseAnswersWritesInFlight(t *testing.T) {
	closeWithWritesInFlight(t, func(*holdingCluster) {})
}

// TestCloseAnswersWritesInFlightAfterLosingLeadership: a leader that
// loses leadership just before Close (here by a transfer of its own; an
// election does the same) is a follower when Close begins, with its
// writes still in flight, learning their fate (fate.go). Close waits for
// their answers as it does after its own transfer. Before the fix it
// waited only after a transfer it made itself, shut raft down at once,
// and every write answered ErrTimeout.
func TestCloseAnswersWritesInFlightAfterLosingLeadership(t *testing.T) {
	closeWithWritesInFlight(t, func(hc *holdingCluster) {
		if err := hc.leader.raft.LeadershipTransfer().Error(); err != nil {
			t.Fatalf("leadership transfer before Close: %v", err)
		}
		if hc.leader.IsLeader() {
			t.Fatal("still leading after the transfer")
		}
	})
}

// closeWithWritesInFlight holds writes uncommitted on a leader, runs
// beforeClose, closes the leader and checks that every write has its
// real outcome: none "outcome unknown", the committed ones on the others.
func closeWithWritesInFlight(t *testing.T, beforeClose func(*holdingCluster)) {
	t.Helper()
	hc := startHoldingLeader(t)
	l, fs, target := hc.leader, hc.followers, hc.followers[0]
	ctx := ctxT(t, 30*time.Second)
	base := hc.hold()

	// Singles, some forwarded by a follower (rosterd closes its HTTP and
	// Redis ports first: the writes in flight at Close are forwarded ones).
	const singles, forwarded, batched = 4, 2, 3
	done := make(chan writeOutcome, singles+forwarded+batched+1)
	for i := range singles + forwarded {
		via := l
		if i >= singles {
			via = fs[1]
		}
		go func() { r, err := via.Incr(ctx, "/close/ctr", 1); done <- writeOutcome{r, err} }()
	}
	go func() {
		cmds := make([]fsm.Command, batched)
		for i := range cmds {
			cmds[i] = fsm.Incr{Key: "/close/ctr", By: 1}
		}
		for _, r := range l.Batch(ctx, cmds) {
			done <- writeOutcome{r.Result, r.Err}
		}
	}()
	var putOK atomic.Bool
	go func() {
		r, err := l.Put(ctx, fsm.Put{Key: "/close/put", Value: []byte("v")})
		putOK.Store(err == nil)
		done <- writeOutcome{r, err}
	}()
	const entries = singles + forwarded + batched + 1
	testutil.Eventually(t, 20*time.Second, "the writes appended on the leader and the transfer target", func() bool {
		return l.raft.LastIndex() >= base+entries && target.raft.LastIndex() >= base+entries
	})
	select {
	case o := <-done:
		t.Fatalf("a write answered before Close (%+v, %v): the cut did not hold it", o.res, o.err)
	default:
	}
	if !l.IsLeader() {
		t.Fatal("the leader lost leadership before Close")
	}
	beforeClose(hc)

	start := time.Now()
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	t.Logf("Close took %v", time.Since(start))
	incrs := 0
	for range entries {
		var o writeOutcome
		select {
		case o = <-done:
		case <-time.After(30 * time.Second):
			t.Fatal("a write did not answer")
		}
		switch {
		case o.err == nil:
			if o.res.Value > 0 {
				incrs++
			}
		case errors.Is(o.err, ErrTimeout):
			t.Errorf("a write in flight at Close answered outcome unknown: %v", o.err)
		case errors.Is(o.err, ErrNoLeader), errors.Is(o.err, ErrClosed):
			t.Logf("a write refused: %v", o.err) // definite: nothing changed
		default:
			t.Errorf("a write answered %v", o.err)
		}
	}
	if t.Failed() {
		return
	}
	for _, f := range fs {
		testutil.Eventually(t, 20*time.Second, f.ID()+" to apply the committed writes", func() bool {
			st := f.FSM().State()
			n := 0
			if kv, ok := st.Get("/close/ctr"); ok {
				n, _ = strconv.Atoi(string(kv.Value))
			}
			_, put := st.Get("/close/put")
			return n == incrs && put == putOK.Load()
		})
	}
	if incrs == 0 {
		t.Error("no write in flight committed")
	}
}

// TestCloseAnswersKeepAlivesInFlight: keep-alives in flight on a leader
// that is closed get their answers too, as other writes do. They are
// proposed by the member's keep-alive group commit, whose context was
// cancelled as soon as Close began (its batcher stops then), so before
// the fix each ended "outcome unknown" (context canceled) at once, long
// before the next leader committed it: the leader's own and one a
// follower forwarded (rosterd's case: its HTTP port closes first).
func TestCloseAnswersKeepAlivesInFlight(t *testing.T) {
	hc := startHoldingLeader(t)
	l, fs, target := hc.leader, hc.followers, hc.followers[0]
	ctx := ctxT(t, 30*time.Second)
	lease, err := l.Grant(ctx, 600, "/close/lease", 0)
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "the follower to know the lease", func() bool {
		_, ok := fs[1].FSM().State().Lease(lease.ID)
		return ok
	})
	base := hc.hold()

	done := make(chan error, 2)
	for i, via := range []*Node{l, fs[1]} { // the leader's own, then a forwarded one
		go func() {
			renewed, _, err := via.KeepAlive(ctx, []int64{lease.ID})
			if err == nil && len(renewed) != 1 {
				err = errors.New("the lease was not renewed")
			}
			if err != nil {
				err = fmt.Errorf("%s: %w", []string{"the leader's own", "forwarded"}[i], err)
			}
			done <- err
		}()
		want := base + uint64(i) + 1
		testutil.Eventually(t, 20*time.Second, "the keep-alive appended on the leader and the transfer target", func() bool {
			return l.raft.LastIndex() >= want && target.raft.LastIndex() >= want
		})
	}
	select {
	case err := <-done:
		t.Fatalf("a keep-alive answered before Close (%v): the cut did not hold it", err)
	default:
	}
	if !l.IsLeader() {
		t.Fatal("the leader lost leadership before Close")
	}
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for range 2 {
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("a keep-alive in flight at Close: %v, want it renewed", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("a keep-alive did not answer")
		}
	}
}

// holdingCluster is five in-process members whose leader, once hold is
// called, stores its new entries on the others but never learns that
// three of them did (their replies to the AppendEntries that carry
// entries are lost; heartbeats pass, so it keeps its lease), so nothing
// it appends commits; the fourth, followers[0], is fully caught up, so a
// leadership transfer picks it. ApplyTimeout is a minute: the requests'
// deadlines bound the waits.
type holdingCluster struct {
	tc        *testCluster
	leader    *Node
	followers []*Node
	cutFrom   atomic.Int32 // the member whose replies are cut; -1: none
	lose      sync.Map     // raft.ServerID → true: members whose replies are lost
}

func startHoldingLeader(t *testing.T) *holdingCluster {
	hc := &holdingCluster{}
	hc.cutFrom.Store(-1)
	hc.tc = startCluster(t, 5, clusterOpts{
		hooks: func(i int) *testHooks {
			return &testHooks{cut: func(c cutRPC) cutMode {
				if int(hc.cutFrom.Load()) != i || c.entries == 0 {
					return cutNone
				}
				if _, ok := hc.lose.Load(c.to); ok {
					return cutLoseReplies
				}
				return cutNone
			}}
		},
		cfg: func(i int, c *Config) { c.ApplyTimeout = time.Minute },
	})
	hc.leader = hc.tc.leader()
	hc.followers = hc.tc.followers(hc.leader)
	return hc
}

// hold starts holding the leader's new entries uncommitted and returns
// its last index before them.
func (hc *holdingCluster) hold() uint64 {
	for _, f := range hc.followers[1:] {
		hc.lose.Store(raft.ServerID(f.ID()), true)
	}
	base := hc.leader.raft.LastIndex()
	hc.cutFrom.Store(int32(hc.tc.index(hc.leader)))
	return base
}
