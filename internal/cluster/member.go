package cluster

import (
	"fmt"
	"github.com/rosterhq/roster/internal/testutil"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Member is one rosterd process (running or not).
type Member struct {
	ID   string
	HTTP string // host:port
	Raft string // host:port
	Dir  string
	// Redis is the Redis port's host:port (Cluster.WithRedis), "" for none.
	// Test clients dial it directly, as they do HTTP: only the members'
	// own links go through the Net's proxies.
	Redis string
	Args  []string // extra flags
	// Env is added to the process environment at each Start (e.g.
	// "ROSTER_FAILPOINT=commit-before-ack"); change it between runs.
	Env []string
	// RaftProxy and HTTPProxy, when set (a cluster with a Net), are the
	// addresses of the test's proxies in front of Raft and HTTP: the member
	// advertises them, so every other member reaches it through them.
	RaftProxy string
	HTTPProxy string

	t   testing.TB
	bin string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	logs   *testutil.SyncBuffer
	runs   int
}

// URL returns http://HTTP + path, or https:// when the member serves TLS
// (its flags include -cert-file).
func (m *Member) URL(path string) string { return m.Scheme() + "://" + m.HTTP + path }

// Scheme is https when the member's flags include -cert-file, else http.
func (m *Member) Scheme() string {
	for _, a := range m.Args {
		if a == "-cert-file" || a == "--cert-file" {
			return "https"
		}
	}
	return "http"
}

// Start launches the process with the member's flags plus extra.
func (m *Member) Start(extra ...string) {
	m.t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil {
		select {
		case <-m.exited: // it exited on its own (a fatal error): start again
			m.cmd = nil
		default:
			m.t.Fatalf("cluster: member %s already running", m.ID)
		}
	}
	args := []string{"-id", m.ID, "-http", m.HTTP, "-raft", m.Raft, "-data", m.Dir, "-log-level", "info"}
	if m.RaftProxy != "" {
		args = append(args, "-advertise-raft", m.RaftProxy)
	}
	if m.HTTPProxy != "" {
		args = append(args, "-advertise-http", m.HTTPProxy)
	}
	if m.Redis != "" {
		args = append(args, "-redis", m.Redis)
	}
	args = append(args, m.Args...)
	args = append(args, extra...)
	cmd := exec.Command(m.bin, args...)
	if len(m.Env) > 0 {
		cmd.Env = append(os.Environ(), m.Env...)
	}
	m.runs++
	fmt.Fprintf(m.logs, "==== run %d: %v rosterd %v\n", m.runs, m.Env, args)
	cmd.Stdout = m.logs
	cmd.Stderr = m.logs
	if err := cmd.Start(); err != nil {
		m.t.Fatalf("cluster: start %s: %v", m.ID, err)
	}
	exited := make(chan struct{})
	go func() {
		err := cmd.Wait()
		fmt.Fprintf(m.logs, "==== run %d exited: %v\n", m.runs, err)
		close(exited)
	}()
	m.cmd, m.exited = cmd, exited
}

// Kill sends SIGKILL and waits for the process to exit.
func (m *Member) Kill() { m.signal(syscall.SIGKILL, 10*time.Second) }

// Stop sends SIGTERM (graceful: leadership transfer first) and waits up to
// 30 s for the exit.
func (m *Member) Stop() { m.signal(syscall.SIGTERM, 30*time.Second) }

// Restart starts the member again after Kill or Stop.
func (m *Member) Restart(extra ...string) { m.Start(extra...) }

// Running reports whether the process is running.
func (m *Member) Running() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return false
	}
	select {
	case <-m.exited:
		return false
	default:
		return true
	}
}

func (m *Member) signal(sig syscall.Signal, wait time.Duration) {
	m.t.Helper()
	m.mu.Lock()
	cmd, exited := m.cmd, m.exited
	m.cmd = nil
	m.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-exited:
	case <-time.After(wait):
		_ = cmd.Process.Kill()
		<-exited
		m.t.Errorf("cluster: member %s did not exit within %v of %v", m.ID, wait, sig)
	}
}

// Logs returns everything the member printed so far.
func (m *Member) Logs() string { return m.logs.String() }
