package registry

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/rosterhq/roster/fsm"
)

// The cluster identity guard. raft's RPCs carry no cluster identity, so a
// member restarted on another cluster's data directory (pointed at the
// wrong cluster with -join, or at an address the other cluster's
// configuration lists) can have raft's log matching accept the other
// leader's entries over its own state: young clusters' terms are small and
// often equal. So every cluster has an ID, 16 random bytes, and:
//
//   - the member that bootstraps a cluster chooses it and persists it
//     before bootstrapping;
//   - every proposal carries it in raft.Log.Extensions, after the fate
//     nonce (extEncode); the state machine never reads Extensions, so an
//     older member applies such entries as before;
//   - a member without an ID (a fresh joiner, or any member of a cluster
//     created before the ID existed) adopts the ID of the first entry it
//     applies that carries one, persisting it before applying the entry;
//   - a member never applies an entry that carries another ID: it applies
//     nothing from then on, reports not ready and stops (idFSM, and
//     watchIdentity), rather than mix two clusters' state;
//   - a member that has an ID sends it with a join request, and a member
//     of another cluster refuses it (ErrClusterMismatch) before raft
//     talks at all.
//
// The ID lives in raft's stable store (raft.db), beside the term and vote:
// the guard protects the log, and the two cannot be separated (a copied or
// restored raft directory carries its ID), and raft-boltdb writes it in
// one fsynced transaction, with no file of its own to create and sync.

const clusterIDLen = 16

// clusterIDKey is the stable store key of the persisted ID. raft's own
// keys are CurrentTerm, LastVoteTerm and LastVoteCand.
var clusterIDKey = []byte("RosterClusterID")

// The layout of Extensions: a proposal of an older member holds the
// 16-byte nonce alone (or nothing, before the nonce existed); from
// extVersion1 on, a version byte, the nonce, then the cluster ID.
const (
	extVersion1 byte = 1
	extV1Len         = 1 + fateNonceLen + clusterIDLen
)

// extEncode is the Extensions of a proposal with nonce; id nil (no cluster
// ID known yet) gives the older layout, the nonce alone.
func extEncode(nonce, id []byte) []byte {
	if id == nil {
		return nonce
	}
	b := make([]byte, 0, extV1Len)
	b = append(b, extVersion1)
	b = append(b, nonce...)
	return append(b, id...)
}

// extDecode splits an entry's Extensions into its nonce and cluster ID,
// either nil when absent. A layout this build does not know (a later
// version) carries neither as far as it can tell.
func extDecode(ext []byte) (nonce, id []byte) {
	switch {
	case len(ext) == fateNonceLen:
		return ext, nil
	case len(ext) == extV1Len && ext[0] == extVersion1:
		return ext[1 : 1+fateNonceLen], ext[1+fateNonceLen:]
	}
	return nil, nil
}

// ErrClusterMismatch: a member of one cluster met another cluster (a join
// request, or a replicated entry, carrying another cluster ID).
var ErrClusterMismatch = errors.New("cluster mismatch")

// identity is this member's cluster ID and the guard's state.
type identity struct {
	stable raft.StableStore
	log    *slog.Logger
	// id is the persisted ID; nil while none is known.
	id atomic.Pointer[[clusterIDLen]byte]
	// candidate is what a ready leader without an ID proposes with: it
	// becomes the cluster's ID when the first entry carrying it commits
	// and is applied (by everyone, this leader included). It is not
	// persisted before: an entry of a leader that loses leadership may
	// never commit, and the next leader's candidate wins instead.
	candidate [clusterIDLen]byte
	// blindTo, while this member has no ID, is the index up to which it
	// may have missed an entry carrying the cluster's: the log before its
	// newest snapshot at open is not replayed, nor is the log a restored
	// snapshot covers (and an older build applied them without looking).
	// A leader blind to part of the log chooses a candidate only once
	// vouched for (clustervouch.go): the cluster may have an ID it cannot
	// see, and its own would make every member holding that one refuse
	// its entries and stop.
	blindTo atomic.Uint64
	// vouchedTerm is the term in which every other member said it holds
	// no ID (clustervouch.go): this leader may choose one then.
	vouchedTerm atomic.Uint64
	// applied is the state machine's applied index (after a restore, the
	// snapshot's).
	applied func() uint64

	// mismatch is set once the guard refused an entry (read for every
	// applied batch: an atomic), and tripped closed then.
	mismatch atomic.Pointer[error]
	tripOnce sync.Once
	tripped  chan struct{}
}

