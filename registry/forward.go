package registry

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/rosterhq/roster/fsm"
	"github.com/rosterhq/roster/lease"
)

// Every member takes every write: the leader proposes it, a follower sends
// it to the leader over the forwarding channel (peer*.go) and answers with
// the leader's result. What the contract promises about errors holds on
// both paths: a refusal before anything was proposed is ErrNoLeader, a
// request that may have reached the leader and failed after is ErrTimeout.

// openTransport opens the raft port: the stream layer that shares it
// between raft and the channel, raft's network transport over it, and the
// channel's two ends.
func (n *Node) openTransport(hlog hclog.Logger) error {
	var adv net.Addr
	if n.cfg.RaftAdvertise != "" {
		var err error
		adv, err = net.ResolveTCPAddr("tcp", n.cfg.RaftAdvertise)
		if err != nil {
			return fmt.Errorf("registry: advertise raft address: %w", err)
		}
	}
	// The largest request is a txn of TxnBytesFactor values
	// (checkTxnBytes), forwarded whole.
	maxFrame := TxnBytesFactor*n.cfg.MaxValue + maxPeerFrameSlack
	n.peerSrv = newPeerServer(n, n.log, maxFrame)
	layer, err := newStreamLayer(n.cfg.RaftAddr, adv, n.cfg.PeerTLS, n.log, n.peerSrv.serve)
	if err != nil {
		return fmt.Errorf("registry: raft transport on %s: %w", n.cfg.RaftAddr, err)
	}
	n.layer = layer
	n.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: layer, MaxPool: 5, Timeout: 10 * time.Second, Logger: hlog,
		// 1 turns raft's pipelined replication off. Its pipeline can wedge
		// (hashicorp/raft 1.7: when a follower answers a stale term or a
		// failure while a send is waiting, the send and the decoder wait on
		// each other forever; the follower then gets heartbeats but no more
		// entries, and Shutdown hangs on the stuck goroutine). raft's own
		// documentation finds pipelining of little use with batching.
		MaxRPCsInFlight: 1,
	})
	n.peers = newPeerClient(layer, n.log, maxFrame)
	return nil
}

// closeTransport closes the channel's ends and waits for raft's handlers
// of inbound connections (the transport closes the stream layer itself).
func (n *Node) closeTransport() {
	if n.layer != nil {
		n.layer.drainRaft(5 * time.Second)
	}
	if n.peers != nil {
		n.peers.close()
	}
	if n.peerSrv != nil {
		n.peerSrv.close()
	}
}

// write runs a command on the leader and returns its result, the state
// error included (as the result's Err and as the error).
func (n *Node) write(ctx context.Context, c fsm.Command) (fsm.Result, error) {
	if err := n.validate(c); err != nil {
		return fsm.Result{}, err
	}
	if n.IsLeader() {
		return n.applyHere(ctx, c)
	}
	return n.forward(ctx, c, func() (fsm.Result, error) { return n.applyHere(ctx, c) })
}

// forward sends c to the leader over the forwarding channel and returns
// its result; here runs instead when this member turns out to lead.
func (n *Node) forward(ctx context.Context, c fsm.Command, here func() (fsm.Result, error)) (fsm.Result, error) {
	resp, self, err := n.onLeader(ctx, kindPropose, fsm.Encode(c))
	if self {
		return here()
	}
	if err != nil {
		return fsm.Result{}, err
	}
	res, err := fsm.DecodeResult(resp)
	if err != nil {
		return fsm.Result{}, unknownOutcome("undecodable result from the leader: %v", err)
	}
	return res, res.Err
}

// applyForwarded serves a command another member forwarded: checked again
// here (this member's limits), then applied as if it were asked here.
func (n *Node) applyForwarded(ctx context.Context, c fsm.Command) (fsm.Result, error) {
	if _, ok := c.(fsm.Tick); ok {
		return fsm.Result{}, fmt.Errorf("%w: ticks are proposed by the leader only", fsm.ErrInvalidArgument)
	}
	if err := n.validate(c); err != nil {
		return fsm.Result{}, err
	}
	return n.applyHere(ctx, c)
}

