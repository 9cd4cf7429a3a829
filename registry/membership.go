package registry

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/hashicorp/raft"
	"github.com/rosterhq/roster/fsm"
)

// JoinRequest asks an existing member to add this one.
type JoinRequest struct {
	ID       string
	RaftAddr string
	HTTPAddr string
	Voter    bool
	// ClusterID is the joining member's cluster ID in hex, "" when it has
	// none (a fresh member): a member of another cluster is refused
	// (ErrClusterMismatch).
	ClusterID string
}

// Joiner delivers requests about this member to the member at addr (an
// HTTP host:port). The HTTP front end implements it; registry knows nothing
// of HTTP.
type Joiner interface {
	// Join asks to add the member (AddMember).
	Join(ctx context.Context, addr string, req JoinRequest) error
	// UpdateMember asks to re-record the member's addresses, only if it is
	// in the configuration (UpdateMember).
	UpdateMember(ctx context.Context, addr string, req JoinRequest) error
}

// AddMember adds (or re-addresses) a member on the leader and records its
// metadata with a unique snowflake node number. It returns once the new
// configuration and the metadata have committed.
//
// Any member takes it: a follower forwards it to the leader.
func (n *Node) AddMember(ctx context.Context, req JoinRequest) error {
	if req.ID == "" || req.RaftAddr == "" {
		return fmt.Errorf("%w: member id and raft address are required", fsm.ErrInvalidArgument)
	}
	if err := n.checkJoinCluster(req); err != nil {
		return err
	}
	if n.ident.ID() != nil {
		// Checked here: the leader need not see it, and a leader of an
		// older build refuses a field it does not know.
		req.ClusterID = ""
	}
	return n.memberChange(ctx, kindAddMember, encodeJoin(req), func() error { return n.addMemberHere(ctx, req) })
}

// memberChange runs a membership change on the leader: here, or
// forwarded over the channel from a follower.
func (n *Node) memberChange(ctx context.Context, kind byte, payload []byte, here func() error) error {
	if !n.IsLeader() {
		if _, self, err := n.onLeader(ctx, kind, payload); !self {
			return err
		}
	}
	return here()
}

// addMemberHere is AddMember on this member, which must lead.
func (n *Node) addMemberHere(ctx context.Context, req JoinRequest) error {
	if req.ID == "" || req.RaftAddr == "" {
		return fmt.Errorf("%w: member id and raft address are required", fsm.ErrInvalidArgument)
	}
	if err := n.checkJoinCluster(req); err != nil {
		return err
	}
	if err := n.waitLeaderReady(ctx); err != nil {
		return err
	}
	cf := n.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return n.mapRaftErr(err)
	}
	servers := cf.Configuration().Servers
	for _, s := range servers {
		// raft's AddNonvoter leaves a voter a voter: refuse, changing
		// nothing, rather than answer as if it were a non-voter now.
		if s.ID == raft.ServerID(req.ID) && s.Suffrage == raft.Voter && !req.Voter {
			return fmt.Errorf("%w: %s is a voter and cannot be added as a non-voter; remove it first", fsm.ErrInvalidArgument, req.ID)
		}
		// A member at this leader's own raft address cannot be a
		// replacement of it (this leader is there, answering): it is a
		// mistake, which the rule below would answer by removing the
		// leader.
		if s.Address == raft.ServerAddress(req.RaftAddr) && s.ID != raft.ServerID(req.ID) && s.ID == raft.ServerID(n.cfg.ID) {
			return fmt.Errorf("%w: raft address %s is the leader's own (member %s)", fsm.ErrInvalidArgument, req.RaftAddr, s.ID)
		}
	}
	if req.Voter && !isVoterAt(servers, req) {
		if err := n.checkAnswers(ctx, req.RaftAddr); err != nil {
			return fmt.Errorf("%w: the new voter %s does not answer at raft address %s (%v); start it first (rosterd -bootstrap=false), or add it as a non-voter", fsm.ErrInvalidArgument, req.ID, req.RaftAddr, err)
		}
	}
	for _, s := range servers {
		// Another ID at the same raft address is a member that was renamed
		// or replaced: drop it, or two entries would fight for one peer.
		if s.Address == raft.ServerAddress(req.RaftAddr) && s.ID != raft.ServerID(req.ID) {
			n.log.Info("removing member that used the joining member's raft address", "old_id", s.ID, "addr", s.Address)
			if err := n.waitFuture(ctx, n.raft.RemoveServer(s.ID, 0, n.cfg.ApplyTimeout)); err != nil {
				return n.mapProposeErr(err)
			}
			if _, err := n.propose(ctx, "member", fsm.DelMember{ID: string(s.ID)}); err != nil {
				return err
			}
		}
	}
	var f raft.IndexFuture
	if req.Voter {
		f = n.raft.AddVoter(raft.ServerID(req.ID), raft.ServerAddress(req.RaftAddr), 0, n.cfg.ApplyTimeout)
	} else {
		f = n.raft.AddNonvoter(raft.ServerID(req.ID), raft.ServerAddress(req.RaftAddr), 0, n.cfg.ApplyTimeout)
	}
	if err := n.waitFuture(ctx, f); err != nil {
		return n.mapProposeErr(err)
	}
	st := n.fsm.State()
	m := fsm.Member{ID: req.ID, RaftAddr: req.RaftAddr, HTTPAddr: req.HTTPAddr}
	old, had := st.Member(req.ID)
	if had && m.HTTPAddr == "" && old.RaftAddr == req.RaftAddr {
		// raftd's POST /join {"id","addr"} names no HTTP address: a
		// member joining again where it is keeps the one it recorded.
		m.HTTPAddr = old.HTTPAddr
	}
	if had && old.Node > 0 {
		m.Node = old.Node
	} else {
		m.Node = n.nodeNums.reserve(n.fsm, req.ID)
		defer n.nodeNums.release(m.Node)
	}
	if _, err := n.propose(ctx, "member", fsm.SetMember{Member: m}); err != nil {
		// The member is in the configuration: that is the change asked
		// for, and an error (no_leader promises that nothing changed)
		// would misreport it. Its record follows: a running member's
		// metadata keeper asks the leader for it, and a leader records
		// itself.
		n.log.Warn("member added, but its record is not written yet", "id", req.ID, "error", err)
		return nil
	}
	n.log.Info("member added", "id", req.ID, "raft", req.RaftAddr, "http", m.HTTPAddr, "voter", req.Voter, "node_number", m.Node)
	return nil
}

