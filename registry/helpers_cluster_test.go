package registry

import (
	"context"
	"crypto/tls"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rosterhq/roster/internal/logging/logtest"
	"github.com/rosterhq/roster/internal/testutil"
)

// testCluster is a set of in-process nodes on 127.0.0.1, each with its
// own data directory, formed through AddMember.
type testCluster struct {
	t     *testing.T
	nodes []*Node
}

// clusterOpts adjusts the members of a test cluster.
type clusterOpts struct {
	peerTLS func(i int) *tls.Config // nil: plain TCP
	hooks   func(i int) *testHooks
	cfg     func(i int, c *Config)
}

// fastRaft is the test configuration: raft's default timings (shorter ones
// make leadership flap on a loaded machine), a short tick and commit
// timeout, no fsync.
func fastRaft(c *Config) {
	c.Tick = 100 * time.Millisecond
	// Followers learn the commit index at the latest this long after the
	// last write: reads on them right after a write wait for it.
	c.CommitTimeout = 10 * time.Millisecond
	c.LeaderWait = 2 * time.Second
	c.NoSync = true
}

// startCluster starts n voters: the first bootstraps and adds the others.
func startCluster(t *testing.T, n int, o clusterOpts) *testCluster {
	t.Helper()
	tc := &testCluster{t: t}
	for i := range n {
		cfg := Config{
			ID: fmt.Sprintf("n%d", i+1), DataDir: t.TempDir(), RaftAddr: "127.0.0.1:0",
			Bootstrap: i == 0, NodeNumber: -1, HTTPAdvertise: fmt.Sprintf("127.0.0.1:%d", 10+i),
		}
		fastRaft(&cfg)
		if o.peerTLS != nil {
			cfg.PeerTLS = o.peerTLS(i)
		}
		if o.cfg != nil {
			o.cfg(i, &cfg)
		}
		var h *testHooks
		if o.hooks != nil {
			h = o.hooks(i)
		}
		node, err := open(cfg, logtest.ForTest(t).With("node", cfg.ID), prometheus.NewRegistry(), h)
		if err != nil {
			t.Fatalf("open %s: %v", cfg.ID, err)
		}
		t.Cleanup(func() { node.Close() })
		tc.nodes = append(tc.nodes, node)
		if i == 0 {
			testutil.Eventually(t, 10*time.Second, "first member ready", func() bool { return node.Ready() == nil })
			continue
		}
		// Any member takes it; an election under load may fail one try.
		for try := 0; try < 5; try++ {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			err = tc.nodes[0].AddMember(ctx, JoinRequest{ID: cfg.ID, RaftAddr: node.RaftAddr(), HTTPAddr: cfg.HTTPAdvertise, Voter: true})
			cancel()
			if err == nil {
				break
			}
			t.Logf("add %s: %v; retrying", cfg.ID, err)
		}
		if err != nil {
			t.Fatalf("add %s: %v", cfg.ID, err)
		}
	}
	for _, node := range tc.nodes {
		testutil.Eventually(t, 20*time.Second, node.ID()+" ready", func() bool { return node.Ready() == nil })
	}
	return tc
}

// leader waits for a leader that is ready and returns it.
func (tc *testCluster) leader() *Node {
	tc.t.Helper()
	var l *Node
	testutil.Eventually(tc.t, 20*time.Second, "a ready leader", func() bool {
		for _, n := range tc.nodes {
			if n.leaderIsReady() {
				l = n
				return true
			}
		}
		return false
	})
	return l
}

// followers are the members other than l.
func (tc *testCluster) followers(l *Node) []*Node {
	var out []*Node
	for _, n := range tc.nodes {
		if n != l {
			out = append(out, n)
		}
	}
	return out
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