// applyHere proposes a validated command on this member, which must lead.
// The leader fills in what only it knows: a new lease's snowflake ID and
// the clock slack of grants and renewals. Renewals join the keep-alive
// group commit.
func (n *Node) applyHere(ctx context.Context, c fsm.Command) (fsm.Result, error) {
	switch c := c.(type) {
	case fsm.Grant:
		return n.grantHere(ctx, c)
	case fsm.KeepAlive:
		return n.keepAliveHere(ctx, c.IDs)
	case fsm.Txn:
		return n.txnHere(ctx, c.Ops)
	}
	return n.propose(ctx, cmdName(c), c)
}

// grantHere proposes a grant on the leader. For ID 0 the generator picks
// an ID above every ID the applied state has seen. A grant with an
// explicit ID still in flight can take the ID chosen here first; the state
// machine then refuses this grant (nothing issued twice) and a fresh ID,
// above that one, is tried.
func (n *Node) grantHere(ctx context.Context, c fsm.Grant) (fsm.Result, error) {
	if c.ID != 0 {
		c.SlackMs = n.slackMs()
		return n.propose(ctx, "grant", c)
	}
	g := n.idgen.Load()
	if g == nil {
		if err := n.waitLeaderReady(ctx); err != nil {
			return fsm.Result{}, err
		}
		if g = n.idgen.Load(); g == nil {
			return fsm.Result{}, n.notLeader()
		}
	}
	for attempt := 0; ; attempt++ {
		id, err := g.Next(n.fsm.State().MaxLeaseID())
		if err != nil {
			return fsm.Result{}, fmt.Errorf("%w: %v", fsm.ErrInvalidArgument, err)
		}
		c.ID, c.SlackMs = id, n.slackMs()
		res, err := n.propose(ctx, "grant", c)
		if errors.Is(err, fsm.ErrLeaseExists) && attempt < 3 {
			continue
		}
		return res, err
	}
}

// checkGrantID checks a lease ID the client chose (0: the leader picks).
func checkGrantID(id int64) error {
	if id < 0 || id > lease.MaxExplicitID {
		return fmt.Errorf("%w: lease id %d is outside 1..%d (0 or none lets the leader pick)", fsm.ErrInvalidArgument, id, int64(lease.MaxExplicitID))
	}
	return nil
}

// validate checks a command before it is proposed or forwarded: a bad
// request never reaches the log. A new command type adds its checks here.
func (n *Node) validate(c fsm.Command) error {
	switch c := c.(type) {
	case fsm.Grant:
		if err := fsm.ValidateTTL(c.TTL); err != nil {
			return err
		}
		if err := fsm.ValidateLeaseName(c.Name); err != nil {
			return err
		}
		return checkGrantID(c.ID)
	case fsm.Revoke:
		if c.ID <= 0 {
			return fmt.Errorf("%w: lease id %d is not positive", fsm.ErrInvalidArgument, c.ID)
		}
	case fsm.KeepAlive:
		for _, id := range c.IDs {
			if id <= 0 {
				return fmt.Errorf("%w: lease id %d is not positive", fsm.ErrInvalidArgument, id)
			}
		}
	case fsm.Put:
		return n.checkPut(c)
	case fsm.Delete:
		return checkDelete(c)
	case fsm.Check:
		return fsm.ErrCheckOutsideTxn
	case fsm.Txn:
		// The leader validates a txn as it prepares it (prepareTxn): only
		// it can pick the lease IDs its grants need. Refuse here what is
		// plainly too big to forward.
		if len(c.Ops) == 0 || len(c.Ops) > MaxTxnOps {
			return fmt.Errorf("%w: a txn holds 1 to %d operations, not %d", fsm.ErrInvalidArgument, MaxTxnOps, len(c.Ops))
		}
		return n.checkTxnBytes(c.Ops)
	case fsm.PutRole:
		return fsm.ValidateRole(c.Role)
	case fsm.PutToken:
		return fsm.ValidateToken(c.Token)
	case fsm.Incr:
		return fsm.ValidateKey(c.Key)
	case fsm.SetMember:
		if c.Member.ID == "" {
			return fmt.Errorf("%w: member id is empty", fsm.ErrInvalidArgument)
		}
	case fsm.DelMember:
		if c.ID == "" {
			return fmt.Errorf("%w: member id is empty", fsm.ErrInvalidArgument)
		}
	}
	return nil
}

