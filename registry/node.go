package registry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rosterhq/roster/fsm"
	"github.com/rosterhq/roster/internal/boltmap"
	"github.com/rosterhq/roster/internal/logging"
	"github.com/rosterhq/roster/lease"
	bolt "go.etcd.io/bbolt"
)

// Node is one member of a Roster cluster.
type Node struct {
	cfg Config
	log *slog.Logger
	met *metrics

	fsm      *fsm.FSM
	raft     *raft.Raft
	trans    *raft.NetworkTransport
	logStore *raftboltdb.BoltStore
	logs     raft.LogStore // logStore behind a cache of recent entries
	snaps    *raft.FileSnapshotStore

	idgen atomic.Pointer[lease.IDGen] // set while leading
	// readyTerm is the term in which this member, leading, caught up (its
	// first entry of the term applied); 0 when not leading. Linearizable
	// reads need it to be the current term (leaderIsReady).
	readyTerm atomic.Uint64
	meter     atomic.Pointer[lease.Meter] // the lease clock meter while leading

	needJoin bool // first start with -join: StartJoin asks to be added

	kaCh          chan *kaRequest
	leaderReads   readBatcher  // read-index rounds confirmed by a quorum
	followerReads readBatcher  // read indexes asked of the leader
	tokenWaits    atomic.Int64 // ReadForUnknownToken calls in flight

	// The raft port's stream layer and the forwarding channel's two ends.
	layer   *streamLayer
	peers   *peerClient
	peerSrv *peerServer

	// removedAt is 1 + the last log index at which a leader said this
	// member was removed (removal.go); 0: never said.
	removedAt atomic.Uint64

	fates *fates    // entries whose proposers wait for their fate (fate.go)
	ident *identity // the cluster ID and its guard (clusterid.go)
	// proposing counts the proposals in flight on this member, which Close
	// lets answer after handing leadership over (closewait.go).
	proposing atomic.Int64

	hooks *testHooks // nil outside tests

	stop     chan struct{} // closed by Close
	stopCtx  context.Context
	stopAll  context.CancelFunc // cancels stopCtx, with stop
	raftDown chan struct{}      // closed by Close once raft has shut down
	done     chan struct{}      // closed when the node stopped (Close or fatal)
	doneErr  atomic.Pointer[error]
	wg       sync.WaitGroup
	// goMu orders goAdd against Close closing stop: goroutines started on
	// demand join wg only until Close begins, since a WaitGroup must not
	// grow from zero while Close waits on it.
	goMu      sync.Mutex
	nodeNums  nodeNumbers // snowflake node numbers of adds in flight
	closeOnce sync.Once
	closeErr  error
}

// Open starts a node: it opens the state file and raft's stores, restores a
// newer snapshot if the state file is behind one, bootstraps a new cluster
// when asked to, and starts raft and the node's goroutines.
func Open(cfg Config, log *slog.Logger, reg prometheus.Registerer) (*Node, error) {
	return open(cfg, log, reg, nil)
}

func open(cfg Config, log *slog.Logger, reg prometheus.Registerer, hooks *testHooks) (*Node, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("member", cfg.ID)
	raftDir := filepath.Join(cfg.DataDir, "raft")
	if err := os.MkdirAll(raftDir, 0o700); err != nil {
		return nil, fmt.Errorf("registry: data dir: %w", err)
	}
	n := &Node{
		cfg:      cfg,
		log:      log,
		kaCh:     make(chan *kaRequest, 1024),
		stop:     make(chan struct{}),
		raftDown: make(chan struct{}),
		done:     make(chan struct{}),
		hooks:    hooks,
	}
	n.stopCtx, n.stopAll = context.WithCancel(context.Background())
	fates, err := newFates()
	if err != nil {
		return nil, err
	}
	n.fates = fates
	n.leaderReads = readBatcher{n: n, round: n.leaderRound}
	n.followerReads = readBatcher{n: n, round: n.followerRound}
	if err := n.openStores(raftDir); err != nil {
		n.closeStores()
		return nil, err
	}
	if n.ident, err = openIdentity(n.logStore, n.snaps, func() uint64 { return n.fsm.State().AppliedIndex() }, log); err != nil {
		n.closeStores()
		return nil, err
	}
	if err := n.startRaft(); err != nil {
		n.closeStores()
		return nil, err
	}
	met, err := newMetrics(n, reg)
	if err != nil {
		// Wait for raft to stop: it must not use the stores closed below.
		n.raft.Shutdown().Error()
		n.closeStores()
		return nil, err
	}
	n.met = met
	n.wg.Add(8)
	go n.watchIdentity()
	go n.watchAccessControl()
	go n.probeRemoval()
	go n.watchLeadership()
	go n.runKeepAliveBatcher()
	go n.watchFSM()
	go n.runCheckpointer()
	go n.watchLeaderChanges()
	n.peerSrv.start()
	log.Info("node started", "raft", n.trans.LocalAddr(), "data", cfg.DataDir, "applied_index", n.fsm.State().AppliedIndex(),
		"cluster_id", n.ident.String())
	return n, nil
}

