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
// latest applied state. A linearizable read runs on the leader only: it
// records the commit index, confirms leadership with a quorum, and waits
// until the state machine has applied that index — one confirmation round
// shared by every read that arrives while the previous round runs.
func (n *Node) Read(ctx context.Context, stale bool) (*fsm.State, error) {
	if !stale {
		if err := n.reads.wait(ctx); err != nil {
			return nil, err
		}
	}
	return n.fsm.State(), nil
}

// readBatcher batches read-index rounds.
type readBatcher struct {
	n       *Node
	mu      sync.Mutex
	waiters []chan error
	running bool
}

func (b *readBatcher) wait(ctx context.Context) error {
	n := b.n
	if n.raft.State() != raft.Leader {
		return n.notLeader()
	}
	if !n.leaderReady.Load() {
		if err := n.waitLeaderReady(ctx); err != nil {
			return err
		}
	}
	ch := make(chan error, 1)
	b.mu.Lock()
	b.waiters = append(b.waiters, ch)
	if !b.running {
		b.running = true
		n.wg.Add(1)
		go b.run()
	}
	b.mu.Unlock()
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		return fmt.Errorf("%w: %v", ErrTimeout, ctx.Err())
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
		err := b.round()
		for _, w := range ws {
			w <- err
		}
	}
}

func (b *readBatcher) round() error {
	n := b.n
	idx := n.raft.CommitIndex()
	if err := n.raft.VerifyLeader().Error(); err != nil {
		return n.mapRaftErr(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.ApplyTimeout)
	defer cancel()
	go func() {
		select {
		case <-n.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	if err := n.fsm.WaitApplied(ctx, idx); err != nil {
		return fmt.Errorf("%w: waiting for index %d to apply: %v", ErrTimeout, idx, err)
	}
	return nil
}

// waitLeaderReady waits (bounded) for a new leader to finish catching up.
func (n *Node) waitLeaderReady(ctx context.Context) error {
	deadline := time.NewTimer(n.cfg.LeaderWait)
	defer deadline.Stop()
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for !n.leaderReady.Load() {
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
