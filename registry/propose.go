package registry

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
	"github.com/rosterhq/roster/fsm"
)

// propose commits a command through raft and returns its result. It fails
// fast with a NotLeaderError (nothing proposed) on a follower, and with
// ErrTimeout when the outcome is unknown.
func (n *Node) propose(ctx context.Context, name string, c fsm.Command) (fsm.Result, error) {
	select {
	case <-n.stop:
		return fsm.Result{}, ErrClosed
	default:
	}
	if n.raft.State() != raft.Leader {
		return fsm.Result{}, n.notLeader()
	}
	timeout := n.cfg.ApplyTimeout
	if dl, ok := ctx.Deadline(); ok {
		if d := time.Until(dl); d < timeout {
			timeout = d
		}
	}
	if timeout <= 0 {
		return fsm.Result{}, fmt.Errorf("%w: deadline passed before proposing", ErrNoLeader)
	}
	start := time.Now()
	f := n.raft.Apply(fsm.Encode(c), timeout)
	// With BatchApplyCh raft neither times out an entry waiting in its
	// apply queue nor answers it at shutdown, so the wait is bounded here:
	// by the deadline, and by raft shutting down. Either way the entry may
	// have been appended: the outcome is unknown.
	errc := make(chan error, 1)
	go func() { errc <- f.Error() }()
	wait := time.NewTimer(timeout)
	defer wait.Stop()
	var err error
	select {
	case err = <-errc:
	case <-ctx.Done():
		return fsm.Result{}, fmt.Errorf("%w: %v", ErrTimeout, ctx.Err())
	case <-wait.C:
		return fsm.Result{}, fmt.Errorf("%w: no commit within %v", ErrTimeout, timeout)
	case <-n.raftDown:
		return fsm.Result{}, fmt.Errorf("%w: the node shut down with the write in flight", ErrTimeout)
	}
	n.met.applyDuration.WithLabelValues(name).Observe(time.Since(start).Seconds())
	if err != nil {
		return fsm.Result{}, n.mapProposeErr(err)
	}
	res, ok := f.Response().(fsm.Result)
	if !ok {
		return fsm.Result{}, fmt.Errorf("registry: unexpected apply response %T", f.Response())
	}
	if name != "tick" && name != "member" {
		n.failpoint(FailCommitBeforeAck)
	}
	return res, res.Err
}

// Grant creates a lease of ttl seconds. id 0 lets the leader pick a
// snowflake ID.
func (n *Node) Grant(ctx context.Context, ttl int64, name string, id int64) (fsm.LeaseStatus, error) {
	if err := fsm.ValidateTTL(ttl); err != nil {
		return fsm.LeaseStatus{}, err
	}
	if err := fsm.ValidateLeaseName(name); err != nil {
		return fsm.LeaseStatus{}, err
	}
	if id < 0 {
		return fsm.LeaseStatus{}, fmt.Errorf("%w: lease id %d is negative", fsm.ErrInvalidArgument, id)
	}
	if id != 0 {
		res, err := n.propose(ctx, "grant", fsm.Grant{ID: id, TTL: ttl, Name: name, SlackMs: n.slackMs()})
		return res.Lease, err
	}
	g := n.idgen.Load()
	if g == nil || n.raft.State() != raft.Leader {
		return fsm.LeaseStatus{}, n.notLeader()
	}
	// The generator stays above every ID the applied state has seen. A
	// grant with an explicit ID still in flight can take the ID chosen here
	// first; the state machine then refuses this grant (nothing issued
	// twice) and a fresh ID, above that one, is tried.
	for attempt := 0; ; attempt++ {
		id, err := g.Next(n.fsm.State().MaxLeaseID())
		if err != nil {
			return fsm.LeaseStatus{}, fmt.Errorf("%w: %v", fsm.ErrInvalidArgument, err)
		}
		res, err := n.propose(ctx, "grant", fsm.Grant{ID: id, TTL: ttl, Name: name, SlackMs: n.slackMs()})
		if errors.Is(err, fsm.ErrLeaseExists) && attempt < 3 {
			continue
		}
		return res.Lease, err
	}
}

// Revoke deletes a lease and its keys; it returns the store revision after.
func (n *Node) Revoke(ctx context.Context, id int64) (int64, error) {
	if id <= 0 {
		return 0, fmt.Errorf("%w: lease id %d is not positive", fsm.ErrInvalidArgument, id)
	}
	res, err := n.propose(ctx, "revoke", fsm.Revoke{ID: id})
	return res.Revision, err
}

// Put writes a key.
func (n *Node) Put(ctx context.Context, p fsm.Put) (fsm.Result, error) {
	if err := n.checkPut(p); err != nil {
		return fsm.Result{}, err
	}
	return n.propose(ctx, "put", p)
}

// Delete removes a key or a prefix.
func (n *Node) Delete(ctx context.Context, d fsm.Delete) (fsm.Result, error) {
	if err := checkDelete(d); err != nil {
		return fsm.Result{}, err
	}
	return n.propose(ctx, "delete", d)
}

// Incr adds by to the decimal integer stored at key.
func (n *Node) Incr(ctx context.Context, key string, by int64) (fsm.Result, error) {
	if err := fsm.ValidateKey(key); err != nil {
		return fsm.Result{}, err
	}
	return n.propose(ctx, "incr", fsm.Incr{Key: key, By: by})
}
