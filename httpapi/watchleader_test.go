package httpapi

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rosterhq/roster/internal/testutil"
)

// TestWatchRequireLeader: a member that lost its leader for good (the
// other member of a two-member cluster gone, as when it is cut off from the
// majority) kept every watch stream open with heartbeats, so a watcher
// could not tell that it received nothing because the cluster went on
// without this member. With require_leader the stream ends after two
// heartbeats without a leader, and a new one is refused with 503
// no_leader, so the client resumes on a member that has one; without it
// the stream stays open as before.
func TestWatchRequireLeader(t *testing.T) {
	envs := newClusterEnvOpts(t, 2, nil, func(c *Config) { c.heartbeat = 200 * time.Millisecond })
	leader, follower := envs[0], envs[1]
	addr := follower.ts.Listener.Addr().String()
	required, rbr, res := openRawWatch(t, addr, "/v1/watch/rl/?prefix=true&require_leader=true")
	if res.StatusCode != 200 {
		t.Fatalf("watch with require_leader on a follower with a leader: %d", res.StatusCode)
	}
	plain, pbr, res := openRawWatch(t, addr, "/v1/watch/rl/?prefix=true")
	if res.StatusCode != 200 {
		t.Fatalf("watch: %d", res.StatusCode)
	}
	// With a leader, the stream lives on through its heartbeats.
	for range 3 {
		if line := readLine(t, required, rbr, 5*time.Second); line != ": heartbeat" {
			t.Fatalf("with a leader: %q, want a heartbeat", line)
		}
		readLine(t, required, rbr, time.Second)
	}
	leader.doStr("PUT", "/v1/kv/rl/a", "1").ok(t, 200, nil)
	if line := readLine(t, required, rbr, 5*time.Second); !strings.HasPrefix(line, "id: ") {
		t.Fatalf("with a leader: %q, want the event", line)
	}

	leader.ts.Close()
	_ = leader.node.Close()
	testutil.Eventually(t, 20*time.Second, "the follower knows no leader", func() bool { return !follower.node.HasLeader() })

	if !streamEnds(t, required, rbr, 10*time.Second) {
		t.Fatal("a require_leader stream on a member without a leader is still open")
	}
	follower.do("GET", "/v1/watch/rl/?prefix=true&require_leader=true", nil).fails(t, 503, "no_leader")
	// Without require_leader: served from the replica, as before.
	if streamEnds(t, plain, pbr, 2*time.Second) {
		t.Fatal("a watch without require_leader ended")
	}
}

// streamEnds reads the stream until it ends (true) or d passes (false),
// skipping heartbeats and events.
func streamEnds(t *testing.T, conn net.Conn, br *bufio.Reader, d time.Duration) bool {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(d))
	for {
		if _, err := br.ReadString('\n'); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return false
			}
			return true
		}
	}
}

// TestBlockingReadWithoutALeader: a linearizable blocking read on a member
// that lost its leader (cut off from the majority) waited its whole wait,
// up to 5 minutes, for changes that were being made elsewhere, and only
// then failed with no_leader, where a plain read fails within the leader
// wait. It now gives up once the member has known no leader at two checks
// in a row. A stale blocking read still waits on the replica, as asked.
func TestBlockingReadWithoutALeader(t *testing.T) {
	envs := newClusterEnvOpts(t, 2, nil, func(c *Config) { c.heartbeat = 200 * time.Millisecond })
	leader, follower := envs[0], envs[1]
	rev := leader.doStr("PUT", "/v1/kv/bl/a", "1").revision(t)
	testutil.Eventually(t, 10*time.Second, "the follower applied the put", func() bool {
		return follower.node.History().Last() >= rev
	})
	leader.ts.Close()
	_ = leader.node.Close()
	testutil.Eventually(t, 20*time.Second, "the follower knows no leader", func() bool { return !follower.node.HasLeader() })

	start := time.Now()
	follower.do("GET", fmt.Sprintf("/v1/kv/bl/?prefix=true&index=%d&wait=30s", rev), nil).fails(t, 503, "no_leader")
	if d := time.Since(start); d > 15*time.Second {
		t.Fatalf("a linearizable blocking read without a leader took %v to fail", d)
	}
	start = time.Now()
	follower.do("GET", fmt.Sprintf("/v1/kv/bl/?prefix=true&index=%d&wait=1s&stale=true", rev), nil).ok(t, 200, nil)
	if d := time.Since(start); d < time.Second {
		t.Fatalf("a stale blocking read answered after %v, before its wait", d)
	}
}
