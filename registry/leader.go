package registry

import (
	"context"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"github.com/rosterhq/roster/fsm"
	"github.com/rosterhq/roster/lease"
)

// watchLeadership starts the leader's duties when this node gains
// leadership and stops them when it loses it.
func (n *Node) watchLeadership() {
	defer n.wg.Done()
	stop := func() {}
	defer func() { stop() }()
	for {
		select {
		case <-n.stop:
			return
		case leading := <-n.raft.LeaderCh():
			if n.hooks != nil && n.hooks.leadership != nil {
				n.hooks.leadership(leading)
			}
			stop()
			stop = func() {}
			if !leading {
				n.log.Info("lost leadership")
				continue
			}
			n.log.Info("gained leadership")
			stop = n.startDuties()
		}
	}
}

// startDuties runs lead in a goroutine; the returned func stops it and
// waits for it to end.
func (n *Node) startDuties() (stop func()) {
	n.met.isLeader.Set(1)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		n.lead(ctx)
	}()
	return func() {
		cancel()
		wg.Wait()
		n.readyTerm.Store(0)
		n.idgen.Store(nil)
		n.met.isLeader.Set(0)
	}
}

// lead runs the leader's duties until ctx ends: catch up, record this
// member's metadata, then tick.
func (n *Node) lead(ctx context.Context) {
	// The term this leadership began in: readiness is recorded for it
	// only, and only if it is still the term once caught up.
	term := n.raft.CurrentTerm()
	// The lease clock restarts from the replicated value: only time that
	// passes under this leader is counted, never the leaderless gap.
	meter := lease.NewMeter(time.Now, max(4*n.cfg.Tick, 2*time.Second))
	n.meter.Store(meter)
	defer n.meter.Store(nil)
	// A barrier applies everything earlier terms committed, so reads and
	// the member record below see the whole log.
	for ctx.Err() == nil {
		if err := n.waitFuture(ctx, n.raft.Barrier(n.cfg.ApplyTimeout)); err == nil {
			break
		} else if n.raft.State() != raft.Leader {
			return
		}
	}
	if ctx.Err() != nil {
		return
	}
	if err := n.recordSelf(ctx); err != nil {
		n.log.Warn("could not record this member's metadata", "error", err)
		if ctx.Err() != nil {
			return
		}
	}
	if err := n.forgetRemoved(ctx); err != nil {
		n.log.Warn("could not forget the records of removed members", "error", err)
		if ctx.Err() != nil {
			return
		}
	}
	n.bootstrapRoot(ctx)
	// One tick right away so the last committed entry is a command the
	// state machine sees: read indexes (commit indexes) must name entries
	// that the state machine applies, or readers would wait for the next
	// one. Readiness waits for that tick to commit, in this term.
	for !n.tick(ctx, meter) {
		if ctx.Err() != nil || n.raft.State() != raft.Leader {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(n.cfg.Tick / 10):
		}
	}
	if n.raft.CurrentTerm() != term {
		return // lost and regained leadership meanwhile: the watcher restarts the duties
	}
	n.readyTerm.Store(term)
	n.log.Info("leader ready", "term", term, "applied_index", n.fsm.State().AppliedIndex(), "lease_clock_ms", n.fsm.State().Clock())
	// vouched is closed once a leader blind to part of the log may choose
	// a cluster ID (clustervouch.go); nil when there is nothing to wait for.
	var vouched chan struct{}
	if n.ident.ID() == nil {
		// A cluster created before cluster IDs: the entries above went
		// out before this leader was ready, without one. One more tick
		// carries the ID it chooses now (clusterid.go), so that every
		// member has one at once rather than at the first write.
		if n.mayChooseClusterID() {
			n.tick(ctx, meter)
		} else {
			vouched = make(chan struct{})
			var vw sync.WaitGroup
			defer vw.Wait()
			since := n.fsm.State().AppliedIndex() // this term's first tick, at least
			vw.Add(1)
			go func() {
				defer vw.Done()
				n.vouchClusterID(ctx, term, since, vouched)
			}()
		}
	}

	// No tick while no lease is alive (an idle cluster writes nothing);
	// otherwise one when the earliest lease falls due, and at least once a
	// tick interval (nextTick). While leases are alive the meter samples
	// real time once a tick interval without I/O, so a stall is capped per
	// interval; while none is, it drops the time (Meter.Skip).
	sample := time.NewTicker(n.cfg.Tick)
	defer sample.Stop()
	//
	// The time of the next tick only ever moves earlier until that tick
	// runs: the state changes all the time under load, and a wait counted
	// again from "now" at each change would never end.
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	var next time.Time // zero: none planned
	for {
		changed := n.fsm.Changed()
		var due <-chan time.Time
		wait, alive := n.nextTick(meter)
		if alive {
			if at := time.Now().Add(wait); next.IsZero() || at.Before(next) {
				next = at
			}
			t.Reset(time.Until(next))
			due = t.C
		} else {
			next = time.Time{}
		}
		select {
		case <-ctx.Done():
			return
		case <-sample.C:
			if alive {
				meter.Sample()
			} else {
				meter.Skip() // see Skip: idle time is not carried into the next lease
			}
		case <-changed:
			// A grant, renewal or expiry may have moved the earliest
			// deadline: look again.
		case <-due:
			next = time.Time{}
			n.tick(ctx, meter)
		case <-vouched:
			vouched = nil
			n.tick(ctx, meter)
		}
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
	}
}

