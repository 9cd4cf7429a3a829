package faulttest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rosterhq/roster/internal/cluster"
)

// TestNemesis runs every workload at once on one cluster behind the
// test's proxies while the nemesis injects random faults (kills, pauses,
// partitions, black holes, one-way cuts, delays), then checks each.
func TestNemesis(t *testing.T) {
	p := currentProfile(t)
	s := seed(t)
	// A 4 KiB checkpoint journal: merges (records written in place, the
	// journal read back and emptied) happen every few seconds under the
	// faults, not only appends as with the default 16 MiB. A snapshot
	// every 1,024 entries with 256 kept after it: snapshots and
	// compactions run under the faults too, and a member that was down or
	// cut off for a few seconds catches up by installing the leader's
	// snapshot rather than from the log.
	// Every member serves the Redis port too: the Redis clients of the
	// linearizability workload send their commands there.
	if err := cluster.NetAvailable(); err != nil {
		t.Skipf("%v", err)
	}
	c := cluster.New(t, "-tick", "100ms", "-checkpoint-journal", "4096",
		"-snapshot-threshold", "1024", "-trailing-logs", "256").WithNet().WithRedis()
	c.Launch(p.Members)
	c.Leader(30 * time.Second)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	lin := newLinWorkload(c, p.Keys)
	lin.run(ctx, &wg, s, p.Clients, p.Redis)
	leases := newLeaseWorkload(c)
	leases.run(ctx, &wg, s, p.Keepers)
	watches := newWatchWorkload(c)
	stopWatchers := make(chan struct{})
	stopWatching := sync.OnceFunc(func() { close(stopWatchers) })
	var watchWG sync.WaitGroup
	watches.run(ctx, stopWatchers, &watchWG, s, p.Watchers)

	nem := cluster.NewNemesis(c, s)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("nemesis history: %v; links now: %s", nem.History(), c.Net)
		}
	})
	if only := faultsFromEnv(t); only != nil {
		nem.Faults = only
	}
	if p.Soak {
		nem.Hold = [2]time.Duration{time.Second, 8 * time.Second}
	}
	func() {
		// Stop the workload even when the nemesis fails the test.
		defer func() {
			cancel()
			wg.Wait()
			stopWatching()
			watchWG.Wait()
		}()
		nem.RunFor(p.Duration)
		// Writers stop with ctx; the fence tells watchers they have all.
		cancel()
		wg.Wait()
		watches.finish(t)
		if !waitGroupWithin(&watchWG, 60*time.Second) {
			stopWatching()
			t.Errorf("watch: watchers did not reach the fence %d within 60 s", watches.fence.Load())
			for _, st := range watches.states() {
				t.Logf("  %s", st)
			}
			for _, st := range watches.probe(watches.lowest()) {
				t.Logf("  %s", st)
			}
		}
	}()
	refused, dropped := c.Net.Stats()
	t.Logf("faults injected: %d (%s); proxies refused %d connections, dropped %d bytes", nem.Count(), nem.Summary(), refused, dropped)
	t.Logf("checkpoints since each member's last start: %s", checkpointCounts(c))
	t.Logf("snapshots taken / installed from the leader, per member: %s", snapshotCounts(c))

	ops := lin.history()
	t.Logf("linearizability: %d operations recorded (%d of unknown outcome), %d left out as provably without effect; over the Redis port %d (%v; %d of unknown outcome)",
		len(ops), lin.unknown, lin.dropped, lin.respOps, lin.respBy, lin.respUnk)
	if lin.respOps == 0 && p.Redis > 0 {
		t.Errorf("linearizability: no Redis operation was recorded: the check covered HTTP only")
	}
	if lin.weirdN > 0 {
		t.Logf("linearizability: %d Redis answers neither expected nor -TIMEOUT, kept as of unknown outcome: %v", lin.weirdN, lin.weird)
	}
	checkLinearizable(t, ops, time.Minute)

	violations, summary := leases.report()
	t.Log(summary)
	for _, v := range violations {
		t.Errorf("lease safety: %s", v)
	}

	violations, summary = watches.check()
	t.Log(summary)
	for _, v := range violations {
		t.Errorf("watch safety: %s", v)
	}
}

// checkpointCounts reads each running member's checkpoint counters from
// its /metrics, so a run's log shows that merges of the journal happened
// under the faults.
func checkpointCounts(c *cluster.Cluster) string {
	var out []string
	for _, m := range c.Running() {
		ms, err := c.Metrics(m)
		if err != nil {
			out = append(out, fmt.Sprintf("%s: %v", m.ID, err))
			continue
		}
		out = append(out, fmt.Sprintf("%s %v (merges %v)", m.ID, ms["roster_checkpoints_total"], ms["roster_checkpoint_merges_total"]))
	}
	return strings.Join(out, ", ")
}

// snapshotCounts counts, in each member's log over the whole run, the
// snapshots it took and those it installed from a leader.
func snapshotCounts(c *cluster.Cluster) string {
	var out []string
	for _, m := range c.Members {
		logs := m.Logs()
		out = append(out, fmt.Sprintf("%s %d/%d", m.ID,
			strings.Count(logs, "snapshot complete up to"), strings.Count(logs, "Installed remote snapshot")))
	}
	return strings.Join(out, ", ")
}

// faultsFromEnv reads ROSTER_FAULTS, a comma-separated list of faults
// (kill-one, partition, ...) to restrict the nemesis to; nil when unset.
func faultsFromEnv(t testing.TB) []cluster.Fault {
	t.Helper()
	v := os.Getenv("ROSTER_FAULTS")
	if v == "" {
		return nil
	}
	known := map[cluster.Fault]bool{}
	for _, f := range cluster.AllFaults() {
		known[f] = true
	}
	var out []cluster.Fault
	for _, name := range strings.Split(v, ",") {
		f := cluster.Fault(strings.TrimSpace(name))
		if !known[f] {
			t.Fatalf("ROSTER_FAULTS: unknown fault %q; known: %v", f, cluster.AllFaults())
		}
		out = append(out, f)
	}
	t.Logf("nemesis restricted to %v (ROSTER_FAULTS)", out)
	return out
}

// waitGroupWithin waits for wg, at most d; it reports whether wg finished.
func waitGroupWithin(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}
