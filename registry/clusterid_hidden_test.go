package registry

import (
	"bytes"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/rosterhq/roster/fsm"
	"github.com/rosterhq/roster/internal/testutil"
)

// transferTo moves leadership from the current leader to n and waits
// until n leads, ready.
func transferTo(t *testing.T, tc *testCluster, n *Node) {
	t.Helper()
	testutil.Eventually(t, 30*time.Second, n.ID()+" leads, ready", func() bool {
		if n.leaderIsReady() {
			return true
		}
		if l := tc.leader(); l != n {
			if err := l.raft.LeadershipTransferToServer(raft.ServerID(n.ID()), raft.ServerAddress(n.RaftAddr())).Error(); err != nil {
				t.Logf("transfer to %s: %v", n.ID(), err)
			}
		}
		return n.leaderIsReady()
	})
}

// A member whose snapshot hides the cluster's ID: during a rolling
// upgrade an upgraded member led (its tick carried the ID, which the
// members still on the older build applied without looking), and an older
// member's snapshot then covered that entry. Upgraded and restarted, that
// member replays nothing before its snapshot, so it has no ID; the
// cluster is idle, so no later entry gives it one. Made leader, it must
// not propose an ID of its own: the member that has the cluster's refused
// its entries and stopped (and with a second one, the cluster lost its
// quorum).
func TestMemberWhoseSnapshotHidesTheIDProposesNoOther(t *testing.T) {
	old := func(int) *testHooks { return &testHooks{noClusterID: true} }
	tc := startCluster(t, 3, clusterOpts{hooks: old})
	l := tc.leader()
	if _, err := l.Put(ctxT(t, 10*time.Second), fsm.Put{Key: "/k", Value: []byte("old")}); err != nil {
		t.Fatal(err)
	}
	upgrade := func(i int) *Node {
		n := tc.nodes[i]
		cfg := stopInPlace(t, n)
		tc.nodes[i] = reopen(t, cfg, nil)
		testutil.Eventually(t, 30*time.Second, cfg.ID+" ready", func() bool { return tc.nodes[i].Ready() == nil })
		return tc.nodes[i]
	}
	// The first member upgraded leads: its tick carries the ID.
	up := upgrade(0)
	transferTo(t, tc, up)
	testutil.Eventually(t, 20*time.Second, "the upgraded leader has an id", func() bool { return up.ClusterID() != "" })
	id := up.ClusterID()
	last := up.fsm.State().AppliedIndex()

	// An older member applies it, and its snapshot covers it.
	o := tc.nodes[1]
	testutil.Eventually(t, 20*time.Second, "the older member applied the id's entry", func() bool {
		return o.fsm.State().AppliedIndex() >= last
	})
	if _, err := o.Snapshot(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	o = upgrade(1)
	if got := o.ClusterID(); got != "" {
		t.Skipf("the restarted member replayed an entry carrying the id (%s): the snapshot did not hide it", got)
	}

	transferTo(t, tc, o)
	if _, err := o.Put(ctxT(t, 10*time.Second), fsm.Put{Key: "/k", Value: []byte("new")}); err != nil {
		t.Fatal(err)
	}
	idx := o.fsm.State().AppliedIndex()
	testutil.Eventually(t, 20*time.Second, "the first upgraded member applied the write, or refused it", func() bool {
		return up.fsm.State().AppliedIndex() >= idx || up.ident.refused() != nil
	})
	if err := up.ident.refused(); err != nil {
		t.Fatalf("a member of the cluster refused its own cluster's entry: %v", err)
	}
	if got := up.ClusterID(); got != id {
		t.Fatalf("the first upgraded member's id changed from %s to %s", id, got)
	}
	if got := o.ClusterID(); got != "" && got != id {
		t.Fatalf("the leader whose snapshot hid the id has id %s, the cluster's is %s", got, id)
	}
	if err := up.Ready(); err != nil {
		t.Fatalf("the first upgraded member is not ready: %v", err)
	}

	// The last member upgraded, the blind leader still proposes none (a
	// member holds one); once the member that has it leads, all have it.
	upgrade(2)
	transferTo(t, tc, up)
	if got := waitClusterID(t, tc.nodes...); got != id {
		t.Fatalf("the cluster id changed from %s to %s", id, got)
	}
}

// A cluster created before the cluster ID whose members all have
// snapshots (any cluster that ran long enough) still gets one once every
// member runs this build: each is blind to the log before its snapshot,
// so the leader asks the others, which all answer that they hold none,
// and then chooses one, which every member adopts.
func TestBlindMembersOfAnOldClusterAdoptOneID(t *testing.T) {
	old := func(int) *testHooks { return &testHooks{noClusterID: true} }
	tc := startCluster(t, 3, clusterOpts{hooks: old})
	l := tc.leader()
	if _, err := l.Put(ctxT(t, 10*time.Second), fsm.Put{Key: "/k", Value: []byte("old")}); err != nil {
		t.Fatal(err)
	}
	idx := l.fsm.State().AppliedIndex()
	for _, n := range tc.nodes {
		testutil.Eventually(t, 20*time.Second, n.ID()+" applied the write", func() bool { return n.fsm.State().AppliedIndex() >= idx })
		if _, err := n.Snapshot(ctxT(t, 10*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	for i, n := range tc.nodes {
		cfg := stopInPlace(t, n)
		tc.nodes[i] = reopen(t, cfg, nil)
		if tc.nodes[i].ident.blindTo.Load() == 0 {
			t.Fatalf("%s restarted on a snapshot is not blind to the log before it", cfg.ID)
		}
	}
	id := waitClusterID(t, tc.nodes...)
	l = tc.leader()
	if _, err := l.Put(ctxT(t, 10*time.Second), fsm.Put{Key: "/k", Value: []byte("new")}); err != nil {
		t.Fatal(err)
	}
	for _, n := range tc.nodes {
		if err := n.ident.refused(); err != nil || n.ClusterID() != id {
			t.Fatalf("%s: cluster id %s (want %s), refused: %v", n.ID(), n.ClusterID(), id, err)
		}
	}
}

// A first start with -bootstrap persists the new cluster's ID before
// bootstrapping; a crash (or a failed write) between the two leaves a
// data directory with an ID but no raft state, which belongs to no
// cluster. Started again to join a cluster, or to be added to one, it
// must join: it sent the stale ID and was refused as another cluster's
// member, and added by an operator it refused the cluster's entries.
func TestAbortedBootstrapIDIsForgotten(t *testing.T) {
	tc := startCluster(t, 1, clusterOpts{})
	l := tc.leader()
	id := waitClusterID(t, l)

	for _, join := range []bool{true, false} {
		cfg := Config{ID: "n2", DataDir: t.TempDir(), RaftAddr: "127.0.0.1:0", NodeNumber: -1, HTTPAdvertise: "127.0.0.1:12"}
		if join {
			cfg.ID = "n3"
		}
		fastRaft(&cfg)
		// What the crash left: the raft store holds an ID, nothing else.
		if err := os.MkdirAll(filepath.Join(cfg.DataDir, "raft"), 0o700); err != nil {
			t.Fatal(err)
		}
		store, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(cfg.DataDir, "raft", "raft.db")})
		if err != nil {
			t.Fatal(err)
		}
		stale := bytes.Repeat([]byte{0xab}, clusterIDLen)
		if err := store.Set(clusterIDKey, stale); err != nil {
			t.Fatal(err)
		}
		store.Close()

		if join {
			cfg.Join = []string{"n1"}
		}
		n := reopen(t, cfg, nil)
		if join {
			n.StartJoin(nodeJoiner{to: l})
		} else if err := l.AddMember(ctxT(t, 20*time.Second), JoinRequest{ID: cfg.ID, RaftAddr: n.RaftAddr(), Voter: true}); err != nil {
			t.Fatal(err)
		}
		testutil.Eventually(t, 30*time.Second, cfg.ID+" joined and adopted the cluster's id, or stopped", func() bool {
			select {
			case <-n.Done():
				return true
			default:
			}
			return n.ClusterID() == id && n.Ready() == nil
		})
		if err := n.Err(); err != nil {
			t.Fatalf("join=%v: %s stopped: %v", join, cfg.ID, err)
		}
	}
}

// A member vouches for having looked at the log up to an index only once
// its entries up to there went through the guard in this process (or a
// restored snapshot covers them), not by its state file's applied index:
// restarted, it has applied its whole state file's worth while raft has
// yet to hand it the entries after its snapshot again, one of which may
// carry the cluster's ID. A leader that took its word would choose an ID
// of its own, which this member would refuse after adopting the other.
func TestRestartedMemberVouchesOnlyForWhatItReplayed(t *testing.T) {
	old := func(int) *testHooks { return &testHooks{noClusterID: true} }
	tc := startCluster(t, 2, clusterOpts{hooks: old})
	l := tc.leader()
	if _, err := l.Put(ctxT(t, 10*time.Second), fsm.Put{Key: "/k", Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	since := l.fsm.State().AppliedIndex()
	f := tc.followers(l)[0]
	testutil.Eventually(t, 20*time.Second, "the follower applied the write", func() bool { return f.fsm.State().AppliedIndex() >= since })
	cfg := stopInPlace(t, f)
	release := make(chan struct{})
	var once sync.Once
	open := func() { once.Do(func() { close(release) }) }
	t.Cleanup(open)
	f = reopen(t, cfg, &testHooks{apply: func() { <-release }})
	if got := f.fsm.State().AppliedIndex(); got < since {
		t.Fatalf("restarted at applied index %d, want at least %d from its state file", got, since)
	}
	applied, id, err := decodeClusterIDAnswer(f.clusterIDHere())
	if err != nil || id != nil {
		t.Fatalf("answer %d %x %v", applied, id, err)
	}
	if applied >= since {
		t.Fatalf("a member whose replay is held vouches for index %d (its state file's), want below %d", applied, since)
	}
	open()
	testutil.Eventually(t, 20*time.Second, "the member vouches once it replayed", func() bool {
		applied, id, err := decodeClusterIDAnswer(f.clusterIDHere())
		return err == nil && id == nil && applied >= since
	})
}
