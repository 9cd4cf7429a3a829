package registry

import (
	"context"
	"time"

	"github.com/hashicorp/raft"
)

// A follower learns of its own removal only if the leader's one
// best-effort send of the configuration without it arrives. One that was
// cut off or down at that moment still finds itself in its latest
// configuration, knows no leader, and keeps standing for election in
// vain: every request then waits LeaderWait for a leader and every watch
// stays open on a state that no longer changes. So a member that goes
// without a leader for a while asks the members of its configuration
// whether it is still one. Only a leader that has just confirmed its
// leadership with a quorum answers for the cluster; any other member says
// it cannot tell.

// Answers to kindMembership.
const (
	membershipUnknown byte = 0 // not the leader, or it could not confirm it
	membershipMember  byte = 1
	membershipRemoved byte = 2
)

// removalCallTimeout bounds one question to one member.
const removalCallTimeout = time.Second

// membershipHere answers whether id is in this leader's latest
// configuration. The read index confirms that this member leads now, so a
// deposed leader cut off with an old configuration cannot tell a member
// it was removed.
func (n *Node) membershipHere(ctx context.Context, id string) byte {
	if n.raft.State() != raft.Leader {
		return membershipUnknown
	}
	if _, err := n.leaderReadIndex(ctx); err != nil {
		return membershipUnknown
	}
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return membershipUnknown
	}
	for _, s := range f.Configuration().Servers {
		if s.ID == raft.ServerID(id) {
			return membershipMember
		}
	}
	return membershipRemoved
}

// probeRemoval asks, every other election timeout, whether this member is
// still one, once it has gone two checks in a row without a leader (an
// election in progress does not count). It owns its own channel client: a
// question to a member that does not lead must not take the place of the
// connection that forwarded writes use.
func (n *Node) probeRemoval() {
	defer n.wg.Done()
	every := 2 * n.cfg.ElectionTimeout
	t := time.NewTicker(every)
	defer t.Stop()
	var probes *peerClient
	defer func() {
		if probes != nil {
			probes.close()
		}
	}()
	leaderless := 0
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
		if a, _ := n.raft.LeaderWithID(); a != "" || n.raft.State() == raft.Leader {
			leaderless = 0
			continue
		}
		if leaderless++; leaderless < 2 || n.Removed() {
			continue
		}
		if probes == nil {
			probes = newPeerClient(n.layer, n.log, n.peers.maxFrame)
		}
		n.askMembership(n.stopCtx, probes)
	}
}

// askMembership asks each other member of this member's latest
// configuration, in turn, until a leader answers. A leader that says this
// member is not one marks it removed as of its last log index: nothing is
// appended to the log of a member no leader replicates to, and a leader
// that adds it back appends entries, which ends the mark.
func (n *Node) askMembership(parent context.Context, probes *peerClient) {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return
	}
	last := n.raft.LastIndex()
	self := raft.ServerID(n.cfg.ID)
	for _, s := range f.Configuration().Servers {
		if s.ID == self {
			continue
		}
		ctx, cancel := context.WithTimeout(parent, removalCallTimeout)
		resp, err := probes.call(ctx, string(s.Address), kindMembership, []byte(n.cfg.ID))
		cancel()
		if err != nil || len(resp) != 1 {
			continue
		}
		switch resp[0] {
		case membershipMember:
			return
		case membershipRemoved:
			n.removedAt.Store(last + 1)
			n.log.Warn("the leader says this member was removed from the cluster; refusing requests until a leader adds it back",
				"leader", s.Address)
			return
		}
	}
}

// markedRemoved reports whether a leader said this member was removed and
// no entry has been appended to its log since.
func (n *Node) markedRemoved() bool {
	at := n.removedAt.Load()
	return at != 0 && n.raft.LastIndex()+1 == at
}