func (n *Node) openStores(raftDir string) error {
	hlog := logging.HCLog(n.log, "raft")
	var err error
	n.fsm, err = fsm.Open(fsm.Config{Path: n.statePath(), NoSync: n.cfg.NoSync, WatchHistory: n.cfg.WatchHistory,
		CheckpointEntries: n.cfg.CheckpointEntries, JournalBytes: n.cfg.CheckpointJournal, WatchHistoryBytes: n.cfg.WatchHistoryBytes, Logger: n.log, Failpoint: n.cfg.Failpoint})
	if err != nil {
		return err
	}
	// bbolt's map freelist, not rebuilt from a synced page list: with the
	// default array freelist every commit copies and writes the whole free
	// list, which grows with the log's churn; the map type is rebuilt on
	// open instead. The log's own fsync stays on (NoSync is for tests).
	n.logStore, err = raftboltdb.New(raftboltdb.Options{Path: n.logPath(), NoSync: n.cfg.NoSync,
		BoltOptions: &bolt.Options{Timeout: 5 * time.Second, NoFreelistSync: true, FreelistType: bolt.FreelistMapType}})
	if err != nil {
		return fmt.Errorf("registry: raft log: %w", err)
	}
	logs := newLogCache(n.logStore, logCacheEntries, logCacheBytes)
	logs.release = releaseLogPages(boltmap.DB(n.logStore), n.log)
	n.logs = logs
	n.snaps, err = raft.NewFileSnapshotStoreWithLogger(raftDir, n.cfg.SnapshotRetain, hlog)
	if err != nil {
		return fmt.Errorf("registry: snapshots: %w", err)
	}
	if err := n.removePartialSnapshots(raftDir); err != nil {
		return err
	}
	if err := n.checkStateNotAhead(); err != nil {
		return err
	}
	// raft does not restore snapshots on start (the state file is durable);
	// but a state file behind the newest snapshot (lost or replaced) must be
	// brought up to it, since the log before the snapshot is gone.
	if err := n.catchUpFromSnapshot(); err != nil {
		return err
	}
	if err := n.checkLogCoversState(); err != nil {
		return err
	}
	return n.openTransport(hlog)
}

// checkLogCoversState refuses a raft log that does not reach back to
// the newest snapshot: its start was compacted away and the snapshots
// that covered it deleted (with the state file or without it). raft
// resumes just after the newest snapshot (or from index 1 without one)
// and reads every entry from there, at start for configuration entries and
// then to apply them, whatever the state file holds: it would panic with
// "log not found". Run after catchUpFromSnapshot, which brings a state
// file behind the newest snapshot up to it.
func (n *Node) checkLogCoversState() error {
	first, err := n.logStore.FirstIndex()
	if err != nil {
		return fmt.Errorf("registry: raft log: %w", err)
	}
	if first == 0 { // an empty log: nothing to replay
		return nil
	}
	snap, err := n.newestSnapshotIndex()
	if err != nil {
		return err
	}
	if first > snap+1 {
		return fmt.Errorf("registry: the raft log %s starts at index %d, but the newest snapshot ends at %d (0: none) "+
			"and the state file %s holds entries up to index %d: the log was compacted and the snapshots were deleted, "+
			"so raft cannot resume (restore the snapshots, or move the data directory aside and join the cluster again)",
			n.logPath(), first, snap, n.statePath(), n.fsm.State().AppliedIndex())
	}
	return nil
}

