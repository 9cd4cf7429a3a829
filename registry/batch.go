package registry

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
	"github.com/rosterhq/roster/fsm"
)

// BatchResult is the outcome of one command of Batch.
type BatchResult struct {
	Result fsm.Result
	Err    error
}

// Batch proposes writes (fsm.Put, fsm.Delete, fsm.Incr, fsm.Txn) in the
// order given without waiting for one before proposing the next, then
// waits for all of them: the log holds them in that order, so a client's
// pipelined writes apply in its order while committing together (one
// group commit instead of one per write). Each command is validated as its
// single method (Put, Delete, Incr, Txn) validates it; one that is invalid
// gets its error and is not proposed, the others are.
//
// On a follower the batch travels to the leader over the forwarding
// channel (batchforward.go) and commits there the same way.
func (n *Node) Batch(ctx context.Context, cmds []fsm.Command) []BatchResult {
	if n.raft.State() != raft.Leader {
		return n.forwardBatch(ctx, cmds)
	}
	return n.batchHere(ctx, cmds)
}

// batchHere is Batch on this member, which must lead: on a follower every
// command fails with a *NotLeaderError and nothing is proposed.
func (n *Node) batchHere(ctx context.Context, cmds []fsm.Command) []BatchResult {
	out := make([]BatchResult, len(cmds))
	fail := func(err error) []BatchResult {
		for i := range out {
			out[i].Err = err
		}
		return out
	}
	defer n.proposalBegins()()
	select {
	case <-n.stop:
		return fail(ErrClosed)
	default:
	}
	if n.raft.State() != raft.Leader {
		return fail(n.notLeader())
	}
	timeout := n.cfg.ApplyTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl))
	}
	if timeout <= 0 || ctx.Err() != nil {
		return fail(fmt.Errorf("%w: the request ended before proposing", ErrNoLeader))
	}
	if n.hooks != nil && n.hooks.proposing != nil {
		n.hooks.proposing("batch")
	}
	start := time.Now()
	futures := make([]raft.ApplyFuture, len(cmds))
	nonces := make([][]byte, len(cmds))
	for i, c := range cmds {
		prepared, err := n.prepare(c)
		if err != nil {
			out[i].Err = err
			continue
		}
		futures[i], nonces[i] = n.apply(prepared, timeout)
	}
	// Wait for the futures in order, in one goroutine, so that the caller
	// can give up on ctx without leaking one goroutine per command.
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Raft answers every entry it lost with leadership at once, and the
		// next leader commits them together: watch each one's fate as soon
		// as raft gives up on it, and only then wait for the first, or the
		// state machine would apply the later ones before they are watched.
		watches := make([]*fateWatch, len(futures))
		for i, f := range futures {
			if f == nil {
				continue
			}
			if err := f.Error(); lostLeadership(f, err) {
				watches[i] = n.watchFate(f.Index(), nonces[i])
				continue
			} else if err != nil {
				out[i].Err = n.mapApplyErr(f, err)
				continue
			}
			res, ok := f.Response().(fsm.Result)
			if !ok {
				out[i].Err = fmt.Errorf("registry: unexpected apply response %T", f.Response())
				continue
			}
			out[i] = BatchResult{Result: res, Err: res.Err}
		}
		for i, fw := range watches {
			if fw != nil {
				res, err := fw.wait(ctx, start.Add(timeout))
				out[i] = BatchResult{Result: res, Err: err}
			}
		}
	}()
	// As in propose, raft with BatchApplyCh neither times out nor answers
	// entries still queued when it shuts down: bound the wait here.
	wait := time.NewTimer(timeout)
	defer wait.Stop()
	var cause error
	select {
	case <-done:
		n.met.applyDuration.WithLabelValues("batch").Observe(time.Since(start).Seconds())
		n.failpoint(FailCommitBeforeAck)
		return out
	case <-ctx.Done():
		cause = ctx.Err()
	case <-wait.C:
		cause = fmt.Errorf("no commit within %v", timeout)
	case <-n.raftDown:
		cause = fmt.Errorf("the node shut down with the writes in flight")
	}
	// The outcome of what was proposed is unknown; give the caller its own
	// copy, since the waiter may still write to out.
	res := make([]BatchResult, len(cmds))
	for i := range res {
		if futures[i] == nil && out[i].Err != nil {
			res[i].Err = out[i].Err // refused by validation, never proposed
			continue
		}
		res[i].Err = fmt.Errorf("%w: %v", ErrTimeout, cause)
	}
	return res
}

// prepare validates one write of Batch as its single method would, and
// returns what to propose.
func (n *Node) prepare(c fsm.Command) (fsm.Command, error) {
	switch c := c.(type) {
	case fsm.Put:
		return c, n.checkPut(c)
	case fsm.Delete:
		return c, checkDelete(c)
	case fsm.Incr:
		return c, fsm.ValidateKey(c.Key)
	case fsm.Txn:
		return n.prepareTxn(c.Ops)
	case fsm.Check:
		return nil, fsm.ErrCheckOutsideTxn
	}
	return nil, fmt.Errorf("%w: a batch holds puts, deletes, increments and txns, not %T", fsm.ErrInvalidArgument, c)
}

// checkPut validates a put before it is proposed.
func (n *Node) checkPut(p fsm.Put) error {
	if err := fsm.ValidateKey(p.Key); err != nil {
		return err
	}
	if err := CheckValueSize(p.Value, n.cfg.MaxValue); err != nil {
		return err
	}
	if p.Lease < 0 || p.CAS < 0 {
		return fmt.Errorf("%w: negative lease or cas", fsm.ErrInvalidArgument)
	}
	return fsm.ValidatePutIf(p.Only)
}

// CheckValueSize refuses a value over a member's limit (Config.MaxValue,
// MaxValueBytes): every put is checked so before it is proposed, and the
// Redis port's EXEC so before it previews one.
func CheckValueSize(v []byte, limit int) error {
	if len(v) > limit {
		return fmt.Errorf("%w: value is %d bytes, the limit is %d", ErrTooLarge, len(v), limit)
	}
	return nil
}

// checkDelete validates a delete before it is proposed.
func checkDelete(d fsm.Delete) error {
	if err := fsm.ValidateKey(d.Key); err != nil {
		return err
	}
	if d.Prefix && d.HasCAS {
		return fmt.Errorf("%w: cas cannot be combined with a prefix delete", fsm.ErrInvalidArgument)
	}
	if d.CAS < 0 {
		return fmt.Errorf("%w: negative cas", fsm.ErrInvalidArgument)
	}
	return nil
}
