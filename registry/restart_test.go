package registry_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rosterhq/roster/fsm"
	"github.com/rosterhq/roster/internal/logging/logtest"
	"github.com/rosterhq/roster/internal/testutil"
	"github.com/rosterhq/roster/registry"
)

func nodeConfig(dir string) registry.Config {
	return registry.Config{
		ID: "n1", DataDir: dir, RaftAddr: "127.0.0.1:0", Bootstrap: true, NodeNumber: -1,
		Tick: 50 * time.Millisecond, HTTPAdvertise: "127.0.0.1:1",
	}
}

func putN(t *testing.T, n *registry.Node, prefix string, count int) {
	t.Helper()
	for i := 0; i < count; i++ {
		if _, err := n.Put(context.Background(), fsm.Put{Key: fmt.Sprintf("%s%03d", prefix, i), Value: []byte("v")}); err != nil {
			t.Fatal(err)
		}
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestStateAheadOfRaftLogIsRefused: a state file whose applied index is
// beyond everything the raft files hold (they were lost or replaced) must
// not be reused: the entries of a new log at those indexes would be skipped
// while their writes are acknowledged.
func TestStateAheadOfRaftLogIsRefused(t *testing.T) {
	for _, tc := range []struct {
		name  string
		wreck func(t *testing.T, dir string)
	}{
		{"raft files lost", func(t *testing.T, dir string) {
			if err := os.RemoveAll(filepath.Join(dir, "raft")); err != nil {
				t.Fatal(err)
			}
		}},
		{"raft files from a newer, shorter cluster", func(t *testing.T, dir string) {
			other := t.TempDir()
			n := openNode(t, other, 50*time.Millisecond)
			if err := n.Close(); err != nil {
				t.Fatal(err)
			}
			if err := os.RemoveAll(filepath.Join(dir, "raft")); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(filepath.Join(other, "raft"), filepath.Join(dir, "raft")); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			n := openNode(t, dir, 50*time.Millisecond)
			putN(t, n, "/k/", 30)
			if err := n.Close(); err != nil {
				t.Fatal(err)
			}
			tc.wreck(t, dir)
			refusedOpen(t, nodeConfig(dir), "a state file ahead of its raft log", "ahead")
		})
	}
}

// TestStateBehindSnapshotCatchesUp: a state file older than the newest
// snapshot (restored from a backup, say) is brought up to the snapshot,
// then the log after it replays: nothing acknowledged is missing.
func TestStateBehindSnapshotCatchesUp(t *testing.T) {
	dir := t.TempDir()
	n := openNode(t, dir, 50*time.Millisecond)
	putN(t, n, "/a/", 10)
	if _, err := n.Snapshot(context.Background()); err != nil {
		t.Fatal(err)
	}
	// An old copy of the state: taken from a snapshot of this moment.
	old := filepath.Join(t.TempDir(), "old.db")
	putN(t, n, "/b/", 10)
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	copyFile(t, filepath.Join(dir, "state.db"), old)

	n = openNode(t, dir, 50*time.Millisecond)
	putN(t, n, "/c/", 10)
	if _, err := n.Snapshot(context.Background()); err != nil {
		t.Fatal(err)
	}
	putN(t, n, "/d/", 10)
	want := n.FSM().State().Revision()
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	copyFile(t, old, filepath.Join(dir, "state.db"))

	n = openNode(t, dir, 50*time.Millisecond)
	st, err := n.Read(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	if st.KeyCount() != 40 || st.Revision() != want {
		t.Fatalf("after catching up: %d keys at revision %d, want 40 at %d", st.KeyCount(), st.Revision(), want)
	}
}

// TestSoleVoterElectsItselfAtOnce: a one-voter member, on a first start and
// after a restart, leads without waiting out its heartbeat timeout (here
// 1.5 s: without the immediate election it could not be ready sooner).
func TestSoleVoterElectsItselfAtOnce(t *testing.T) {
	dir := t.TempDir()
	cfg := nodeConfig(dir)
	cfg.HeartbeatTimeout, cfg.ElectionTimeout = 1500*time.Millisecond, 1500*time.Millisecond
	for run := 0; run < 2; run++ {
		start := time.Now()
		n, err := registry.Open(cfg, logtest.ForTest(t), prometheus.NewRegistry())
		if err != nil {
			t.Fatal(err)
		}
		if !testutil.Poll(cfg.HeartbeatTimeout-time.Since(start), func() bool { return n.Ready() == nil }) {
			n.Close()
			t.Fatalf("run %d: not ready after %v: it waited for the heartbeat timeout", run, time.Since(start))
		}
		putN(t, n, fmt.Sprintf("/r%d/", run), 3)
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestStateBehindACompactedLogIsRefused: a state file older than the
// start of its raft log, with no snapshot to bridge the gap (the state
// file and the snapshots deleted, say), cannot be rebuilt: the entries in
// between are gone. It is refused at open with a clear error; raft used to
// start and then panic ("log not found") on the first entry it could not
// read, taking the process down.
func TestStateBehindACompactedLogIsRefused(t *testing.T) {
	dir := t.TempDir()
	cfg := nodeConfig(dir)
	cfg.TrailingLogs = 2
	n, err := registry.Open(cfg, logtest.ForTest(t), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "node ready", func() bool { return n.Ready() == nil })
	putN(t, n, "/a/", 20)
	if _, err := n.Snapshot(context.Background()); err != nil {
		n.Close()
		t.Fatal(err)
	}
	putN(t, n, "/b/", 5)
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	for _, gone := range []string{"state.db", filepath.Join("raft", "snapshots")} {
		if err := os.RemoveAll(filepath.Join(dir, gone)); err != nil {
			t.Fatal(err)
		}
	}
	refusedOpen(t, cfg, "a state file behind the start of its compacted raft log", "starts at index")
}

// TestCompactedLogWithoutItsSnapshotIsRefused: with only the snapshots
// deleted, the state file is intact and ahead of the start of the
// compacted log, but raft itself reads its log from just after the newest
// snapshot (at start, for configuration entries, and to apply), so it
// cannot start either. It is refused at open with a clear error; raft used
// to panic ("log not found") inside Open, taking the process down.
func TestCompactedLogWithoutItsSnapshotIsRefused(t *testing.T) {
	dir := t.TempDir()
	cfg := nodeConfig(dir)
	cfg.TrailingLogs = 2
	n, err := registry.Open(cfg, logtest.ForTest(t), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "node ready", func() bool { return n.Ready() == nil })
	putN(t, n, "/a/", 20)
	if _, err := n.Snapshot(context.Background()); err != nil {
		n.Close()
		t.Fatal(err)
	}
	putN(t, n, "/b/", 5)
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "raft", "snapshots")); err != nil {
		t.Fatal(err)
	}
	refusedOpen(t, cfg, "a compacted raft log without its snapshot", "snapshots were deleted")
}

// refusedOpen checks that Open refuses cfg's data directory (what: the
// state it holds) with an error naming the state file, the raft log and
// why.
func refusedOpen(t *testing.T, cfg registry.Config, what, why string) {
	t.Helper()
	n, err := registry.Open(cfg, logtest.ForTest(t), prometheus.NewRegistry())
	if err == nil {
		n.Close()
		t.Fatalf("%s was used", what)
	}
	msg := err.Error()
	for _, want := range []string{filepath.Join(cfg.DataDir, "state.db"), filepath.Join(cfg.DataDir, "raft", "raft.db"), why} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not name %q", msg, want)
		}
	}
}
