package registry

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// A leader without a cluster ID that is blind to part of the log
// (identity.blindTo: its newest snapshot at start, or one it restored,
// covers entries it never looked at) cannot tell from its own log whether
// the cluster already has an ID. During a rolling upgrade an upgraded
// member may have led (its entries carried the ID) while this member ran
// an older build that applied them without looking, and its snapshot then
// covered them; in an idle cluster no later entry tells it. Were it to
// propose a candidate, every member holding the cluster's ID would refuse
// the entry as another cluster's and stop. So such a leader proposes with
// no ID (which every member applies) until each other member of the
// configuration, asked over the member channel (kindClusterID), answers
// that it holds none and has looked at the log up to the leader's first
// entry of its term (so at every committed entry in its own log). A member
// that cannot answer (down, or of an older build, which cannot tell)
// keeps the question open; one that holds an ID keeps it open too (this
// leader adopts it when a leader that has it proposes). Nothing is
// proposed while it is open: a quiet cluster stays as it is.

// clusterIDVouchEvery is how often a blind leader asks again.
const clusterIDVouchEvery = 2 * time.Second

// mayChooseClusterID reports whether this member, leading, may propose
// with its candidate ID.
func (n *Node) mayChooseClusterID() bool {
	if !n.leaderIsReady() {
		return false
	}
	return n.ident.blindTo.Load() == 0 || n.ident.vouchedTerm.Load() == n.readyTerm.Load()
}

// clusterIDHere answers kindClusterID: the index up to which this
// member's log went through the guard in this process, or a snapshot it
// restored covers (it will never look at those entries again), then the
// ID if it holds one. Not the state file's applied index: restarted, a
// member has that at once, while raft has yet to hand it the entries
// after its snapshot again, and one of them may carry the cluster's ID.
func (n *Node) clusterIDHere() []byte {
	if n.hooks != nil && n.hooks.noClusterID {
		return nil // as an older build, which cannot tell: no answer that decodes
	}
	looked := max(n.fates.seen.Load(), n.fates.restoredTo.Load())
	return append(binary.AppendUvarint(nil, looked), n.ident.ID()...)
}

func decodeClusterIDAnswer(b []byte) (applied uint64, id []byte, err error) {
	applied, k := binary.Uvarint(b)
	if k <= 0 {
		return 0, nil, fmt.Errorf("bad applied index")
	}
	switch rest := b[k:]; len(rest) {
	case 0:
		return applied, nil, nil
	case clusterIDLen:
		return applied, rest, nil
	}
	return 0, nil, fmt.Errorf("bad cluster id of %d bytes", len(b)-k)
}

// vouchClusterID asks the other members until they vouch for this blind
// leader (since: the index of its first entry of term), then records the
// term and closes done. It gives up when ctx ends (leadership lost) or
// this member adopts an ID meanwhile.
func (n *Node) vouchClusterID(ctx context.Context, term, since uint64, done chan<- struct{}) {
	for {
		if n.ident.ID() != nil {
			return
		}
		if n.othersHoldNoClusterID(ctx, since) {
			n.ident.vouchedTerm.Store(term)
			n.log.Info("no member holds a cluster id: this leader chooses one", "term", term)
			close(done)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(clusterIDVouchEvery):
		}
	}
}

// othersHoldNoClusterID asks every other member of the configuration for
// its cluster ID: true when each answered none, having applied since.
func (n *Node) othersHoldNoClusterID(ctx context.Context, since uint64) bool {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return false
	}
	p := newPeerClient(n.layer, n.log, n.peers.maxFrame)
	defer p.close()
	for _, s := range f.Configuration().Servers {
		if s.ID == raft.ServerID(n.cfg.ID) {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, removalCallTimeout)
		resp, err := p.call(cctx, string(s.Address), kindClusterID, nil)
		cancel()
		if err == nil {
			var applied uint64
			var id []byte
			if applied, id, err = decodeClusterIDAnswer(resp); err == nil && id != nil {
				err = fmt.Errorf("it holds cluster id %x", id)
			} else if err == nil && applied < since {
				err = fmt.Errorf("it has looked at its log up to %d, not yet %d", applied, since)
			}
		}
		if err != nil {
			n.log.Debug("not choosing a cluster id yet: a member cannot vouch that the cluster has none",
				"member", s.ID, "error", err)
			return false
		}
	}
	return true
}
