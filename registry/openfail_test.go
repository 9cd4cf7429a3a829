package registry_test

import (
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rosterhq/roster/internal/logging/logtest"
	"github.com/rosterhq/roster/internal/testutil"
	"github.com/rosterhq/roster/registry"
)

// refusingRegisterer refuses every collector, as a registry already
// holding Roster's metrics (a second node on the same one) does.
type refusingRegisterer struct{ prometheus.Registerer }

func (refusingRegisterer) Register(prometheus.Collector) error {
	return errors.New("metrics refused")
}

// raftLoops counts the goroutines running a raft instance's main loop.
func raftLoops() int {
	buf := make([]byte, 1<<22)
	buf = buf[:runtime.Stack(buf, true)]
	return strings.Count(string(buf), "hashicorp/raft.(*Raft).run(")
}

// TestFailedOpenLeavesNoRaftRunning: an Open that fails after raft started
// (its metrics refused) must have stopped raft when it returns. It used to
// ask raft to shut down without waiting, then close the stores under it:
// raft went on electing itself against a closed log store ("failed to
// persist vote … database not open"), and a leader replaying its log could
// have panicked on an entry it could no longer read.
func TestFailedOpenLeavesNoRaftRunning(t *testing.T) {
	dir := t.TempDir()
	for i := 0; i < 10; i++ {
		before := raftLoops()
		n, err := registry.Open(nodeConfig(dir), logtest.ForTest(t), refusingRegisterer{prometheus.NewRegistry()})
		if err == nil {
			n.Close()
			t.Fatal("Open succeeded with its metrics refused")
		}
		if after := raftLoops(); after > before {
			t.Fatalf("attempt %d: Open failed (%v) but left raft running: %d raft loops before, %d after", i, err, before, after)
		}
	}
	// The data directory is whole: the next Open serves.
	n, err := registry.Open(nodeConfig(dir), logtest.ForTest(t), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	testutil.Eventually(t, 10*time.Second, "node ready", func() bool { return n.Ready() == nil })
}