// cmdName labels a command in metrics.
func cmdName(c fsm.Command) string {
	switch c.(type) {
	case fsm.Grant:
		return "grant"
	case fsm.Revoke:
		return "revoke"
	case fsm.KeepAlive:
		return "keepalive"
	case fsm.Put:
		return "put"
	case fsm.Delete:
		return "delete"
	case fsm.Incr:
		return "incr"
	case fsm.Tick:
		return "tick"
	case fsm.Txn:
		return "txn"
	case fsm.SetMember, fsm.DelMember:
		return "member"
	case fsm.PutRole, fsm.DeleteRole, fsm.PutToken, fsm.DeleteToken:
		return "auth"
	}
	return "other"
}

// onLeader sends a request to the leader over the channel and returns its
// answer. self reports that this member leads: nothing was sent, and the
// caller serves the request here. A request the leader refused before
// doing anything (it died, or no longer leads) is sent once more, to the
// next leader this member learns of.
func (n *Node) onLeader(ctx context.Context, kind byte, payload []byte) (resp []byte, self bool, err error) {
	plainKind, plainPayload := kind, payload
	kind, payload = n.withCaller(ctx, kind, payload)
	resp, _, self, err = n.onLeaderAs(ctx, kind, payload, plainKind, plainPayload)
	return resp, self, err
}

// onLeaderAs is onLeader for a request made for callers (kind, payload),
// sent again as the plain request (plainKind, plainPayload) to a leader
// too old to take it (callOrPlain); plain reports that the answer is the
// plain request's.
func (n *Node) onLeaderAs(ctx context.Context, kind byte, payload []byte, plainKind byte, plainPayload []byte) (resp []byte, plain, self bool, err error) {
	wait := n.cfg.LeaderWait
	refusedBy, refusedTerm := "", uint64(0)
	for attempt := 0; ; attempt++ {
		addr, self, err := n.awaitLeader(ctx, refusedBy, refusedTerm, wait)
		if err != nil || self {
			return nil, false, self, err
		}
		resp, plain, err = callOrPlain(ctx, n.peers, addr, kind, payload, plainKind, plainPayload)
		if err == nil || !isRefusal(err) || attempt > 0 || ctx.Err() != nil {
			return resp, plain, false, err
		}
		n.log.Debug("the leader refused a forwarded request; waiting for the next one", "leader", addr, "error", err)
		refusedBy, refusedTerm = addr, n.raft.CurrentTerm()
		// A leader that refused may have just died: the others notice
		// after a heartbeat timeout and elect another.
		wait = n.cfg.LeaderWait + n.cfg.HeartbeatTimeout + n.cfg.ElectionTimeout
	}
}

// awaitLeader waits, at most wait, until a leader is known: this member
// (self), or another at the raft address addr. After the member at not
// refused a request in term notTerm, it waits for a leader that is
// another member or was elected in a later term.
func (n *Node) awaitLeader(ctx context.Context, not string, notTerm uint64, wait time.Duration) (addr string, self bool, err error) {
	var deadline <-chan time.Time
	var tick *time.Ticker
	for {
		if n.raft.State() == raft.Leader {
			return "", true, nil
		}
		if a, _ := n.raft.LeaderWithID(); a != "" && (string(a) != not || n.raft.CurrentTerm() > notTerm) {
			return string(a), false, nil
		}
		if tick == nil && n.Removed() {
			return "", false, fmt.Errorf("%w: this member is not in the cluster's configuration (it was removed, or is still joining)", ErrNoLeader)
		}
		if tick == nil {
			t := time.NewTimer(wait)
			defer t.Stop()
			deadline = t.C
			tick = time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
		}
		select {
		case <-tick.C:
		case <-deadline:
			if not != "" {
				return "", false, fmt.Errorf("%w: the leader at %s refused the request and no other leader was elected within %v", ErrNoLeader, not, wait)
			}
			return "", false, fmt.Errorf("%w: none known within %v", ErrNoLeader, wait)
		case <-ctx.Done():
			return "", false, fmt.Errorf("%w: %v", ErrNoLeader, ctx.Err())
		case <-n.stop:
			return "", false, ErrClosed
		}
	}
}