// checkStateNotAhead refuses a state file that includes entries its raft
// files do not hold (they were lost, or replaced by another cluster's):
// raft would hand the entries of the new log at those indexes to a state
// machine that skips them as already applied, and their writes would be
// acknowledged yet never applied.
func (n *Node) checkStateNotAhead() error {
	applied := n.fsm.State().AppliedIndex()
	if applied == 0 {
		return nil
	}
	last, err := n.logStore.LastIndex()
	if err != nil {
		return fmt.Errorf("registry: raft log: %w", err)
	}
	snap, err := n.newestSnapshotIndex()
	if err != nil {
		return err
	}
	if applied > max(last, snap) {
		return fmt.Errorf("registry: the state file %s is ahead of its raft log %s: it includes entries up to index %d, "+
			"the log ends at %d and the newest snapshot at %d; the raft files were lost or replaced, so the state "+
			"cannot be reused (move the data directory aside and join the cluster again, or restore the raft files)",
			n.statePath(), n.logPath(), applied, last, snap)
	}
	return nil
}

// removePartialSnapshots deletes the snapshots a crash left unfinished:
// raft writes a snapshot (its own, or one a leader sends) into a
// directory named with a ".tmp" suffix and renames it once whole, and
// ignores such directories for ever (warning at each listing), so each
// crash while one was written would leave a partial copy of the state on
// disk until the disk filled. Run before raft starts: the data directory
// is this process's (the state file is locked), so nothing else writes
// there.
func (n *Node) removePartialSnapshots(raftDir string) error {
	dir := filepath.Join(raftDir, "snapshots") // raft's FileSnapshotStore layout
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("registry: snapshots: %w", err)
	}
	for _, e := range entries {
		if !e.IsDir() || !strings.HasSuffix(e.Name(), ".tmp") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		if err := os.RemoveAll(path); err != nil {
			return fmt.Errorf("registry: remove an unfinished snapshot: %w", err)
		}
		n.log.Warn("removed a snapshot a crash left unfinished", "path", path)
	}
	return nil
}

// newestSnapshotIndex is the index of the newest snapshot, 0 when none.
func (n *Node) newestSnapshotIndex() (uint64, error) {
	list, err := n.snaps.List()
	if err != nil {
		return 0, fmt.Errorf("registry: snapshots: %w", err)
	}
	if len(list) == 0 {
		return 0, nil
	}
	return list[0].Index, nil
}

func (n *Node) statePath() string { return filepath.Join(n.cfg.DataDir, "state.db") }
func (n *Node) logPath() string   { return filepath.Join(n.cfg.DataDir, "raft", "raft.db") }

func (n *Node) catchUpFromSnapshot() error {
	list, err := n.snaps.List()
	if err != nil || len(list) == 0 {
		return err
	}
	newest := list[0]
	if newest.Index <= n.fsm.State().AppliedIndex() {
		return nil
	}
	n.log.Warn("state file is behind the newest snapshot: restoring it", "snapshot_index", newest.Index, "applied_index", n.fsm.State().AppliedIndex())
	_, rc, err := n.snaps.Open(newest.ID)
	if err != nil {
		return fmt.Errorf("registry: open snapshot %s: %w", newest.ID, err)
	}
	return n.fsm.Restore(rc)
}

func (n *Node) raftConfig() *raft.Config {
	c := raft.DefaultConfig()
	c.LocalID = raft.ServerID(n.cfg.ID)
	c.HeartbeatTimeout = n.cfg.HeartbeatTimeout
	c.ElectionTimeout = n.cfg.ElectionTimeout
	c.LeaderLeaseTimeout = n.cfg.LeaderLeaseTimeout
	c.CommitTimeout = n.cfg.CommitTimeout
	c.SnapshotThreshold = n.cfg.SnapshotThreshold
	c.SnapshotInterval = n.cfg.SnapshotInterval
	c.TrailingLogs = n.cfg.TrailingLogs
	c.NoSnapshotRestoreOnStart = true
	// The most raft allows: one disk write and one replication round take
	// everything waiting. With 256 writers in flight (peerbench put
	// -clients 256, fresh 3-member clusters, two rounds) 64 gave 6,411 and
	// 5,904 puts/s, 256 gave 6,917 and 5,826, 1,024 gave 7,310 and 6,608.
	// With 64 writers the cap never binds.
	c.MaxAppendEntries = 1024
	// Buffer the apply channel so concurrent proposals queue without
	// blocking on the leader loop and commit in larger groups (measured
	// with peerbench's put and keep-alive workloads on 3 members: +25 % and
	// +15 %). It voids raft.Apply's enqueue timeout, which propose does
	// not rely on: it bounds its own wait with the request context.
	c.BatchApplyCh = true
	c.Logger = logging.HCLog(n.log, "raft")
	return c
}

