package registry

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/hashicorp/raft"
)

// Cluster describes the raft configuration as this node sees it, with the
// members' HTTP addresses from the replicated metadata.
func (n *Node) Cluster(ctx context.Context) (ClusterInfo, error) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return ClusterInfo{}, n.mapRaftErr(err)
	}
	st := n.fsm.State()
	_, leaderID := n.raft.LeaderWithID()
	info := ClusterInfo{
		Members:      []Member{},
		Term:         n.term(),
		CommitIndex:  n.raft.CommitIndex(),
		AppliedIndex: st.AppliedIndex(),
		ClusterID:    n.ClusterID(),
	}
	for _, s := range f.Configuration().Servers {
		m := Member{ID: string(s.ID), RaftAddr: string(s.Address), Voter: s.Suffrage == raft.Voter, Leader: s.ID == leaderID}
		if md, ok := st.Member(string(s.ID)); ok {
			m.HTTPAddr = md.HTTPAddr
		}
		info.Members = append(info.Members, m)
		if m.Leader {
			l := m
			info.Leader = &l
		}
	}
	return info, nil
}

func (n *Node) term() uint64 {
	t, _ := strconv.ParseUint(n.raft.Stats()["term"], 10, 64)
	return t
}

// Snapshot takes a raft snapshot now (compacting the log) and returns the
// index it covers; with nothing new since the last one, that one's index.
func (n *Node) Snapshot(ctx context.Context) (uint64, error) {
	f := n.raft.Snapshot()
	if err := f.Error(); err != nil {
		if errors.Is(err, raft.ErrNothingNewToSnapshot) {
			list, lerr := n.snaps.List()
			if lerr == nil && len(list) > 0 {
				return list[0].Index, nil
			}
		}
		return 0, fmt.Errorf("registry: snapshot: %w", n.mapRaftErr(err))
	}
	meta, rc, err := f.Open()
	if err != nil {
		return 0, fmt.Errorf("registry: snapshot: %w", err)
	}
	rc.Close()
	return meta.Index, nil
}

// readyWait bounds how long Ready waits for a read index and for this
// member to apply it.
const readyWait = time.Second

// Ready is nil when this member is a voter, a leader is known and this
// member has applied everything the leader had committed when Ready was
// called: its read index, confirmed by the leader. A member that lags on
// its log (its own commit index is behind the leader's) is not ready.
func (n *Node) Ready() error { return n.ready(true) }

// ready is Ready; without voter, a caught-up non-voter is ready too.
func (n *Node) ready(voter bool) error {
	if err := n.ident.refused(); err != nil {
		return fmt.Errorf("%w: %w", ErrNotReady, err)
	}
	select {
	case <-n.stop:
		return ErrClosed
	default:
	}
	addr, _ := n.raft.LeaderWithID()
	if addr == "" {
		return ErrNoLeader
	}
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return fmt.Errorf("%w: %v", ErrNotReady, f.Error())
	}
	votes := false
	for _, s := range f.Configuration().Servers {
		if s.ID == raft.ServerID(n.cfg.ID) && s.Suffrage == raft.Voter {
			votes = true
		}
	}
	if voter && !votes {
		return fmt.Errorf("%w: not a voter of the cluster yet", ErrNotReady)
	}
	ctx, cancel := context.WithTimeout(n.stopCtx, readyWait)
	defer cancel()
	if n.IsLeader() && !n.leaderIsReady() {
		return fmt.Errorf("%w: leader is catching up", ErrNotReady)
	}
	idx, err := n.readIndex(ctx)
	if err != nil {
		if errors.Is(err, ErrNoLeader) {
			return err
		}
		return fmt.Errorf("%w: no read index from the leader: %v", ErrNotReady, err)
	}
	if err := n.fsm.WaitApplied(ctx, idx); err != nil {
		return fmt.Errorf("%w: applied index %d behind the leader's commit index %d", ErrNotReady, n.fsm.State().AppliedIndex(), idx)
	}
	return nil
}

// HasLeader reports whether this member knows a leader now, itself
// included. A member cut off from the majority knows none once raft's
// heartbeat timeout has passed (a leader, once its leader lease has).
func (n *Node) HasLeader() bool {
	if n.raft.State() == raft.Leader {
		return true
	}
	addr, _ := n.raft.LeaderWithID()
	return addr != ""
}

// LeaderAddr is the leader's advertised HTTP address ("" when no leader is
// known or it did not record one), cheap enough for every answer.
func (n *Node) LeaderAddr() string {
	if n.raft.State() == raft.Leader {
		return n.cfg.HTTPAdvertise
	}
	_, id := n.raft.LeaderWithID()
	if id == "" {
		return ""
	}
	if m, ok := n.fsm.State().Member(string(id)); ok {
		return m.HTTPAddr
	}
	return ""
}
