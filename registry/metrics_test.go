package registry_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rosterhq/roster/fsm"
	"github.com/rosterhq/roster/internal/logging/logtest"
	"github.com/rosterhq/roster/internal/testutil"
	"github.com/rosterhq/roster/registry"
)

// counter reads one unlabelled counter from a registry's gathered metrics.
func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no counter %s", name)
	return 0
}

// The checkpoint's counters follow the state machine's: with a 1 KiB
// journal, a few hundred puts take both appends and merges.
func TestCheckpointCounters(t *testing.T) {
	reg := prometheus.NewRegistry()
	n, err := registry.Open(registry.Config{
		ID: "n1", DataDir: t.TempDir(), RaftAddr: "127.0.0.1:0", Bootstrap: true, NodeNumber: -1,
		Tick: 50 * time.Millisecond, HTTPAdvertise: "127.0.0.1:1", CheckpointInterval: 5 * time.Millisecond,
		CheckpointJournal: 1024,
	}, logtest.ForTest(t), reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	testutil.Eventually(t, 10*time.Second, "node ready", func() bool { return n.Ready() == nil })
	for i := range 300 {
		if _, err := n.Put(context.Background(), fsm.Put{Key: fmt.Sprintf("/svc/k%03d", i), Value: []byte("0123456789")}); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, 10*time.Second, "checkpoints and merges counted", func() bool {
		c, m := counter(t, reg, "roster_checkpoints_total"), counter(t, reg, "roster_checkpoint_merges_total")
		return m >= 1 && c > m && c == float64(n.FSM().Checkpoints()) && m == float64(n.FSM().Merges())
	})
}
