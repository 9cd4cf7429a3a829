package registry

import (
	"context"
	"fmt"
	"time"

	"github.com/rosterhq/roster/fsm"
)

// Keep-alives are group-committed: every renewal waiting while the previous
// batch is in flight goes into the next raft entry, so the cost per renewal
// falls as load rises instead of each renewal paying for a log entry. A
// follower coalesces the same way before forwarding: the renewals its
// clients send while its previous batch is on the way travel to the
// leader as one request, which joins the leader's group commit whole.
//
// One group in flight at a time: each raft entry then carries every
// renewal that arrived during the previous commit. Under load each
// keep-alive entry costs every member a log append of its own (two
// syncs), so fewer, fuller entries share that cost among more renewals.
// Measured against 2 on fresh 3-member clusters (docs/benchmarks.md):
// 14 % less server CPU per renewal and 6-9 % more renewals a second.
//
// Under load a group also lingers (Config.KeepAliveLinger, 3 ms by
// default) until it is as large as the group before it. Without that,
// the group a leader proposes the moment its previous one commits holds
// only what arrived during that commit: its followers' forwards, sent as
// they answer the same commit, arrive a hop later and wait out a whole
// further commit. A group lingers only when its first request waited for
// the previous group, so a renewal on a quiet member is proposed at once.
const kaInFlight = 1

// kaForwardIDs caps the IDs of one forwarded batch: the API's cap on one
// request, whose forwarded answer is known to fit a channel frame.
const kaForwardIDs = 10_000

type kaRequest struct {
	ids      []int64 // distinct
	caller   string  // the token ID it is made for (WithCaller); "": none
	deadline time.Time
	resp     chan kaResponse
}

type kaResponse struct {
	byID map[int64]fsm.LeaseStatus
	err  error
}

// KeepAlive renews leases to their full TTL. Duplicate IDs count once. It
// returns the renewed leases in request order and the IDs not found. On a
// follower the renewals travel to the leader over the forwarding channel,
// where they join the leader's group commit like its own.
func (n *Node) KeepAlive(ctx context.Context, ids []int64) ([]fsm.LeaseStatus, []int64, error) {
	uniq := make([]int64, 0, len(ids))
	seen := make(map[int64]struct{}, len(ids))
	for _, id := range ids {
		if id <= 0 {
			return nil, nil, fmt.Errorf("%w: lease id %d is not positive", fsm.ErrInvalidArgument, id)
		}
		if _, dup := seen[id]; !dup {
			seen[id] = struct{}{}
			uniq = append(uniq, id)
		}
	}
	if len(uniq) == 0 {
		return []fsm.LeaseStatus{}, []int64{}, nil
	}
	res, err := n.keepAliveGrouped(ctx, uniq)
	if err != nil {
		return nil, nil, err
	}
	renewed, notFound := res.Renewed, res.NotFound
	if renewed == nil {
		renewed = []fsm.LeaseStatus{}
	}
	if notFound == nil {
		notFound = []int64{}
	}
	return renewed, notFound, nil
}

// keepAliveHere renews distinct ids through the group commit of this
// member, which must lead: the renewed leases in the order of ids, and the
// IDs not found. The renewals leave out the leases' names: no keep-alive
// answer shows them, and with them the answer to a forwarded batch of
// kaForwardIDs leases named with fsm.MaxNameLen bytes each would not fit
// the forwarding channel's frames.
func (n *Node) keepAliveHere(ctx context.Context, ids []int64) (fsm.Result, error) {
	if !n.IsLeader() {
		return fsm.Result{}, n.notLeader()
	}
	res, err := n.keepAliveGrouped(ctx, ids)
	for i := range res.Renewed {
		res.Renewed[i].Name = ""
	}
	return res, err
}

// keepAliveGrouped renews distinct ids through this member's group
// commit: proposed here when it leads, forwarded to the leader otherwise.
func (n *Node) keepAliveGrouped(ctx context.Context, ids []int64) (fsm.Result, error) {
	req := &kaRequest{ids: ids, resp: make(chan kaResponse, 1)}
	req.caller, _ = callerOf(ctx)
	if dl, ok := ctx.Deadline(); ok {
		req.deadline = dl
	}
	select {
	case n.kaCh <- req:
	case <-ctx.Done():
		return fsm.Result{}, fmt.Errorf("%w: %v", ErrNoLeader, ctx.Err())
	case <-n.stop:
		return fsm.Result{}, ErrClosed
	}
	var r kaResponse
	select {
	case r = <-req.resp:
	case <-ctx.Done():
		return fsm.Result{}, fmt.Errorf("%w: %v", ErrTimeout, ctx.Err())
	case <-n.done:
		// Close answers every request the batcher took before it closes
		// done; one still unanswered stayed queued, never proposed.
		select {
		case r = <-req.resp:
		default:
			return fsm.Result{}, ErrClosed
		}
	}
	if r.err != nil {
		return fsm.Result{}, r.err
	}
	res := fsm.Result{Renewed: make([]fsm.LeaseStatus, 0, len(ids))}
	for _, id := range ids {
		if st, ok := r.byID[id]; ok {
			res.Renewed = append(res.Renewed, st)
		} else {
			res.NotFound = append(res.NotFound, id)
		}
	}
	return res, nil
}

