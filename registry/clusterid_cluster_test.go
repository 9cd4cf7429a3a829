package registry

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/rosterhq/roster/fsm"
	"github.com/rosterhq/roster/internal/testutil"
)

// The raft-level guard. A member of cluster X is brought up on its data
// directory at a raft address that cluster Y's configuration lists (Y's
// n2, stopped): Y's leader replicates to it without any join, and raft's
// log matching accepts Y's entries (every cluster's log starts with a
// bootstrap entry at index 1, term 1). The member applies none of them:
// it reports not ready and stops with ErrClusterMismatch; its state file
// holds X's state and nothing of Y's; Y goes on without it.
func TestEntriesOfAnotherClusterAreNotApplied(t *testing.T) {
	x := startCluster(t, 2, clusterOpts{})
	xl := x.leader()
	if _, err := xl.Put(ctxT(t, 10*time.Second), fsm.Put{Key: "/x/only", Value: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	xid := waitClusterID(t, x.nodes...)
	y := startCluster(t, 3, clusterOpts{})
	yl := y.leader()
	if _, err := yl.Put(ctxT(t, 10*time.Second), fsm.Put{Key: "/y/only", Value: []byte("y")}); err != nil {
		t.Fatal(err)
	}
	yid := waitClusterID(t, y.nodes...)

	// X's n1, stopped with the rest of X, comes back where Y's n2 was.
	stray := x.nodes[0]
	cfg := stray.cfg
	xAddr := stray.RaftAddr()
	for _, n := range x.nodes {
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
	}
	victim := y.followers(yl)[0]
	addr := victim.RaftAddr()
	if err := victim.Close(); err != nil {
		t.Fatal(err)
	}
	cfg.RaftAddr = addr
	again := reopen(t, cfg, nil)
	select {
	case <-again.Done():
	case <-time.After(60 * time.Second):
		t.Fatalf("X's member at Y's address %s did not stop; ready: %v", addr, again.Ready())
	}
	if err := again.Err(); !errors.Is(err, ErrClusterMismatch) {
		t.Fatalf("X's member stopped with %v, want ErrClusterMismatch", err)
	}
	if err := again.Ready(); !errors.Is(err, ErrNotReady) || !errors.Is(err, ErrClusterMismatch) {
		t.Fatalf("X's member reports ready: %v, want not ready for a cluster mismatch", err)
	}
	t.Logf("stopped with: %v", again.Err())

	// X's state file: X's key and X's member records, nothing of Y's.
	sm, err := fsm.Open(fsm.Config{Path: filepath.Join(cfg.DataDir, "state.db"), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	st := sm.State()
	_, hasX := st.Get("/x/only")
	_, hasY := st.Get("/y/only")
	m, _ := st.Member("n1")
	sm.Close()
	if !hasX || hasY {
		t.Fatalf("X's state file holds x/only: %v, y/only: %v; want X's key only", hasX, hasY)
	}
	if m.RaftAddr != xAddr {
		t.Fatalf("X's state records n1 at %q, want X's own %s", m.RaftAddr, xAddr)
	}
	// Its ID is still X's.
	again = reopenStopped(t, cfg)
	if got := again.ClusterID(); got != xid {
		t.Fatalf("the data directory's cluster id is %s, want X's %s (Y's is %s)", got, xid, yid)
	}

	// Y goes on: a write commits on its remaining two voters.
	var l *Node
	testutil.Eventually(t, 30*time.Second, "a write on Y commits", func() bool {
		for _, n := range y.nodes {
			if n != victim && n.IsLeader() {
				if _, err := n.Put(ctxT(t, 5*time.Second), fsm.Put{Key: "/y/after", Value: []byte("y")}); err == nil {
					l = n
					return true
				}
			}
		}
		return false
	})
	for _, n := range y.nodes {
		if n == victim {
			continue
		}
		testutil.Eventually(t, 10*time.Second, n.ID()+" of Y applies its write", func() bool {
			_, ok := n.fsm.State().Get("/y/after")
			return ok
		})
		if _, ok := n.fsm.State().Get("/x/only"); ok {
			t.Fatalf("%s of Y holds X's key", n.ID())
		}
		if n.ClusterID() != yid {
			t.Fatalf("%s of Y has cluster id %s, want %s", n.ID(), n.ClusterID(), yid)
		}
	}
	_ = l
}

// reopenStopped opens a data directory whose raft log holds another
// cluster's entries only long enough to read its cluster ID: the node
// stops again as soon as it replays one.
func reopenStopped(t *testing.T, cfg Config) *Node {
	t.Helper()
	cfg.RaftAddr = "127.0.0.1:0"
	n := reopen(t, cfg, nil)
	n.Close()
	return n
}

// Adoption. A cluster created before the cluster ID existed (its members
// propose entries with the nonce alone, and bootstrap without an ID) has
// none; once its members run this build, the leader, once ready, proposes
// a tick that carries an ID, with no write, and every member adopts the
// same one, persists it (a restarted member has it before applying
// anything), and a fresh joiner adopts it too.
func TestClusterWithoutIDAdoptsOne(t *testing.T) {
	old := func(int) *testHooks { return &testHooks{noClusterID: true} }
	tc := startCluster(t, 3, clusterOpts{hooks: old})
	l := tc.leader()
	if _, err := l.Put(ctxT(t, 10*time.Second), fsm.Put{Key: "/k", Value: []byte("old")}); err != nil {
		t.Fatal(err)
	}
	for _, n := range tc.nodes {
		if n.ClusterID() != "" {
			t.Fatalf("%s of an old cluster has cluster id %s", n.ID(), n.ClusterID())
		}
	}
	var last raft.Log
	if err := l.logs.GetLog(l.raft.LastIndex(), &last); err != nil {
		t.Fatal(err)
	}
	if last.Type == raft.LogCommand && len(last.Extensions) != fateNonceLen {
		t.Fatalf("an old member's entry has Extensions %x, want the nonce alone", last.Extensions)
	}

	// The rolling upgrade: each member restarts on its data directory and
	// address, without the hook.
	for i, n := range tc.nodes {
		cfg := stopInPlace(t, n)
		tc.nodes[i] = reopen(t, cfg, nil)
	}
	testutil.Eventually(t, 30*time.Second, "every member ready", func() bool {
		for _, n := range tc.nodes {
			if n.Ready() != nil {
				return false
			}
		}
		return true
	})
	// The upgraded leader's first tick once ready carries it: no write
	// needed.
	id := waitClusterID(t, tc.nodes...)
	l = tc.leader()
	if _, err := l.Put(ctxT(t, 10*time.Second), fsm.Put{Key: "/k", Value: []byte("new")}); err != nil {
		t.Fatal(err)
	}

	// A fresh member adopts it.
	cfg := Config{ID: "n4", DataDir: t.TempDir(), RaftAddr: "127.0.0.1:0", NodeNumber: -1, HTTPAdvertise: "127.0.0.1:14"}
	fastRaft(&cfg)
	fresh := reopen(t, cfg, nil)
	if err := l.AddMember(ctxT(t, 20*time.Second), JoinRequest{ID: "n4", RaftAddr: fresh.RaftAddr(), Voter: true}); err != nil {
		t.Fatal(err)
	}
	if got := waitClusterID(t, append(tc.nodes, fresh)...); got != id {
		t.Fatalf("the cluster id changed from %s to %s", id, got)
	}

	// Restarts keep it: read from the raft store at open, before any
	// entry is applied.
	for i, n := range []*Node{tc.followers(l)[0], fresh} {
		cfg := stopInPlace(t, n)
		again := reopen(t, cfg, nil)
		if got := again.ClusterID(); got != id {
			t.Fatalf("restart %d: %s opened with cluster id %q, want %s", i, cfg.ID, got, id)
		}
	}
}