// RemoveMember removes a member from the configuration and forgets its
// metadata. Removing an unknown member succeeds (it is not a member).
//
// The configuration goes first: a member whose record vanished while it was
// still a voter would have its metadata keeper ask for the record back. If
// the leader removed itself it can no longer propose; the next leader
// forgets the record (forgetRemoved).
//
// Any member takes it: a follower forwards it to the leader.
func (n *Node) RemoveMember(ctx context.Context, id string) error {
	if id == "" {
		return fmt.Errorf("%w: member id is required", fsm.ErrInvalidArgument)
	}
	return n.memberChange(ctx, kindRemoveMember, []byte(id), func() error { return n.removeMemberHere(ctx, id) })
}

// removeMemberHere is RemoveMember on this member, which must lead.
func (n *Node) removeMemberHere(ctx context.Context, id string) error {
	if id == "" {
		return fmt.Errorf("%w: member id is required", fsm.ErrInvalidArgument)
	}
	if err := n.waitLeaderReady(ctx); err != nil {
		return err
	}
	// raft refuses to leave no voter, after the change was handed to it:
	// refuse first, as a request that changed nothing, not as a timeout.
	// An ID that is not a member (a typo) is not "removed" either: raft
	// would take it and change nothing (etcd answers "member not found").
	cf := n.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return n.mapRaftErr(err)
	}
	in := slices.ContainsFunc(cf.Configuration().Servers, func(s raft.Server) bool { return s.ID == raft.ServerID(id) })
	if _, recorded := n.fsm.State().Member(id); !in && !recorded {
		return fmt.Errorf("%w: %s", ErrNotMember, id)
	}
	if lastVoter(cf.Configuration().Servers, id) {
		return fmt.Errorf("%w: %s is the cluster's last voter; add another voter first", fsm.ErrInvalidArgument, id)
	}
	// Bounded like propose: raft may never answer a change it handed to
	// its state machine goroutine when it shuts down, which it does as
	// soon as it commits its own removal.
	if err := n.waitFuture(ctx, n.raft.RemoveServer(raft.ServerID(id), 0, n.cfg.ApplyTimeout)); err != nil {
		if id != n.cfg.ID || !n.removedItself(ctx) {
			return n.mapProposeErr(err)
		}
	}
	n.log.Info("member removed", "id", id)
	if _, ok := n.fsm.State().Member(id); ok && n.IsLeader() {
		if _, err := n.propose(ctx, "member", fsm.DelMember{ID: id}); err != nil {
			n.log.Warn("removed member's record not yet forgotten; the leader will retry", "id", id, "error", err)
		}
	}
	return nil
}

// removedItself reports, once raft is down, whether it shut itself down on
// committing a configuration without this member (ShutdownOnRemove):
// stopRemoved records that before it closes the node. The wait is bounded
// by ApplyTimeout as well as ctx: the change may have failed for another
// reason (leadership lost before it committed), and then raft stays up,
// and a caller without a deadline would wait for ever.
func (n *Node) removedItself(ctx context.Context) bool {
	limit := time.NewTimer(n.cfg.ApplyTimeout)
	defer limit.Stop()
	select {
	case <-n.raftDown:
	case <-ctx.Done():
		return false
	case <-limit.C:
		return false
	}
	return errors.Is(n.Err(), ErrNotMember)
}