// runKeepAliveBatcher owns the group commit: it drains waiting requests
// into one KeepAlive entry, with at most kaInFlight entries outstanding.
func (n *Node) runKeepAliveBatcher() {
	defer n.wg.Done()
	sem := make(chan struct{}, kaInFlight)
	// The groups in flight outlive the batcher, which stops as Close
	// begins: Close, having handed leadership over, waits for their
	// answers as for other writes (closewait.go), so they are cancelled
	// only once raft is down (a follower's forwarded group then ends
	// before Close waits for the node's goroutines).
	ctx, cancel := context.WithCancel(context.Background())
	defer func() {
		<-n.raftDown
		cancel()
	}()
	last := 0 // IDs in the previous group
	for {
		var first *kaRequest
		select {
		case first = <-n.kaCh:
		case <-n.stop:
			return
		}
		busy := false
		select {
		case sem <- struct{}{}:
		default:
			busy = true
			select {
			case sem <- struct{}{}:
			case <-n.stop:
				first.resp <- kaResponse{err: ErrClosed}
				return
			}
		}
		target := 0
		if busy {
			target = last
		}
		batch, count, ok := n.collectKeepAlives(first, target)
		if !ok {
			for _, r := range batch {
				r.resp <- kaResponse{err: ErrClosed}
			}
			return
		}
		last = count
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			defer func() { <-sem }()
			n.commitKeepAlives(ctx, batch, count)
		}()
	}
}

// collectKeepAlives makes a group from first and the requests waiting
// behind it, up to the batch cap. Below target IDs it lingers for more, for
// at most the configured linger. ok is false when the node stops meanwhile
// (the batch then holds every request taken, to be answered).
func (n *Node) collectKeepAlives(first *kaRequest, target int) (batch []*kaRequest, count int, ok bool) {
	batch = []*kaRequest{first}
	count = len(first.ids)
	limit := n.cfg.KeepAliveBatch
drain:
	for count < limit {
		select {
		case r := <-n.kaCh:
			batch = append(batch, r)
			count += len(r.ids)
		default:
			break drain
		}
	}
	if target > limit {
		target = limit
	}
	if count >= target || n.cfg.KeepAliveLinger <= 0 {
		return batch, count, true
	}
	t := time.NewTimer(n.cfg.KeepAliveLinger)
	defer t.Stop()
	for count < target {
		select {
		case r := <-n.kaCh:
			batch = append(batch, r)
			count += len(r.ids)
		case <-t.C:
			return batch, count, true
		case <-n.stop:
			return batch, count, false
		}
	}
	return batch, count, true
}

func (n *Node) commitKeepAlives(ctx context.Context, batch []*kaRequest, count int) {
	// The batch's deadline is its last request's: none waits longer than
	// it would have alone, and none is cut short by another's.
	var deadline time.Time
	for _, r := range batch {
		if r.deadline.IsZero() {
			deadline = time.Time{}
			break
		}
		if r.deadline.After(deadline) {
			deadline = r.deadline
		}
	}
	if deadline.IsZero() {
		deadline = time.Now().Add(n.cfg.ApplyTimeout)
	}
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	if n.IsLeader() {
		n.commitGroup(ctx, batch, count, n.proposeKeepAlive)
		return
	}
	// A follower forwards whole requests, at most kaForwardIDs IDs at a
	// time (a larger request alone), so that each request's answer is its
	// own group's. A group with requests made for tokens names their
	// callers, for the leader to check (kacaller.go).
	for start := 0; start < len(batch); {
		end, ids, callers := start, 0, false
		for end < len(batch) && (end == start || ids+len(batch[end].ids) <= kaForwardIDs) {
			ids += len(batch[end].ids)
			callers = callers || batch[end].caller != ""
			end++
		}
		if callers {
			n.forwardKeepAliveGroup(ctx, batch[start:end], ids)
		} else {
			n.commitGroup(ctx, batch[start:end], ids, n.forwardKeepAlive)
		}
		start = end
	}
}

// commitGroup renews the union of the group's IDs with commit and answers
// every request of the group.
func (n *Node) commitGroup(ctx context.Context, group []*kaRequest, count int, commit func(context.Context, []int64) (fsm.Result, error)) {
	ids := kaUnion(group, count)
	n.met.keepAliveBatch.Observe(float64(len(ids)))
	resp := kaAnswer(commit(ctx, ids))
	for _, r := range group {
		r.resp <- resp
	}
}

func (n *Node) proposeKeepAlive(ctx context.Context, ids []int64) (fsm.Result, error) {
	return n.propose(ctx, "keepalive", fsm.KeepAlive{IDs: ids, SlackMs: n.slackMs()})
}

// forwardKeepAlive sends one batch of renewals to the leader, or proposes
// it here if this member turns out to lead.
func (n *Node) forwardKeepAlive(ctx context.Context, ids []int64) (fsm.Result, error) {
	return n.forward(ctx, fsm.KeepAlive{IDs: ids}, func() (fsm.Result, error) { return n.proposeKeepAlive(ctx, ids) })
}