func (n *Node) startRaft() error {
	conf := n.raftConfig()
	if err := raft.ValidateConfig(conf); err != nil {
		return fmt.Errorf("%w: raft: %v", fsm.ErrInvalidArgument, err)
	}
	has, err := raft.HasExistingState(n.logStore, n.logStore, n.snaps)
	if err != nil {
		return fmt.Errorf("registry: inspect raft state: %w", err)
	}
	if !has && n.cfg.Bootstrap && len(n.cfg.Join) == 0 {
		if n.hooks == nil || !n.hooks.noClusterID {
			if err := n.ident.chooseAtBootstrap(); err != nil {
				return err
			}
		}
		n.log.Info("bootstrapping a new cluster", "cluster_id", n.ident.String())
		boot := raft.Configuration{Servers: []raft.Server{{
			ID: conf.LocalID, Address: n.trans.LocalAddr(), Suffrage: raft.Voter,
		}}}
		if err := raft.BootstrapCluster(conf, n.logStore, n.logStore, n.snaps, n.trans, boot); err != nil {
			return fmt.Errorf("registry: bootstrap: %w", err)
		}
	} else if has {
		n.log.Info("restarting into the existing cluster")
	} else if len(n.cfg.Join) > 0 {
		n.needJoin = true
		n.log.Info("first start: will join", "via", n.cfg.Join)
	} else {
		n.log.Info("first start without bootstrap or join: waiting to be added by an existing member")
	}
	if err := n.ident.forgetUnbootstrapped(has, n.cfg.Bootstrap && len(n.cfg.Join) == 0); err != nil {
		return err
	}
	sole, err := n.soleVoter()
	if err != nil {
		return fmt.Errorf("registry: read the raft configuration: %w", err)
	}
	if sole {
		fastElectionConfig(conf)
	}
	logs := n.logs
	if n.cfg.Failpoint != nil {
		logs = compactHookStore{LogStore: logs, failpoint: n.cfg.Failpoint}
	}
	var sm raft.BatchingFSM = n.fsm
	if n.hooks != nil && n.hooks.apply != nil {
		sm = hookedFSM{FSM: n.fsm, apply: n.hooks.apply}
	}
	var trans raft.Transport = n.trans
	if n.hooks != nil && n.hooks.cut != nil {
		trans = cutTransport{NetworkTransport: n.trans, cut: n.hooks.cut}
	}
	if n.hooks == nil || !n.hooks.noClusterID {
		sm = idFSM{BatchingFSM: sm, g: n.ident}
	}
	n.raft, err = raft.NewRaft(conf, fateFSM{BatchingFSM: sm, f: n.fates, applied: func() uint64 { return n.fsm.State().AppliedIndex() }}, logs, n.logStore, n.snaps, trans)
	if err != nil {
		return fmt.Errorf("registry: start raft: %w", err)
	}
	if sole {
		n.electAtOnce()
	}
	if has && len(n.cfg.Join) > 0 && n.addressChanged() {
		// Restarted with its state but on a new raft address: the others
		// still dial the old one. Joining again (same ID, new address)
		// replaces the entry.
		n.needJoin = true
		n.log.Info("raft address changed since the last run: will re-join to update it", "via", n.cfg.Join)
	}
	return nil
}

// addressChanged reports whether the latest configuration lists this member
// under another raft address than the one it now has.
func (n *Node) addressChanged() bool {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return false
	}
	for _, s := range f.Configuration().Servers {
		if s.ID == raft.ServerID(n.cfg.ID) {
			return s.Address != n.trans.LocalAddr()
		}
	}
	return false
}