// nextTick is how long to wait before the next tick, false when no lease
// is alive. With leases alive: the earliest lease deadline, as real time,
// so that expiry follows the deadline; but at least once a tick interval,
// because time not yet carried by a committed tick is lost when the leader
// fails (a new leader only counts time from its own start), and leases
// must not get it back: remaining TTLs carry over leader changes. A floor
// of a tenth of the interval bounds how often ticks are proposed when
// deadlines are close together.
func (n *Node) nextTick(meter *lease.Meter) (time.Duration, bool) {
	st := n.fsm.State()
	due, ok := st.NextExpiry()
	if !ok {
		return 0, false
	}
	// Real time now is about the applied clock plus the meter's slack.
	until := time.Duration(due-st.Clock()-meter.SlackMs()) * time.Millisecond
	return min(n.cfg.Tick, max(until, n.cfg.Tick/10, time.Millisecond)), true
}

// tick proposes one Tick, then more at once while expired leases remain
// beyond the per-tick limit, so a mass expiry is drained in a pipeline of
// bounded entries rather than one entry that stalls the log. It reports
// whether every tick it proposed committed.
func (n *Node) tick(ctx context.Context, meter *lease.Meter) bool {
	for ctx.Err() == nil {
		start := time.Now()
		ms := meter.TakeMs()
		res, err := n.propose(ctx, "tick", fsm.Tick{ElapsedMs: ms, Limit: int64(n.cfg.ExpireLimit)})
		// Applied, or failed: either way it no longer counts as in flight.
		// (A tick whose outcome is unknown may still apply later; counting
		// it as done errs towards shorter slack only by that one tick,
		// which the next tick's own measurement makes up for.)
		meter.Done(ms)
		n.met.tickDuration.Observe(time.Since(start).Seconds())
		if err != nil {
			if ctx.Err() == nil {
				n.log.Warn("tick failed", "error", err)
			}
			return false
		}
		if res.Expired > 0 {
			n.log.Debug("leases expired", "leases", res.Expired, "keys", res.Deleted, "more", res.More)
		}
		if !res.More {
			return true
		}
	}
	return false
}

// slackMs is how far real time may be ahead of the applied lease clock,
// for deadlines of grants and renewals. Without a meter (not leading) the
// proposal fails anyway; one tick is the safe guess.
func (n *Node) slackMs() int64 {
	if m := n.meter.Load(); m != nil {
		return m.SlackMs()
	}
	return n.cfg.Tick.Milliseconds()
}

// recordSelf makes sure the replicated member metadata lists this member
// with its HTTP address and a snowflake node number unique in the cluster,
// then starts the ID generator with that number.
func (n *Node) recordSelf(ctx context.Context) error {
	st := n.fsm.State()
	self, ok := st.Member(n.cfg.ID)
	want := fsm.Member{ID: n.cfg.ID, RaftAddr: n.RaftAddr(), HTTPAddr: n.cfg.HTTPAdvertise}
	var taken string
	want.Node, taken = chooseNodeNumber(st.Members(), n.cfg.ID, n.cfg.NodeNumber)
	if taken != "" {
		n.log.Warn("snowflake node number already used by another member: picked a free one",
			"wanted", n.cfg.NodeNumber, "used_by", taken, "node_number", want.Node)
	}
	if !ok || self != want {
		if _, err := n.propose(ctx, "member", fsm.SetMember{Member: want}); err != nil {
			return err
		}
	}
	g, err := lease.NewIDGen(want.Node)
	if err != nil {
		return err
	}
	n.idgen.Store(g)
	return nil
}

// chooseNodeNumber picks member self's snowflake node number: the one
// configured (-bind, when >= 0), else the one already recorded, else a free
// one, but never one another member uses (taken then names that member).
func chooseNodeNumber(members []fsm.Member, self string, configured int64) (num int64, taken string) {
	num = -1
	for _, m := range members {
		if m.ID == self && m.Node > 0 {
			num = m.Node
		}
	}
	if configured >= 0 {
		num = configured
	}
	if num < 0 {
		return freeNodeNumber(members, self), ""
	}
	for _, m := range members {
		if m.ID != self && m.Node == num {
			return freeNodeNumber(members, self), m.ID
		}
	}
	return num, ""
}

// freeNodeNumber picks the smallest snowflake node number (from 1) that no
// other member uses.
func freeNodeNumber(members []fsm.Member, self string) int64 {
	used := map[int64]bool{}
	for _, m := range members {
		if m.ID != self {
			used[m.Node] = true
		}
	}
	for i := int64(1); i <= lease.MaxNode; i++ {
		if !used[i] {
			return i
		}
	}
	return 0
}

// waitFuture waits for a raft future until it is answered, ctx ends or
// raft shuts down. With BatchApplyCh raft never answers a barrier (or an
// entry) still queued when it shuts down (see propose), so waiting on
// Error alone can keep Close waiting forever for the leader's duties; the
// helper goroutine ends when raft answers, if ever, and holds nothing.
func (n *Node) waitFuture(ctx context.Context, f raft.Future) error {
	errc := make(chan error, 1)
	go func() { errc <- f.Error() }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-n.raftDown:
		return raft.ErrRaftShutdown
	}
}
