package registry

import (
	"context"
	"fmt"

	"github.com/rosterhq/roster/fsm"
)

// Keep-alives are group-committed: every renewal waiting while the previous
// batch is in flight goes into the next raft entry, so the cost per renewal
// falls as load rises instead of each renewal paying for a log entry.
const kaInFlight = 2

type kaRequest struct {
	ids  []int64 // distinct
	resp chan kaResponse
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
	res, err := n.write(ctx, fsm.KeepAlive{IDs: uniq})
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
// IDs not found.
func (n *Node) keepAliveHere(ctx context.Context, ids []int64) (fsm.Result, error) {
	if !n.IsLeader() {
		return fsm.Result{}, n.notLeader()
	}
	req := &kaRequest{ids: ids, resp: make(chan kaResponse, 1)}
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
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for {
		var first *kaRequest
		select {
		case first = <-n.kaCh:
		case <-n.stop:
			return
		}
		select {
		case sem <- struct{}{}:
		case <-n.stop:
			first.resp <- kaResponse{err: ErrClosed}
			return
		}
		batch := []*kaRequest{first}
		count := len(first.ids)
	drain:
		for count < n.cfg.KeepAliveBatch {
			select {
			case r := <-n.kaCh:
				batch = append(batch, r)
				count += len(r.ids)
			default:
				break drain
			}
		}
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			defer func() { <-sem }()
			n.commitKeepAlives(ctx, batch, count)
		}()
	}
}

func (n *Node) commitKeepAlives(ctx context.Context, batch []*kaRequest, count int) {
	ids := make([]int64, 0, count)
	seen := make(map[int64]struct{}, count)
	for _, r := range batch {
		for _, id := range r.ids {
			if _, dup := seen[id]; !dup {
				seen[id] = struct{}{}
				ids = append(ids, id)
			}
		}
	}
	n.met.keepAliveBatch.Observe(float64(len(ids)))
	res, err := n.propose(ctx, "keepalive", fsm.KeepAlive{IDs: ids, SlackMs: n.slackMs()})
	resp := kaResponse{err: err}
	if err == nil {
		resp.byID = make(map[int64]fsm.LeaseStatus, len(res.Renewed))
		for _, st := range res.Renewed {
			resp.byID[st.ID] = st
		}
	}
	for _, r := range batch {
		r.resp <- resp
	}
}
