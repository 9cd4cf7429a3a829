package registry

import (
	"time"

	"github.com/hashicorp/raft"
)

// A planned restart closes a leader: Close hands leadership over first,
// and the writes in flight on it then learn their fate as a follower
// (fate.go): the next leader commits what the transfer made sure it holds,
// and this member applies it shortly after. Shutting raft down at once
// would cut that short and answer them "outcome unknown" (504, -TIMEOUT),
// as would a write committed just before the handover whose result raft
// had not handed back yet. So after a successful transfer Close waits,
// bounded, until every proposal in flight on this member has its answer;
// so it does when the member lost leadership just before Close (its
// writes learn their fate the same way) and when it is the only voter
// (it commits them itself).
//
// The count starts before a proposer's checks, so that a proposal that
// passed them before Close began is counted, and ends when the proposer
// has its answer. Close has closed stop by then: new proposals are
// refused at once, and the count only falls.

// closeAnswerWait caps Close's wait. Each proposal's own wait ends by its
// deadline, at most ApplyTimeout after it began, so waiting longer than
// that is never useful; 5 s (below the default ApplyTimeout of 10 s)
// keeps a planned restart from being held long by a write whose next
// leader is slow to commit. In practice the wait is one election and one
// commit round, tens of milliseconds.
const closeAnswerWait = 5 * time.Second

// proposalBegins counts one proposal in flight; the caller calls the
// returned function once it has its answer.
func (n *Node) proposalBegins() (ends func()) {
	n.proposing.Add(1)
	return func() { n.proposing.Add(-1) }
}

// awaitAnswers waits until no proposal is in flight on this member, for at
// most the smaller of ApplyTimeout and closeAnswerWait. The count has no
// channel to wait on (two atomic operations per proposal on the hot path
// instead of a lock); it is looked at every fatePoll.
func (n *Node) awaitAnswers() {
	if n.proposing.Load() == 0 {
		return
	}
	limit := time.NewTimer(min(n.cfg.ApplyTimeout, closeAnswerWait))
	defer limit.Stop()
	tick := time.NewTicker(fatePoll)
	defer tick.Stop()
	start := time.Now()
	for n.proposing.Load() > 0 {
		select {
		case <-tick.C:
		case <-limit.C:
			n.log.Warn("writes still in flight at shutdown; their outcome is unknown",
				"writes", n.proposing.Load(), "waited", time.Since(start))
			return
		}
	}
	n.log.Info("writes in flight answered before shutdown", "waited", time.Since(start))
}

// Close stops the node: leader duties, a leadership transfer when other
// voters exist (so planned restarts cost no election timeout), raft, the
// transport and the stores. It is idempotent.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.goMu.Lock()
		close(n.stop)
		n.goMu.Unlock()
		n.stopAll()
		// Writes in flight here can still get their answers while raft
		// runs: after a transfer, or a loss of leadership just before
		// Close, they learn their fate from the next leader (fate.go); a
		// sole voter commits them itself. After a failed transfer (no
		// voter caught up) they most likely cannot commit in time, and a
		// failed state machine applies nothing more: no wait then.
		leader, voters := n.raft.State() == raft.Leader, n.voters()
		wait := !leader || voters <= 1
		if leader && voters > 1 {
			if err := n.raft.LeadershipTransfer().Error(); err != nil {
				n.log.Warn("leadership transfer before shutdown failed", "error", err)
			} else {
				n.log.Info("leadership transferred before shutdown")
				wait = true
			}
		}
		if wait && n.fsm.Err() == nil {
			n.awaitAnswers()
		}
		err := n.raft.Shutdown().Error()
		close(n.raftDown)
		n.wg.Wait()
		// A clean stop leaves a current checkpoint: the restart replays
		// nothing. (A failed state machine refuses, which is right.)
		if cerr := n.fsm.Checkpoint(); cerr != nil {
			n.log.Warn("final checkpoint failed", "error", cerr)
		}
		n.met.unregister()
		n.closeStores()
		n.closeErr = err
		close(n.done)
	})
	return n.closeErr
}
