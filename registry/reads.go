package registry

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"github.com/rosterhq/roster/fsm"
)

// Read returns a state to read from. A stale read is the local replica's
// latest applied state. A linearizable read, on any member, first gets a
// read index: the leader records its commit index and confirms with a
// quorum that it still leads (one round shared by every read that arrived
// meanwhile); a follower asks the leader for that index over the
// forwarding channel (one request shared the same way). The member then
// waits until its own state machine has applied that index and answers
// from its replica.
func (n *Node) Read(ctx context.Context, stale bool) (*fsm.State, error) {
	if stale {
		return n.fsm.State(), nil
	}
	idx, err := n.readIndex(ctx)
	if err != nil {
		return nil, err
	}
	if err := n.waitApplied(ctx, idx); err != nil {
		return nil, err
	}
	return n.fsm.State(), nil
}

// readIndex is a raft index every write acknowledged before the call is
// at or below.
func (n *Node) readIndex(ctx context.Context) (uint64, error) {
	if n.IsLeader() {
		return n.leaderReadIndex(ctx)
	}
	return n.followerReads.wait(ctx)
}

// waitApplied waits until the state machine has applied idx.
func (n *Node) waitApplied(ctx context.Context, idx uint64) error {
	if n.fsm.State().AppliedIndex() >= idx {
		return nil
	}
	// Once the node stops nothing more applies: refuse then rather than
	// wait out the caller's deadline.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(n.stopCtx, cancel)()
	if err := n.fsm.WaitApplied(ctx, idx); err != nil {
		if n.stopCtx.Err() != nil {
			return ErrClosed
		}
		return fmt.Errorf("%w: waiting for index %d to apply: %v", ErrTimeout, idx, err)
	}
	return nil
}

// leaderReadIndex is the read index on the leader, also for the followers
// that ask over the channel: it never forwards.
func (n *Node) leaderReadIndex(ctx context.Context) (uint64, error) {
	if n.raft.State() != raft.Leader {
		return 0, n.notLeader()
	}
	if !n.leaderIsReady() {
		if err := n.waitLeaderReady(ctx); err != nil {
			return 0, err
		}
	}
	return n.leaderReads.wait(ctx)
}

// leaderRound confirms one read index on the leader. A commit index is
// only known to cover every acknowledged write once an entry of the
// leader's own term has committed, so the round checks that the term this
// leader became ready in is still the current one, before taking the
// commit index and after the quorum confirmed it: a member that lost
// leadership and won it back without its duties noticing must not serve
// from the old term's readiness.
func (n *Node) leaderRound(ctx context.Context) (uint64, error) {
	term := n.readyTerm.Load()
	if term == 0 || n.raft.CurrentTerm() != term {
		return 0, fmt.Errorf("%w: the leader is not ready in its current term", ErrNoLeader)
	}
	idx := n.raft.CommitIndex()
	// Not VerifyLeader().Error() alone: raft leaves a verification still
	// queued at shutdown unanswered, and this round holds Close up.
	if err := n.waitFuture(ctx, n.raft.VerifyLeader()); err != nil {
		if n.stopCtx.Err() != nil {
			return 0, ErrClosed
		}
		if ctx.Err() != nil {
			return 0, fmt.Errorf("%w: confirming leadership for a read: %v", ErrTimeout, ctx.Err())
		}
		return 0, n.mapRaftErr(err)
	}
	if n.raft.CurrentTerm() != term {
		return 0, fmt.Errorf("%w: leadership changed during the read", ErrNoLeader)
	}
	return idx, nil
}

// followerRound asks the leader for a read index.
func (n *Node) followerRound(ctx context.Context) (uint64, error) {
	idx, self, err := n.forwardReadIndex(ctx)
	if self {
		return n.leaderReadIndex(ctx)
	}
	return idx, err
}

// leaderIsReady reports whether this member leads and has caught up in
// its current term.
func (n *Node) leaderIsReady() bool {
	t := n.readyTerm.Load()
	return t != 0 && t == n.raft.CurrentTerm() && n.raft.State() == raft.Leader
}

// readBatcher runs one read-index round at a time for every reader that
// arrived before it started.
type readBatcher struct {
	n       *Node
	round   func(ctx context.Context) (uint64, error)
	mu      sync.Mutex
	waiters []chan readResult
	running bool
}

type readResult struct {
	idx uint64
	err error
}

func (b *readBatcher) wait(ctx context.Context) (uint64, error) {
	ch := make(chan readResult, 1)
	b.mu.Lock()
	if !b.running {
		if !b.n.goAdd() {
			b.mu.Unlock()
			return 0, ErrClosed
		}
		b.running = true
		go b.run()
	}
	b.waiters = append(b.waiters, ch)
	b.mu.Unlock()
	select {
	case r := <-ch:
		return r.idx, r.err
	case <-ctx.Done():
		return 0, fmt.Errorf("%w: %v", ErrTimeout, ctx.Err())
	}
}

func (b *readBatcher) run() {
	defer b.n.wg.Done()
	for {
		b.mu.Lock()
		ws := b.waiters
		b.waiters = nil
		if len(ws) == 0 {
			b.running = false
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), b.n.cfg.ApplyTimeout)
		stop := context.AfterFunc(b.n.stopCtx, cancel)
		idx, err := b.round(ctx)
		stop()
		cancel()
		for _, w := range ws {
			w <- readResult{idx: idx, err: err}
		}
	}
}

// waitLeaderReady waits (bounded) for this leader to finish catching up in
// its current term.
func (n *Node) waitLeaderReady(ctx context.Context) error {
	deadline := time.NewTimer(n.cfg.LeaderWait)
	defer deadline.Stop()
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for !n.leaderIsReady() {
		if n.raft.State() != raft.Leader {
			return n.notLeader()
		}
		select {
		case <-t.C:
		case <-deadline.C:
			return fmt.Errorf("%w: leader is still catching up", ErrNoLeader)
		case <-ctx.Done():
			return fmt.Errorf("%w: %v", ErrNoLeader, ctx.Err())
		case <-n.stop:
			return ErrClosed
		}
	}
	return nil
}
