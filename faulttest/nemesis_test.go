package faulttest

import (
	"context"
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
	c := cluster.StartNet(t, p.Members, "-tick", "100ms")
	c.Leader(30 * time.Second)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	lin := newLinWorkload(c, p.Keys)
	lin.run(ctx, &wg, s, p.Clients)
	leases := newLeaseWorkload(c)
	leases.run(ctx, &wg, s, p.Keepers)

	nem := cluster.NewNemesis(c, s)
	if p.Soak {
		nem.Hold = [2]time.Duration{time.Second, 8 * time.Second}
	}
	func() {
		// Stop the workload even when the nemesis fails the test.
		defer func() { cancel(); wg.Wait() }()
		nem.RunFor(p.Duration)
	}()
	refused, dropped := c.Net.Stats()
	t.Logf("faults injected: %d (%s); proxies refused %d connections, dropped %d bytes", nem.Count(), nem.Summary(), refused, dropped)
	for _, h := range nem.History() {
		t.Logf("  %s", h)
	}

	ops := lin.history()
	t.Logf("linearizability: %d operations recorded (%d of unknown outcome), %d left out as provably without effect", len(ops), lin.unknown, lin.dropped)
	checkLinearizable(t, ops, 2*time.Minute)

	violations, summary := leases.report()
	t.Log(summary)
	for _, v := range violations {
		t.Errorf("lease safety: %s", v)
	}
}