// openIdentity reads the persisted ID, if any; without one, this member
// is blind to the log its newest snapshot in snaps (nil: none) covers.
func openIdentity(stable raft.StableStore, snaps raft.SnapshotStore, applied func() uint64, log *slog.Logger) (*identity, error) {
	g := &identity{stable: stable, log: log, tripped: make(chan struct{}), applied: applied}
	if _, err := rand.Read(g.candidate[:]); err != nil {
		return nil, fmt.Errorf("registry: cluster id: %w", err)
	}
	b, err := stable.Get(clusterIDKey)
	switch {
	case errors.Is(err, raftboltdb.ErrKeyNotFound) || (err == nil && len(b) == 0):
		if snaps != nil {
			list, err := snaps.List()
			if err != nil {
				return nil, fmt.Errorf("registry: snapshots: %w", err)
			}
			if len(list) > 0 {
				g.blindTo.Store(list[0].Index)
			}
		}
		return g, nil
	case err != nil:
		return nil, fmt.Errorf("registry: read the cluster id: %w", err)
	case len(b) != clusterIDLen:
		return nil, fmt.Errorf("registry: the cluster id in the raft store is %d bytes, not %d", len(b), clusterIDLen)
	}
	g.hold(b)
	return g, nil
}

// ID is the persisted cluster ID, nil when none is known yet.
func (g *identity) ID() []byte {
	if p := g.id.Load(); p != nil {
		return p[:]
	}
	return nil
}

// String is the ID in hex, "" when none is known.
func (g *identity) String() string { return hex.EncodeToString(g.ID()) }

// persist writes id to the stable store, then makes it this member's.
func (g *identity) persist(id []byte) error {
	if err := g.stable.Set(clusterIDKey, id); err != nil {
		return fmt.Errorf("registry: persist the cluster id: %w", err)
	}
	g.hold(id)
	return nil
}

// hold makes id this member's.
func (g *identity) hold(id []byte) {
	var a [clusterIDLen]byte
	copy(a[:], id)
	g.id.Store(&a)
}

// chooseAtBootstrap persists the ID of a cluster this member bootstraps:
// its candidate, or the ID a crash left persisted before bootstrapping.
func (g *identity) chooseAtBootstrap() error {
	if g.ID() != nil {
		return nil
	}
	return g.persist(g.candidate[:])
}

// forgetUnbootstrapped drops the ID of a data directory without raft
// state (has false) that is not bootstrapping now: a first start with
// -bootstrap persists the ID before bootstrapping, and a crash or a
// failed write between the two leaves an ID that belongs to no cluster.
// Kept, it would be sent with a join request, which the cluster refuses
// as another's, and an operator's AddMember would have this member refuse
// the cluster's entries.
func (g *identity) forgetUnbootstrapped(has, bootstrapping bool) error {
	if has || bootstrapping || g.ID() == nil {
		return nil
	}
	g.log.Warn("forgetting the cluster id of a bootstrap that did not happen (no raft state)", "cluster_id", g.String())
	if err := g.stable.Set(clusterIDKey, []byte{}); err != nil {
		return fmt.Errorf("registry: forget the cluster id of a bootstrap that did not happen: %w", err)
	}
	g.id.Store(nil)
	return nil
}