// closeStores closes whatever openStores opened.
func (n *Node) closeStores() {
	if n.trans != nil {
		n.trans.Close()
	}
	n.closeTransport()
	if n.logStore != nil {
		n.logStore.Close()
	}
	if n.fsm != nil {
		n.fsm.Close()
	}
}

// RaftAddr is the raft address this node advertises.
func (n *Node) RaftAddr() string { return string(n.trans.LocalAddr()) }

// ID is this member's ID.
func (n *Node) ID() string { return n.cfg.ID }

// MaxValueBytes is the largest value a put accepts.
func (n *Node) MaxValueBytes() int { return n.cfg.MaxValue }

// History is the log of recent events watches and blocking reads follow;
// it reflects this member's own applied state.
func (n *Node) History() *fsm.History { return n.fsm.History() }

// FSM exposes the state machine for observers (watches) and tests.
func (n *Node) FSM() *fsm.FSM { return n.fsm }

// IsLeader reports whether this node is the raft leader.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// Done is closed when the node has stopped: after Close, or on its own
// after a fatal state machine error or its removal from the cluster as
// leader (see Err).
func (n *Node) Done() <-chan struct{} { return n.done }

// Err is the fatal error that stopped the node, nil after a clean Close.
func (n *Node) Err() error {
	if p := n.doneErr.Load(); p != nil {
		return *p
	}
	return nil
}

// watchFSM stops the node when the state machine fails: a replica that
// cannot apply an entry must stop rather than diverge.
func (n *Node) watchFSM() {
	defer n.wg.Done()
	select {
	case <-n.stop:
	case <-n.fsm.Failed():
		err := n.fsm.Err()
		n.doneErr.Store(&err)
		n.log.Error("stopping: the state machine failed", "error", err)
		go n.Close()
	}
}

// goAdd counts one more goroutine of the node in wg, unless Close has
// begun: then it returns false and the caller must not start it.
func (n *Node) goAdd() bool {
	n.goMu.Lock()
	defer n.goMu.Unlock()
	select {
	case <-n.stop:
		return false
	default:
	}
	n.wg.Add(1)
	return true
}

func (n *Node) voters() int {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return 0
	}
	v := 0
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == raft.Voter {
			v++
		}
	}
	return v
}

// mapRaftErr maps raft's errors for operations that change nothing (reads,
// leadership checks, configuration reads): any loss of leadership is a
// refusal.
func (n *Node) mapRaftErr(err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrEnqueueTimeout),
		errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return n.notLeader()
	case errors.Is(err, raft.ErrRaftShutdown):
		return ErrClosed
	}
	return err
}

// mapApplyErr is mapProposeErr for the future f that raft.Apply gave for
// an entry, answered err. Raft refuses an entry at its door once it has
// shut down, with a future of index 0: nothing was appended, unlike an
// entry it appended and then could not apply.
func (n *Node) mapApplyErr(f raft.ApplyFuture, err error) error {
	if errors.Is(err, raft.ErrRaftShutdown) && f.Index() == 0 {
		return fmt.Errorf("%w: raft shut down before the entry was proposed", ErrClosed)
	}
	return n.mapProposeErr(err)
}

// mapProposeErr maps the error of a future whose entry was handed to raft
// (a command, a configuration change). Only what raft refuses before
// appending (not the leader, a leadership transfer under way, the apply
// queue full) is a refusal; anything else, a shutdown included, may come
// after the entry was appended, and the entry may still commit: the
// outcome is unknown. (An entry appended and then lost with leadership
// does not come here: its proposer learns its fate first, fate.go.)
func (n *Node) mapProposeErr(err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrEnqueueTimeout),
		errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return n.notLeader()
	}
	return fmt.Errorf("%w: %w", ErrTimeout, err)
}

// notLeader describes the current leader for forwarding.
func (n *Node) notLeader() error {
	addr, id := n.raft.LeaderWithID()
	e := &NotLeaderError{LeaderID: string(id)}
	if addr != "" {
		if m, ok := n.fsm.State().Member(string(id)); ok {
			e.LeaderHTTP = m.HTTPAddr
		}
	}
	return e
}