// Removed reports whether this member knows no leader and either its
// latest configuration holds other members but not this one, or a leader
// told it it was removed (removal.go). A follower that was
// removed knows no leader after a heartbeat timeout, and no leader will
// ever contact it again: waiting for one is in vain, and its state no
// longer changes. (A member still joining may look removed for a moment
// during an election; it refuses as it would after waiting, and clients go
// elsewhere.) Cheap while a leader is known.
func (n *Node) Removed() bool {
	if a, _ := n.raft.LeaderWithID(); a != "" || n.raft.State() == raft.Leader {
		return false
	}
	if n.markedRemoved() {
		return true
	}
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return false
	}
	servers := f.Configuration().Servers
	for _, s := range servers {
		if s.ID == raft.ServerID(n.cfg.ID) {
			return false
		}
	}
	return len(servers) > 0
}

// forwardReadIndex asks the leader for a confirmed read index. self: this
// member leads now.
func (n *Node) forwardReadIndex(ctx context.Context) (idx uint64, self bool, err error) {
	resp, self, err := n.onLeader(ctx, kindReadIndex, nil)
	if err != nil || self {
		return 0, self, err
	}
	idx, k := binary.Uvarint(resp)
	if k <= 0 || k != len(resp) {
		return 0, false, fmt.Errorf("%w: undecodable read index from the leader", ErrNoLeader)
	}
	return idx, false, nil
}

// watchLeaderChanges retires the channel to a former leader as soon as raft
// reports another one: new requests go to the new leader, while those
// already sent wait for the former leader's answer, which is their known
// outcome once it learned their entries' fate (fate.go), up to their
// deadlines (peerClient.retireLocked). It also stops the node when raft
// shuts itself down (see stopRemoved).
func (n *Node) watchLeaderChanges() {
	defer n.wg.Done()
	ch := make(chan raft.Observation, 4)
	obs := raft.NewObserver(ch, false, func(o *raft.Observation) bool {
		switch o.Data.(type) {
		case raft.LeaderObservation, raft.RaftState:
			return true
		}
		return false
	})
	n.raft.RegisterObserver(obs)
	defer n.raft.DeregisterObserver(obs)
	for {
		select {
		case <-n.stop:
			return
		case o := <-ch:
			switch d := o.Data.(type) {
			case raft.LeaderObservation:
				n.peers.dropLeader(string(d.LeaderAddr))
			case raft.RaftState:
				if d == raft.Shutdown && n.stopRemoved() {
					return
				}
			}
		}
	}
}

// stopRemoved stops the node after raft shut down without Close: a leader
// that commits its own removal shuts its raft down (ShutdownOnRemove). The
// node can then serve nothing but stale state, and would answer every
// other request only after waiting in vain for a leader; stopped, like a
// node whose state machine failed, it lets rosterd exit and clients fail
// over at once. It reports false when Close shut raft down.
func (n *Node) stopRemoved() bool {
	select {
	case <-n.stop: // Close closes stop before it shuts raft down
		return false
	default:
	}
	err := fmt.Errorf("%w: this member was removed from the cluster, and its raft shut down", ErrNotMember)
	n.doneErr.CompareAndSwap(nil, &err)
	n.log.Error("stopping: this member was removed from the cluster")
	go n.Close()
	return true
}