// UpdateMember re-records the HTTP address of a member that is part of the
// configuration at req.RaftAddr. It never adds a member or changes the
// configuration: a member's metadata keeper uses it, and a removed member
// must not be able to bring itself back.
//
// Any member takes it: a follower forwards it to the leader.
func (n *Node) UpdateMember(ctx context.Context, req JoinRequest) error {
	if req.ID == "" || req.RaftAddr == "" {
		return fmt.Errorf("%w: member id and raft address are required", fsm.ErrInvalidArgument)
	}
	return n.memberChange(ctx, kindUpdateMember, encodeJoin(req), func() error { return n.updateMemberHere(ctx, req) })
}

// updateMemberHere is UpdateMember on this member, which must lead.
func (n *Node) updateMemberHere(ctx context.Context, req JoinRequest) error {
	if req.ID == "" || req.RaftAddr == "" {
		return fmt.Errorf("%w: member id and raft address are required", fsm.ErrInvalidArgument)
	}
	if err := n.waitLeaderReady(ctx); err != nil {
		return err
	}
	cf := n.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return n.mapRaftErr(err)
	}
	in := false
	for _, s := range cf.Configuration().Servers {
		if s.ID == raft.ServerID(req.ID) {
			if s.Address != raft.ServerAddress(req.RaftAddr) {
				return fmt.Errorf("%w: %s is a member at raft address %s, not %s", ErrNotMember, req.ID, s.Address, req.RaftAddr)
			}
			in = true
		}
	}
	if !in {
		return fmt.Errorf("%w: %s", ErrNotMember, req.ID)
	}
	st := n.fsm.State()
	m := fsm.Member{ID: req.ID, RaftAddr: req.RaftAddr, HTTPAddr: req.HTTPAddr}
	if old, ok := st.Member(req.ID); ok && old.Node > 0 {
		m.Node = old.Node
	} else {
		m.Node = freeNodeNumber(st.Members(), req.ID)
	}
	if _, err := n.propose(ctx, "member", fsm.SetMember{Member: m}); err != nil {
		return err
	}
	n.log.Info("member metadata updated", "id", req.ID, "http", req.HTTPAddr)
	return nil
}

// forgetRemoved deletes the records of members no longer in the
// configuration (a leader that removed itself could not). Leader only.
func (n *Node) forgetRemoved(ctx context.Context) error {
	cf := n.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return n.mapRaftErr(err)
	}
	in := map[string]bool{}
	for _, s := range cf.Configuration().Servers {
		in[string(s.ID)] = true
	}
	for _, m := range n.fsm.State().Members() {
		if !in[m.ID] {
			if _, err := n.propose(ctx, "member", fsm.DelMember{ID: m.ID}); err != nil {
				return err
			}
			n.log.Info("forgot the record of a removed member", "id", m.ID)
		}
	}
	return nil
}

// StartJoin asks the members in Config.Join to add this node, retrying with
// backoff until one accepts or the node closes; it does nothing when the
// node restarted from existing state on its recorded address (it is
// already a member: it only checks that they are of its cluster,
// checkJoinTargets) or Join is empty. It also keeps this member's
// replicated metadata right: a member added without its HTTP address (the
// compatibility /join takes only a raft address) asks the leader, through
// j, to record it.
func (n *Node) StartJoin(j Joiner) {
	if !n.needJoin && len(n.cfg.Join) > 0 && n.goAdd() {
		// Apart: with the -join members down it takes a while, and the
		// metadata keeper need not wait for it.
		go func() {
			defer n.wg.Done()
			n.checkJoinTargets(j)
		}()
	}
	if !n.goAdd() {
		return // closing
	}
	go func() {
		defer n.wg.Done()
		if n.needJoin && len(n.cfg.Join) > 0 {
			n.joinLoop(j)
		}
		n.keepMetadata(j)
	}()
}

// keepMetadata checks every few seconds, while this member is a caught-up
// follower (a voter or not), that the replicated record of it holds its
// advertised HTTP address, and asks the leader to fix it when it does not.
func (n *Node) keepMetadata(j Joiner) {
	if n.cfg.HTTPAdvertise == "" {
		return
	}
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
		if n.IsLeader() || n.ready(false) != nil {
			continue // the leader records itself (recordSelf)
		}
		if m, ok := n.fsm.State().Member(n.cfg.ID); ok && m.HTTPAddr == n.cfg.HTTPAdvertise && m.RaftAddr == n.RaftAddr() {
			continue
		}
		_, leader := n.LeaderHTTP()
		if leader == "" {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		req := JoinRequest{ID: n.cfg.ID, RaftAddr: n.RaftAddr(), HTTPAddr: n.cfg.HTTPAdvertise, Voter: true}
		if err := j.UpdateMember(ctx, leader, req); err != nil {
			n.log.Warn("could not update this member's metadata on the leader", "leader", leader, "error", err)
		} else {
			n.log.Info("updated this member's metadata on the leader", "http", n.cfg.HTTPAdvertise)
		}
		cancel()
	}
}