// forProposal is the ID a proposal carries: the persisted one; else, on a
// leader that may choose one (Node.mayChooseClusterID: ready, so every
// entry before its term is applied, and either it applied every committed
// entry or the other members vouched that none holds an ID), the
// candidate; else none, as an older member would.
func (g *identity) forProposal(mayChoose func() bool) []byte {
	if id := g.ID(); id != nil {
		return id
	}
	if mayChoose() {
		return g.candidate[:]
	}
	return nil
}

// refused is the guard's error once it refused an entry, nil before.
func (g *identity) refused() error {
	if p := g.mismatch.Load(); p != nil {
		return *p
	}
	return nil
}

// trip records the guard's refusal, once.
func (g *identity) trip(err error) {
	g.tripOnce.Do(func() {
		g.mismatch.Store(&err)
		close(g.tripped)
	})
}

// admit decides, before the state machine applies it, whether an entry
// that carries id may be applied, adopting id when this member has none.
// It never blocks on anything but the stable store's write.
func (g *identity) admit(l *raft.Log, id []byte) bool {
	own := g.ID()
	if own == nil {
		// Persisted before the entry is applied: a crash between the two
		// replays the entry, which carries the same ID.
		if err := g.persist(id); err != nil {
			// Held in memory all the same: this member, leading, must
			// propose the ID the cluster has, never a candidate of its
			// own that the others would refuse. A restart adopts it again
			// from the log (or from the next entry).
			g.hold(id)
			g.log.Warn("adopted the cluster id, but could not persist it", "cluster_id", hex.EncodeToString(id), "error", err)
			return true
		}
		g.log.Info("adopted the cluster id", "cluster_id", hex.EncodeToString(id), "index", l.Index)
		return true
	}
	if bytes.Equal(own, id) {
		return true
	}
	err := fmt.Errorf("%w: entry %d (term %d) belongs to cluster %x, but this member's data directory belongs to cluster %x; "+
		"it applies nothing more (move the data directory aside to join that cluster, or point the member back at its own)",
		ErrClusterMismatch, l.Index, l.Term, id, own)
	g.log.Error("refusing an entry of another cluster", "entry_cluster_id", hex.EncodeToString(id),
		"cluster_id", hex.EncodeToString(own), "index", l.Index, "term", l.Term)
	g.trip(err)
	return false
}

// idFSM is the state machine as raft sees it, below fateFSM: it applies
// only the entries of this member's cluster (identity.admit), and nothing
// once it refused one. A refused entry answers the guard's error; raft
// counts it applied, the state machine does not (its applied index stays
// before it, so a restart meets the same entry and refuses it again).
type idFSM struct {
	raft.BatchingFSM
	g *identity
}

func (s idFSM) ApplyBatch(logs []*raft.Log) []interface{} {
	if err := s.g.refused(); err != nil {
		return refusedResults(len(logs), err)
	}
	for i, l := range logs {
		if l.Type != raft.LogCommand {
			continue
		}
		if _, id := extDecode(l.Extensions); id != nil && !s.g.admit(l, id) {
			out := make([]interface{}, 0, len(logs))
			if i > 0 {
				out = append(out, s.BatchingFSM.ApplyBatch(logs[:i])...)
			}
			return append(out, refusedResults(len(logs)-i, s.g.refused())...)
		}
	}
	return s.BatchingFSM.ApplyBatch(logs)
}

func (s idFSM) Apply(l *raft.Log) interface{} { return s.ApplyBatch([]*raft.Log{l})[0] }

// Restore replaces the state with a snapshot: a member without an ID is
// then blind to the log it covers (an entry there may have carried one).
func (s idFSM) Restore(rc io.ReadCloser) error {
	err := s.BatchingFSM.Restore(rc)
	if s.g.ID() == nil && s.g.applied != nil {
		for idx := s.g.applied(); ; {
			cur := s.g.blindTo.Load()
			if idx <= cur || s.g.blindTo.CompareAndSwap(cur, idx) {
				break
			}
		}
	}
	return err
}

