package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rosterhq/roster/internal/testutil"
)

// FreePort reserves a free 127.0.0.1 port, for a member that must come back
// on a new address (set Member.Raft or Member.HTTP before Start).
func FreePort(t testing.TB) string {
	t.Helper()
	return freePort(t)
}

// Pid is the process ID of the running process, 0 when it does not run.
func (m *Member) Pid() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil || m.cmd.Process == nil {
		return 0
	}
	select {
	case <-m.exited:
		return 0
	default:
	}
	return m.cmd.Process.Pid
}

// Signal sends sig to the running process without waiting for anything
// (SIGSTOP freezes it, SIGCONT resumes it). Use Kill or Stop to end it: they
// also record that it no longer runs.
func (m *Member) Signal(sig syscall.Signal) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil || m.cmd.Process == nil {
		return errors.New("cluster: member " + m.ID + " is not running")
	}
	return m.cmd.Process.Signal(sig)
}

// Freeze stops the process with SIGSTOP (a frozen member neither answers
// nor times anything out: a crude partition) and registers a SIGCONT at
// cleanup, so a failing test never leaves a stopped process behind.
func (m *Member) Freeze() {
	m.t.Helper()
	if err := m.Signal(syscall.SIGSTOP); err != nil {
		m.t.Fatalf("cluster: SIGSTOP %s: %v", m.ID, err)
	}
	m.t.Cleanup(func() { _ = m.Signal(syscall.SIGCONT) })
	// kill(2) returns before every thread has stopped: on a busy machine
	// the member can still answer a request or two. A test that acts "after
	// the freeze" must act after it took effect.
	if pid := m.Pid(); pid != 0 {
		testutil.Eventually(m.t, 5*time.Second, "member "+m.ID+" stopped", func() bool { return stopped(pid) })
	}
}

// stopped reports whether every thread of process pid is stopped (state T
// in /proc). Without /proc it reports true: there is nothing to wait on.
func stopped(pid int) bool {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return true
	}
	for _, task := range tasks {
		b, err := os.ReadFile(dir + "/" + task.Name() + "/stat")
		if err != nil {
			continue // the thread ended
		}
		// The state follows the command name, which is in parentheses
		// and may itself hold spaces or parentheses.
		st := string(b)
		i := strings.LastIndexByte(st, ')')
		if i < 0 || i+2 >= len(st) {
			return false
		}
		if c := st[i+2]; c != 'T' && c != 't' {
			return false
		}
	}
	return true
}

// Thaw resumes a process frozen with Freeze.
func (m *Member) Thaw() {
	m.t.Helper()
	if err := m.Signal(syscall.SIGCONT); err != nil {
		m.t.Fatalf("cluster: SIGCONT %s: %v", m.ID, err)
	}
}

// WaitApplied waits until every given member reports (GET /v1/cluster)
// an applied index of at least index.
func (c *Cluster) WaitApplied(d time.Duration, index uint64, ms ...*Member) {
	c.t.Helper()
	for _, m := range ms {
		c.Eventually(d, fmt.Sprintf("member %s to apply index %d", m.ID, index), func() bool {
			info, err := c.ClusterInfo(m)
			return err == nil && info.AppliedIndex >= index
		})
	}
}

// WaitCaughtUp finds the ready leader, reads its commit index and waits
// until every given member (all running ones when none is given) has
// applied up to it: after that, a stale read on any of them sees every
// write acknowledged before the call. It returns the leader.
func (c *Cluster) WaitCaughtUp(d time.Duration, ms ...*Member) *Member {
	c.t.Helper()
	leader := c.Leader(d)
	var commit uint64
	c.Eventually(d, "the leader's commit index", func() bool {
		info, err := c.ClusterInfo(leader)
		commit = info.CommitIndex
		return err == nil
	})
	if len(ms) == 0 {
		ms = c.Running()
	}
	c.WaitApplied(d, commit, ms...)
	return leader
}

// WaitNewLeader waits until a running member other than old is the ready
// leader every running member agrees on, and returns it.
func (c *Cluster) WaitNewLeader(d time.Duration, old *Member) *Member {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for {
		// Leader waits until every running member agrees on a ready leader
		// (and fails the test at the deadline).
		if l := c.Leader(time.Until(deadline)); l != old {
			return l
		}
		if !testutil.Poll(time.Until(deadline), func() bool { l := c.CurrentLeader(); return l != nil && l != old }) {
			c.t.Fatalf("cluster: timed out after %v waiting for a leader other than %s", d, old.ID)
		}
	}
}

// quickClient bounds the questions CurrentLeader asks, so a paused or
// partitioned member costs a second, not the default client's timeout.
var quickClient = &http.Client{Timeout: time.Second}

// CurrentLeader returns the member that the first running member to
// answer names as leader, or nil when none answers or none knows one. It
// does not wait: use Leader to wait for an agreed, ready leader.
func (c *Cluster) CurrentLeader() *Member {
	for _, m := range c.Running() {
		resp, err := quickClient.Get(m.URL("/v1/cluster"))
		if err != nil {
			continue
		}
		var info Info
		err = json.NewDecoder(resp.Body).Decode(&info)
		resp.Body.Close()
		if err != nil || info.Leader == nil {
			continue
		}
		for _, mm := range c.Members {
			if mm.ID == info.Leader.ID {
				return mm
			}
		}
	}
	return nil
}

// CurrentLeaderOf is CurrentLeader asking only the given members.
func (c *Cluster) CurrentLeaderOf(ms ...*Member) *Member {
	sub := &Cluster{t: c.t, Members: ms}
	return sub.CurrentLeader()
}
