package registry_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rosterhq/roster/fsm"
	"github.com/rosterhq/roster/internal/logging/logtest"
	"github.com/rosterhq/roster/internal/testutil"
	"github.com/rosterhq/roster/registry"
)

// A member removed while it was down never gets raft's one notice of its
// removal: restarted, it finds itself in its latest configuration and
// stands for election in vain. It must learn of the removal from the
// leader, and then refuse at once rather than make every request wait for
// a leader. (A member cut off from the others at the moment of its
// removal is in the same place.)
func TestMemberRemovedWhileDownLearnsOfIt(t *testing.T) {
	nodes, cfgs := startTrioConfigs(t)
	// The restarted member listens on a new port, so that raft's last
	// send to the old one surely fails: it retries once after a backoff,
	// and a member back on its old port within it would get the notice.
	leader, victim, cfg := nodes[0], nodes[2], cfgs[2]
	if err := victim.Close(); err != nil {
		t.Fatalf("close %s: %v", victim.ID(), err)
	}
	if err := leader.RemoveMember(context.Background(), victim.ID()); err != nil {
		t.Fatalf("remove %s while it is down: %v", victim.ID(), err)
	}
	back, err := registry.Open(cfg, logtest.ForTest(t).With("node", "restarted"), prometheus.NewRegistry())
	if err != nil {
		t.Fatalf("reopen %s: %v", cfg.ID, err)
	}
	t.Cleanup(func() { back.Close() })
	testutil.Eventually(t, 20*time.Second, "the restarted member learns it was removed", back.Removed)
	// Shorter than the member's LeaderWait (3 s): the call must not be
	// ended by it.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := back.Put(ctx, fsm.Put{Key: "/after-removal", Value: []byte("v")}); !errors.Is(err, registry.ErrNoLeader) || ctx.Err() != nil {
		t.Fatalf("put on the removed member: %v (context: %v), want ErrNoLeader at once", err, ctx.Err())
	}
	// The cluster carries on without it.
	if _, err := leader.Put(context.Background(), fsm.Put{Key: "/still", Value: []byte("v")}); err != nil {
		t.Fatalf("put on the leader after the removal: %v", err)
	}
}
