package systemtest

import (
	"testing"
	"time"

	"github.com/rosterhq/roster/internal/cluster"
)

// TestWriteDuringFailoverWaitsForNewLeader kills the leader and writes
// through a follower at once: the follower's forward is refused by the dead
// leader, so it waits (bounded) for the next leader and forwards there —
// the client gets 200, not an immediate 503.
func TestWriteDuringFailoverWaitsForNewLeader(t *testing.T) {
	c := cluster.Start(t, 3, "-tick", "100ms")
	leader := c.Leader(30 * time.Second)
	follower := c.Followers(leader)[0]
	leader.Kill()
	start := time.Now()
	code, b := do(t, "PUT", follower.URL("/v1/kv/failover/k"), []byte("v"))
	if code != 200 {
		t.Fatalf("write through a follower during failover: %d %s", code, b)
	}
	t.Logf("write through a follower acknowledged %v after the leader was killed", time.Since(start).Round(time.Millisecond))
	var kv kvJSON
	code, b = do(t, "GET", follower.URL("/v1/kv/failover/k"), nil)
	mustJSON(t, code, b, &kv)
	if kv.Value != "v" {
		t.Fatalf("read back %+v", kv)
	}
}
