package systemtest

import (
	"strings"
	"testing"
	"time"

	"github.com/rosterhq/roster/internal/cluster"
)

// TestWriteDuringFailoverWaitsForNewLeader kills the leader and writes
// through a follower at once: the follower's forward is refused by the dead
// leader, so it waits (bounded) for the next leader and forwards there —
// the client gets 200, not an immediate 503.
//
// One race is legitimate: the follower may write the request on its open
// channel connection in the instant before it reads the dead leader's FIN.
// A written request is never retried (through anything relaying TCP, a
// closed connection proves nothing), so that write answers 504, outcome
// unknown. The test then writes once more, and that write must succeed.
func TestWriteDuringFailoverWaitsForNewLeader(t *testing.T) {
	c := cluster.Start(t, 3, "-tick", "100ms")
	leader := c.Leader(30 * time.Second)
	follower := c.Followers(leader)[0]
	leader.Kill()
	start := time.Now()
	code, b := do(t, "PUT", follower.URL("/v1/kv/failover/k"), []byte("v"))
	if code == 504 && strings.Contains(string(b), "closed after the request was sent") {
		t.Logf("the first write went out on the dead leader's connection: %s; writing again", b)
		code, b = do(t, "PUT", follower.URL("/v1/kv/failover/k"), []byte("v"))
	}
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
