package systemtest

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rosterhq/roster/internal/cluster"
)

// Crash points: a member started with ROSTER_FAILPOINT kills itself
// (SIGKILL) at the chosen point; after a restart it must hold exactly the
// state of the members that did not crash.

// crashArgs: quick raft timings, so elections after a crash are short.
var crashArgs = []string{"-tick", "100ms", "-raft-heartbeat-timeout", "300ms", "-raft-election-timeout", "300ms", "-raft-leader-lease-timeout", "300ms"}

// replicaState renders m's own replica (stale reads, never forwarded):
// the revision, every key with every field, every lease.
func replicaState(m *cluster.Member) (string, error) {
	var sb strings.Builder
	for _, path := range []string{"/v1/kv/?prefix=true&stale=true", "/v1/leases?stale=true"} {
		code, b, err := try("GET", m.URL(path), nil)
		if err != nil {
			return "", err
		}
		if code != 200 {
			return "", fmt.Errorf("GET %s: %d %s", path, code, b)
		}
		// Re-encode through a generic value: canonical key order.
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			return "", err
		}
		out, _ := json.MarshalIndent(v, "", " ")
		sb.Write(out)
		sb.WriteByte('\n')
	}
	return sb.String(), nil
}

// waitSameState waits until every running member reports the same
// replica state and returns it.
func waitSameState(t *testing.T, c *cluster.Cluster, d time.Duration) string {
	t.Helper()
	var states []string
	c.Eventually(d, "every member holding the same state", func() bool {
		states = states[:0]
		for _, m := range c.Running() {
			s, err := replicaState(m)
			if err != nil {
				return false
			}
			states = append(states, s)
		}
		for _, s := range states[1:] {
			if s != states[0] {
				return false
			}
		}
		return len(states) > 0
	})
	return states[0]
}

// waitExit waits until m's process has exited on its own.
func waitExit(t *testing.T, c *cluster.Cluster, m *cluster.Member, d time.Duration) {
	t.Helper()
	c.Eventually(d, "member "+m.ID+" to crash at its crash point", func() bool { return !m.Running() })
	if !strings.Contains(m.Logs(), "crash point") {
		t.Fatalf("member %s exited, but not at its crash point:\n%s", m.ID, m.Logs())
	}
	m.Kill() // reap: the member no longer counts as started
}

// TestCrashBetweenCommitAndAck kills the leader after a write committed and
// applied but before its answer left: the write is not acknowledged, yet it
// is committed, so every member (the restarted one too) must hold it.
func TestCrashBetweenCommitAndAck(t *testing.T) {
	const at = 5
	c := cluster.New(t, crashArgs...)
	first := c.Add()
	first.Env = []string{fmt.Sprintf("ROSTER_FAILPOINT=commit-before-ack@%d", at)}
	first.Start()
	c.WaitReady(30*time.Second, first)
	for i := 1; i < 3; i++ {
		c.Add().Start("-join", first.HTTP)
	}
	c.WaitReady(60*time.Second, c.Members...)
	c.WaitVoters(60*time.Second, 3)

	for i := 1; i <= at; i++ {
		code, b, err := try("PUT", first.URL(fmt.Sprintf("/v1/kv/crash/k%d", i)), []byte("v"))
		if i < at && (err != nil || code != 200) {
			t.Fatalf("write %d: %d %s %v", i, code, b, err)
		}
		if i == at && err == nil {
			t.Fatalf("write %d was answered (%d %s): the crash point did not fire", i, code, b)
		}
	}
	waitExit(t, c, first, 10*time.Second)
	first.Env = nil
	first.Restart()
	c.WaitReady(30*time.Second, c.Members...)
	state := waitSameState(t, c, 30*time.Second)
	for i := 1; i <= at; i++ {
		if !strings.Contains(state, fmt.Sprintf(`"/crash/k%d"`, i)) {
			t.Fatalf("committed write %d is missing after the crash:\n%s", i, state)
		}
	}
}

// TestKillEveryMemberKeepsAcknowledgedWrites kills every member at once
// (SIGKILL) under write load, with the background checkpoint held off so
// the state files are far behind: every acknowledged write must come back
// from the raft logs alone, on every member.
func TestKillEveryMemberKeepsAcknowledgedWrites(t *testing.T) {
	args := append(append([]string(nil), crashArgs...), "-checkpoint-interval", "1h", "-checkpoint-entries", "1000000")
	c := cluster.Start(t, 3, args...)
	w := startWriters(t, 6, "/all", 20*time.Second, endpointsOf(c.Members...))
	w.waitAcks(c, 20*time.Second, 300)
	done := make(chan struct{})
	for _, m := range c.Members {
		go func() { m.Kill(); done <- struct{}{} }()
	}
	for range c.Members {
		<-done
	}
	acked, attempted, _ := w.result()
	for _, m := range c.Members {
		m.Restart()
	}
	c.WaitReady(60*time.Second, c.Members...)
	c.WaitCaughtUp(30 * time.Second)
	for _, m := range c.Members {
		checkHasAll(t, m, "/all", acked, attempted)
	}
	t.Logf("%d acknowledged writes survived a kill of every member", len(acked))
}