func refusedResults(n int, err error) []interface{} {
	out := make([]interface{}, n)
	for i := range out {
		out[i] = fsm.Result{Err: err}
	}
	return out
}

// ClusterID is this member's cluster ID in hex, "" while it has none (a
// member that has not yet applied an entry carrying one).
func (n *Node) ClusterID() string { return n.ident.String() }

// watchIdentity stops the node once the guard refused an entry: its raft
// must not keep acknowledging the other cluster's entries. Like watchFSM,
// it closes the node from its own goroutine: never inside Apply.
func (n *Node) watchIdentity() {
	defer n.wg.Done()
	select {
	case <-n.stop:
	case <-n.ident.tripped:
		n.stopForeign(n.ident.refused())
	}
}

// stopForeign stops the node because it met another cluster (err): it
// records err as the node's and closes it from a goroutine of its own
// (the caller may be one Close waits for).
func (n *Node) stopForeign(err error) {
	n.doneErr.Store(&err)
	n.log.Error("stopping: this member met another cluster", "error", err)
	go n.Close()
}

// ClusterIDAsker is what a Joiner may also do: ask the member at addr for
// its cluster's ID.
type ClusterIDAsker interface {
	// AskClusterID answers the ID in hex, "" when that member has none (or
	// its build does not know cluster IDs).
	AskClusterID(ctx context.Context, addr string) (string, error)
}

// checkJoinTargets checks, on a member restarted on its data directory at
// its recorded address with -join, that the members -join names belong
// to its cluster. Such a member sends no join request (it is a member
// already), so -join naming another cluster's members, a mistake (it was
// meant to be there), would go unnoticed while it kept serving its own
// cluster's state: it stops instead, as a refused join does. A few rounds
// at most: with every target down the check is skipped, and the apply
// guard remains.
func (n *Node) checkJoinTargets(j Joiner) {
	asker, ok := j.(ClusterIDAsker)
	own := n.ClusterID()
	if !ok || own == "" || len(n.cfg.Join) == 0 {
		return
	}
	backoff := 200 * time.Millisecond
	for range 5 {
		answered := false
		for _, addr := range n.cfg.Join {
			ctx, cancel := context.WithTimeout(n.stopCtx, 5*time.Second)
			id, err := asker.AskClusterID(ctx, addr)
			cancel()
			switch {
			case err != nil:
				n.log.Debug("could not ask a -join member for its cluster id", "via", addr, "error", err)
			case id != "" && id != own:
				n.stopForeign(fmt.Errorf("%w: -join names %s, a member of cluster %s, but this member's data directory belongs to cluster %s; "+
					"point -join at this member's own cluster, or move the data directory aside to join that one", ErrClusterMismatch, addr, id, own))
				return
			default:
				answered = true
			}
		}
		if answered {
			return
		}
		select {
		case <-n.stop:
			return
		case <-time.After(backoff):
		}
		backoff *= 2
	}
	n.log.Warn("could not check that the -join members belong to this member's cluster: none answered", "join", n.cfg.Join)
}

// checkJoinCluster refuses a join request from a member of another
// cluster. A request without an ID (a fresh member, an older build) and a
// member here without one (it has not applied an entry carrying one yet)
// pass: the leader, which may know, checks again.
func (n *Node) checkJoinCluster(req JoinRequest) error {
	if req.ClusterID == "" {
		return nil
	}
	id, err := hex.DecodeString(req.ClusterID)
	if err != nil || len(id) != clusterIDLen {
		return fmt.Errorf("%w: cluster id %q is not %d hex-encoded bytes", fsm.ErrInvalidArgument, clipKey(req.ClusterID), clusterIDLen)
	}
	own := n.ident.ID()
	if own == nil || bytes.Equal(own, id) {
		return nil
	}
	return fmt.Errorf("%w: member %s belongs to cluster %x, this cluster is %x; "+
		"start it on an empty data directory to join this cluster, or point -join at its own cluster",
		ErrClusterMismatch, req.ID, id, own)
}
