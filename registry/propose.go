package registry

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
	"github.com/rosterhq/roster/fsm"
)

// propose commits a command through raft on this member and returns its
// result. It fails fast with a NotLeaderError (nothing proposed) on a
// follower, and with ErrTimeout when the outcome is unknown. The API's
// writes go through write (forward.go), which forwards from a follower.
func (n *Node) propose(ctx context.Context, name string, c fsm.Command) (fsm.Result, error) {
	defer n.proposalBegins()()
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
	if n.hooks != nil && n.hooks.proposing != nil {
		n.hooks.proposing(name)
	}
	start := time.Now()
	f, nonce := n.apply(c, timeout)
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
	var res fsm.Result
	if lostLeadership(f, err) {
		// Appended, then leadership was lost: learn whether the entry
		// committed under the next leader (fate.go).
		res, err = n.learnFate(ctx, f.Index(), nonce, start.Add(timeout))
		n.met.applyDuration.WithLabelValues(name).Observe(time.Since(start).Seconds())
		if err != nil && res.Err == nil {
			return fsm.Result{}, err
		}
	} else {
		n.met.applyDuration.WithLabelValues(name).Observe(time.Since(start).Seconds())
		if err != nil {
			return fsm.Result{}, n.mapApplyErr(f, err)
		}
		var ok bool
		if res, ok = f.Response().(fsm.Result); !ok {
			return fsm.Result{}, fmt.Errorf("registry: unexpected apply response %T", f.Response())
		}
	}
	if name != "tick" && name != "member" {
		n.failpoint(FailCommitBeforeAck)
	}
	return res, res.Err
}

// Grant creates a lease of ttl seconds. id 0 lets the leader pick a
// snowflake ID.
func (n *Node) Grant(ctx context.Context, ttl int64, name string, id int64) (fsm.LeaseStatus, error) {
	res, err := n.write(ctx, fsm.Grant{ID: id, TTL: ttl, Name: name})
	return res.Lease, err
}

// Revoke deletes a lease and its keys; it returns the store revision after.
func (n *Node) Revoke(ctx context.Context, id int64) (int64, error) {
	res, err := n.write(ctx, fsm.Revoke{ID: id})
	return res.Revision, err
}

// Put writes a key.
func (n *Node) Put(ctx context.Context, p fsm.Put) (fsm.Result, error) {
	return n.write(ctx, p)
}

// Delete removes a key or a prefix.
func (n *Node) Delete(ctx context.Context, d fsm.Delete) (fsm.Result, error) {
	return n.write(ctx, d)
}

// Incr adds by to the decimal integer stored at key.
func (n *Node) Incr(ctx context.Context, key string, by int64) (fsm.Result, error) {
	return n.write(ctx, fsm.Incr{Key: key, By: by})
}

// encodeProposal is the entry this member proposes for c: under today's
// rules (fsm.StrictDeadlines, fsm.DetachDeletedRoles), whatever a
// forwarding member sent.
func encodeProposal(c fsm.Command) []byte {
	return fsm.Encode(fsm.DetachDeletedRoles(fsm.StrictDeadlines(c)))
}

// apply hands raft the entry this member proposes for c, with a fresh
// nonce that lets it learn the entry's fate should it lose leadership
// before the entry commits (fate.go), and the cluster ID (clusterid.go).
// It returns the entry's Extensions: they hold the nonce, so an entry with
// the same Extensions is this proposal's (fate.go compares them whole).
func (n *Node) apply(c fsm.Command, timeout time.Duration) (raft.ApplyFuture, []byte) {
	var id []byte
	if n.hooks == nil || !n.hooks.noClusterID {
		id = n.ident.forProposal(n.mayChooseClusterID)
	}
	ext := extEncode(n.fates.nonce(), id)
	return n.raft.ApplyLog(raft.Log{Data: encodeProposal(c), Extensions: ext}, timeout), ext
}