func (n *Node) joinLoop(j Joiner) {
	req := JoinRequest{ID: n.cfg.ID, RaftAddr: n.RaftAddr(), HTTPAddr: n.cfg.HTTPAdvertise, Voter: true, ClusterID: n.ClusterID()}
	backoff := 200 * time.Millisecond
	for attempt := 1; ; attempt++ {
		for _, addr := range n.cfg.Join {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			go func() {
				select {
				case <-n.stop:
					cancel()
				case <-ctx.Done():
				}
			}()
			err := j.Join(ctx, addr, req)
			cancel()
			if err == nil {
				n.log.Info("joined the cluster", "via", addr, "attempt", attempt)
				return
			}
			if errors.Is(err, context.Canceled) {
				return
			}
			if errors.Is(err, ErrClusterMismatch) {
				// Retrying cannot help: this data directory belongs to
				// another cluster. Stop, as a failed state machine does.
				n.stopForeign(fmt.Errorf("join via %s refused: %w", addr, err))
				return
			}
			n.log.Warn("join attempt failed; retrying", "via", addr, "attempt", attempt, "error", err)
			select {
			case <-n.stop:
				return
			default:
			}
		}
		wait := backoff + rand.N(backoff/2)
		select {
		case <-n.stop:
			return
		case <-time.After(wait):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// LeaderHTTP reports whether this node leads and, if not, the leader's HTTP
// address ("" when no leader is known), for forwarding.
func (n *Node) LeaderHTTP() (self bool, addr string) {
	if n.IsLeader() {
		return true, n.cfg.HTTPAdvertise
	}
	var e *NotLeaderError
	if errors.As(n.notLeader(), &e) {
		return false, e.LeaderHTTP
	}
	return false, ""
}

// WaitLeader waits up to the configured LeaderWait for a leader to be known
// (and, if it is this node, ready).
func (n *Node) WaitLeader(ctx context.Context) (self bool, addr string, err error) {
	deadline := time.NewTimer(n.cfg.LeaderWait)
	defer deadline.Stop()
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		self, addr = n.LeaderHTTP()
		if (self && n.leaderIsReady()) || (!self && addr != "") {
			return self, addr, nil
		}
		select {
		case <-t.C:
		case <-deadline.C:
			return false, "", ErrNoLeader
		case <-ctx.Done():
			return false, "", fmt.Errorf("%w: %v", ErrNoLeader, ctx.Err())
		case <-n.stop:
			return false, "", ErrClosed
		}
	}
}

// lastVoter reports whether id is the only voter among servers.
func lastVoter(servers []raft.Server, id string) bool {
	voters, is := 0, false
	for _, s := range servers {
		if s.Suffrage == raft.Voter {
			voters++
			is = is || s.ID == raft.ServerID(id)
		}
	}
	return is && voters == 1
}

// isVoterAt reports whether req's member is already a voter at req's raft
// address: adding it again changes nothing.
func isVoterAt(servers []raft.Server, req JoinRequest) bool {
	for _, s := range servers {
		if s.ID == raft.ServerID(req.ID) {
			return s.Suffrage == raft.Voter && s.Address == raft.ServerAddress(req.RaftAddr)
		}
	}
	return false
}

// checkAnswers asks the member at addr a question over the member channel
// and reports an error unless it answers. A voter that cannot vote must
// not join the configuration: on a one-member cluster it makes a quorum of
// two that can never form again, and the change that would remove it
// needs that quorum (etcd's strict reconfiguration check refuses such a
// change too). Any answer will do, even an error of a build that does not
// know the question: the member is up.
func (n *Node) checkAnswers(ctx context.Context, addr string) error {
	p := newPeerClient(n.layer, n.log, n.peers.maxFrame)
	defer p.close()
	ctx, cancel := context.WithTimeout(ctx, peerDialTimeout)
	defer cancel()
	_, err := p.call(ctx, addr, kindMembership, []byte(n.cfg.ID))
	switch {
	case err == nil:
		return nil
	case isRefusal(err):
		n.log.Debug("a new voter cannot be reached", "addr", addr, "error", err)
		return errors.New("it cannot be reached")
	case errors.Is(err, ErrTimeout):
		return fmt.Errorf("no answer within %v", peerDialTimeout)
	}
	return nil
}
