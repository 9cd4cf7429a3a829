package systemtest

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rosterhq/roster/internal/cluster"
	"github.com/rosterhq/roster/internal/testutil"
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
	var members []*cluster.Member
	ok := testutil.Poll(d, func() bool {
		states, members = states[:0], c.Running()
		for _, m := range members {
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
	if !ok {
		for i := range states[1:] {
			if states[i+1] != states[0] {
				a, b := strings.Split(states[0], "\n"), strings.Split(states[i+1], "\n")
				for j := 0; j < len(a) && j < len(b); j++ {
					if a[j] != b[j] {
						t.Logf("%s line %d: %s\n%s line %d: %s", members[0].ID, j, a[j], members[i+1].ID, j, b[j])
						break
					}
				}
			}
		}
		t.Fatalf("timed out after %v waiting for every member to hold the same state", d)
	}
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

// crashSnapArgs make snapshots, log compaction and the merges of the state
// file's journal frequent, so that their crash points are reached within a
// few writes.
var crashSnapArgs = append(append([]string(nil), crashArgs...),
	"-snapshot-threshold", "40", "-snapshot-interval", "100ms", "-trailing-logs", "20",
	"-checkpoint-journal", "2048")

// TestCrashPoints kills a follower at each crash point of the checkpoint,
// snapshot persist, log compaction and snapshot restore, restarts it and
// checks that it then holds exactly the state the other members hold
// (every key with its revisions, every lease). One cluster serves every
// point in turn.
func TestCrashPoints(t *testing.T) {
	c := cluster.Start(t, 3, crashSnapArgs...)
	leader := c.Leader(20 * time.Second)
	// Leases (long-lived: no tick moves the state while states are
	// compared) with keys attached are part of the state compared.
	for i := 0; i < 3; i++ {
		l := grant(t, leader.URL(""), 600, fmt.Sprintf("/crash/lease%d", i))
		if code, b := do(t, "PUT", leader.URL(fmt.Sprintf("/v1/kv/crash/leased/%d?lease=%s", i, l.ID)), []byte("x")); code != 200 {
			t.Fatalf("put: %d %s", code, b)
		}
	}
	seq := 0
	write := func(n int) {
		for i := 0; i < n; i++ {
			seq++
			code, b, err := try("PUT", leader.URL(fmt.Sprintf("/v1/kv/crash/k%05d", seq)), []byte(fmt.Sprint(seq)))
			if err != nil || code != 200 {
				t.Fatalf("write %d: %d %s %v", seq, code, b, err)
			}
		}
	}
	// writeUntilDead writes until m kills itself at its crash point.
	writeUntilDead := func(m *cluster.Member) {
		deadline := time.Now().Add(30 * time.Second)
		for m.Running() {
			if time.Now().After(deadline) {
				t.Fatalf("member %s never reached its crash point %v", m.ID, m.Env)
			}
			write(5)
		}
		waitExit(t, c, m, 10*time.Second)
	}
	points := []struct {
		point   string
		restore bool // reached by a follower that needs a snapshot sent
	}{
		{"checkpoint-before-commit", false},
		{"checkpoint-after-commit", false},
		{"checkpoint-before-merge", false},
		{"checkpoint-after-merge", false},
		{"snapshot-persist-start", false},
		{"snapshot-persist-written", false},
		{"snapshot-persisted", false},
		{"compact-before", false},
		{"compact-after", false},
		{"restore-written", true},
		{"restore-synced", true},
		{"restore-renamed", true},
		{"restore-reloaded", true},
	}
	for _, p := range points {
		leader = c.Leader(20 * time.Second) // only followers crash: it stays
		victim := c.Followers(leader)[0]
		victim.Kill()
		if p.restore {
			// Fall behind the leader's compacted log: it must send a
			// snapshot when the victim comes back.
			write(60)
			if code, b := do(t, "POST", leader.URL("/v1/cluster/snapshot"), nil); code != 200 {
				t.Fatalf("snapshot: %d %s", code, b)
			}
			write(30)
		}
		victim.Env = []string{"ROSTER_FAILPOINT=" + p.point}
		victim.Restart()
		writeUntilDead(victim)
		victim.Env = nil
		victim.Restart()
		c.WaitReady(30*time.Second, victim)
		write(3)
		state := waitSameState(t, c, 30*time.Second)
		if !strings.Contains(state, fmt.Sprintf(`"/crash/k%05d"`, seq)) {
			t.Fatalf("after a crash at %s: the last write is missing", p.point)
		}
		t.Logf("crash at %s: restarted member %s holds the survivors' state (%d writes)", p.point, victim.ID, seq)
	}
}

// TestCrashMidSnapshotLeavesNoPartialSnapshot kills a member while raft
// writes a snapshot (the whole state is in the snapshot's temporary
// directory, which raft has not yet renamed): raft ignores such a
// directory for ever, so each crash there used to leave a partial copy of
// the state on disk until the disk filled. The restarted member removes it
// and holds every write.
func TestCrashMidSnapshotLeavesNoPartialSnapshot(t *testing.T) {
	c := cluster.New(t, crashSnapArgs...)
	m := c.Add()
	m.Env = []string{"ROSTER_FAILPOINT=snapshot-persist-written"}
	m.Start()
	c.WaitReady(30*time.Second, m)
	seq := 0
	deadline := time.Now().Add(30 * time.Second)
	for m.Running() {
		if time.Now().After(deadline) {
			t.Fatal("the member never reached its crash point")
		}
		seq++
		// Stop writing at the first refusal: the member is going down.
		if code, _, err := try("PUT", m.URL(fmt.Sprintf("/v1/kv/snap/k%05d", seq)), []byte("v")); err != nil || code != 200 {
			seq--
			break
		}
	}
	waitExit(t, c, m, 10*time.Second)
	snaps := filepath.Join(m.Dir, "raft", "snapshots")
	partial := func() []string {
		tmp, err := filepath.Glob(filepath.Join(snaps, "*.tmp"))
		if err != nil {
			t.Fatal(err)
		}
		return tmp
	}
	if len(partial()) == 0 {
		t.Fatalf("the crash left no partial snapshot in %s: the test shows nothing", snaps)
	}
	m.Env = nil
	m.Restart()
	c.WaitReady(30*time.Second, m)
	if left := partial(); len(left) > 0 {
		t.Fatalf("partial snapshots left after the restart: %v", left)
	}
	state, err := replicaState(m)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(state, fmt.Sprintf(`"/snap/k%05d"`, seq)) {
		t.Fatalf("acknowledged write %d missing after the restart", seq)
	}
}
