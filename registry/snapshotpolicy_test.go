package registry_test

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rosterhq/roster/fsm"
	"github.com/rosterhq/roster/internal/logging/logtest"
	"github.com/rosterhq/roster/internal/testutil"
	"github.com/rosterhq/roster/registry"
)

// TestSnapshotEveryThresholdEntries: with the default snapshot interval a
// node snapshots soon after SnapshotThreshold entries came, so the log a
// restart reads back stays near the threshold however fast writes come.
// (With raft's default interval of two minutes it would not within the
// deadline.)
func TestSnapshotEveryThresholdEntries(t *testing.T) {
	const threshold = 200
	dir := t.TempDir()
	n, err := registry.Open(registry.Config{
		ID: "n1", DataDir: dir, RaftAddr: "127.0.0.1:0", Bootstrap: true, NodeNumber: -1,
		Tick: 50 * time.Millisecond, HTTPAdvertise: "127.0.0.1:1",
		SnapshotThreshold: threshold, TrailingLogs: 10,
	}, logtest.ForTest(t), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	testutil.Eventually(t, 10*time.Second, "node ready", func() bool { return n.Ready() == nil })
	snaps, err := raft.NewFileSnapshotStore(filepath.Join(dir, "raft"), 2, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	newest := func() uint64 {
		list, err := snaps.List()
		if err != nil || len(list) == 0 {
			return 0
		}
		return list[0].Index
	}
	ctx := context.Background()
	for i := 0; i < 5*threshold; i++ {
		if _, err := n.Put(ctx, fsm.Put{Key: fmt.Sprintf("/k/%04d", i), Value: []byte("v")}); err != nil {
			t.Fatal(err)
		}
	}
	s, err := n.Read(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	applied := s.AppliedIndex()
	testutil.Eventually(t, 10*time.Second, "a snapshot within the threshold of the applied index", func() bool {
		return newest()+threshold > applied
	})
	if got := newest(); got > applied {
		t.Fatalf("snapshot at %d, past the applied index %d", got, applied)
	}
}
