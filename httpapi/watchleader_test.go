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
	"github.com/rosterhq/roster/registry"
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
	// Heartbeats a second apart: a member that misses its leader for a
	// moment on a loaded machine must not look cut off.
	envs := newClusterEnvOpts(t, 2, nil, func(c *Config) { c.heartbeat = time.Second })
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
	for range 2 {
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
	if streamEnds(t, plain, pbr, 3*time.Second) {
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
	envs := newClusterEnvOpts(t, 2, nil, func(c *Config) { c.heartbeat = time.Second })
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

// TestWatchProgressNotify: a watch of a quiet key resumed from its last
// event, and once the history (-watch-history) had moved past that event
// through changes elsewhere, the resume was refused with 410 though
// nothing under the key had changed. With progress_notify the heartbeats
// carry the revision the stream got to, as an id without data, and a
// resume from it is served. Without it heartbeats are as before.
func TestWatchProgressNotify(t *testing.T) {
	e := newEnvWith(t, func(c *registry.Config) { c.WatchHistory = 50 }, func(c *Config) { c.heartbeat = 200 * time.Millisecond })
	addr := e.ts.Listener.Addr().String()
	conn, br, res := openRawWatch(t, addr, "/v1/watch/q/?prefix=true&progress_notify=true")
	if res.StatusCode != 200 {
		t.Fatalf("watch: %d", res.StatusCode)
	}
	plain, pbr, res := openRawWatch(t, addr, "/v1/watch/q/?prefix=true")
	if res.StatusCode != 200 {
		t.Fatalf("watch: %d", res.StatusCode)
	}
	first := e.doStr("PUT", "/v1/kv/q/a", "1").revision(t)
	if line := readLine(t, conn, br, 5*time.Second); line != fmt.Sprintf("id: %d", first) {
		t.Fatalf("first event: %q", line)
	}
	readLine(t, conn, br, time.Second) // its data
	readLine(t, conn, br, time.Second) // and the blank line
	var last int64
	for i := range 100 {
		last = e.doStr("PUT", fmt.Sprintf("/v1/kv/busy/%d", i), "x").revision(t)
	}
	// The next heartbeat carries the progress; earlier ones may carry less.
	want := fmt.Sprintf("id: %d", last)
	for deadline := time.Now().Add(5 * time.Second); ; {
		if time.Now().After(deadline) {
			t.Fatalf("no heartbeat carried %q", want)
		}
		line := readLine(t, conn, br, 5*time.Second)
		if strings.HasPrefix(line, "data: ") {
			t.Fatalf("an event of another prefix: %q", line)
		}
		if line == want {
			break
		}
	}
	if line := readLine(t, conn, br, time.Second); line != "" {
		t.Fatalf("after the progress id: %q, want the blank line ending the block", line)
	}
	e.do("GET", fmt.Sprintf("/v1/watch/q/?prefix=true&rev=%d", first), nil).fails(t, 410, "compacted")
	resumed, rbr, res := openRawWatch(t, addr, fmt.Sprintf("/v1/watch/q/?prefix=true&rev=%d", last))
	if res.StatusCode != 200 {
		t.Fatalf("resume from the progress id %d: %d", last, res.StatusCode)
	}
	next := e.doStr("PUT", "/v1/kv/q/b", "2").revision(t)
	if line := readLine(t, resumed, rbr, 5*time.Second); line != fmt.Sprintf("id: %d", next) {
		t.Fatalf("resumed stream: %q, want the next change", line)
	}
	// Without progress_notify: bare heartbeats, ids only on events.
	for range 4 {
		line := readLine(t, plain, pbr, 5*time.Second)
		if strings.HasPrefix(line, "id: ") && line != fmt.Sprintf("id: %d", first) && line != fmt.Sprintf("id: %d", next) {
			t.Fatalf("a watch without progress_notify sent %q", line)
		}
	}
}
