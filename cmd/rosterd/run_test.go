package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"github.com/rosterhq/roster/internal/testutil"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// syncBuffer is stderr for a rosterd under test: written by the server's
// goroutines, read by the test.
type syncBuffer struct{ testutil.SyncBuffer }

// records decodes the JSON log lines written so far.
func (b *syncBuffer) records() []map[string]any {
	var recs []map[string]any
	sc := bufio.NewScanner(strings.NewReader(b.String()))
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			recs = append(recs, m)
		}
	}
	return recs
}

func (b *syncBuffer) find(msg string) map[string]any {
	for _, r := range b.records() {
		if r["msg"] == msg {
			return r
		}
	}
	return nil
}

// server is a rosterd started by a test.
type server struct {
	t      *testing.T
	stderr *syncBuffer
	sigs   chan os.Signal
	exit   chan int
	addr   string // HTTP address, once serving
}

// fastArgs start a one-member server on free ports that elects itself
// quickly.
func fastArgs(dir string) []string {
	return []string{
		"-id", "t1", "-http", "127.0.0.1:0", "-raft", "127.0.0.1:0", "-data", dir,
		"-log-format", "json", "-log-level", "debug",
		"-raft-heartbeat-timeout", "100ms", "-raft-election-timeout", "100ms",
		"-raft-leader-lease-timeout", "100ms", "-tick", "50ms",
	}
}

func start(t *testing.T, args ...string) *server {
	t.Helper()
	s := &server{t: t, stderr: &syncBuffer{}, sigs: make(chan os.Signal, 2), exit: make(chan int, 1)}
	env := environment{getenv: func(string) string { return "" }, hostname: os.Hostname}
	go func() { s.exit <- rosterd(context.Background(), args, env, s.stderr, s.sigs) }()
	testutil.Eventually(t, 15*time.Second, "rosterd serving", func() bool {
		select {
		case code := <-s.exit:
			t.Fatalf("rosterd exited with %d:\n%s", code, s.stderr)
		default:
		}
		r := s.stderr.find("rosterd serving")
		if r != nil {
			s.addr, _ = r["http"].(string)
		}
		return r != nil
	})
	return s
}

// ready waits until the member is a leader-backed voter.
func (s *server) ready() {
	s.t.Helper()
	testutil.Eventually(s.t, 15*time.Second, "/readyz", func() bool {
		resp, err := http.Get("http://" + s.addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

func (s *server) do(method, path, body string) (int, string) {
	s.t.Helper()
	req, err := http.NewRequest(method, "http://"+s.addr+path, strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// stop sends SIGTERM and returns the exit status.
func (s *server) stop() int {
	s.t.Helper()
	s.sigs <- syscall.SIGTERM
	select {
	case code := <-s.exit:
		return code
	case <-time.After(20 * time.Second):
		s.t.Fatalf("rosterd did not stop:\n%s", s.stderr)
		return -1
	}
}

func TestRosterdServesStopsAndRestarts(t *testing.T) {
	dir := t.TempDir() + "/data" // absent: rosterd creates it
	s := start(t, fastArgs(dir)...)
	s.ready()

	if code, body := s.do("GET", "/healthz", ""); code != http.StatusOK {
		t.Errorf("/healthz = %d %s", code, body)
	}
	code, body := s.do("GET", "/metrics", "")
	if code != http.StatusOK || !strings.Contains(body, "go_goroutines") || !strings.Contains(body, "process_") {
		t.Errorf("/metrics = %d, lacks the Go or process collector:\n%.500s", code, body)
	}
	code, body = s.do("POST", "/v1/leases", `{"ttl":60,"name":"/esq/node-1"}`)
	if code != http.StatusCreated {
		t.Fatalf("grant = %d %s", code, body)
	}
	var lease struct{ ID string }
	if err := json.Unmarshal([]byte(body), &lease); err != nil || lease.ID == "" {
		t.Fatalf("grant answer %s: %v", body, err)
	}

	if code := s.stop(); code != exitOK {
		t.Fatalf("exit status %d, want 0:\n%s", code, s.stderr)
	}
	for _, msg := range []string{"shutting down", "http server stopped", "node closed", "rosterd stopped"} {
		if s.stderr.find(msg) == nil {
			t.Errorf("log lacks %q", msg)
		}
	}
	if r := s.stderr.find("shutting down"); r != nil && r["reason"] != "received terminated" {
		t.Errorf("shutdown reason = %v", r["reason"])
	}

	// The same data directory restarts into the same one-member cluster,
	// lease included.
	s = start(t, fastArgs(dir)...)
	s.ready()
	if code, body := s.do("GET", "/v1/leases/"+lease.ID, ""); code != http.StatusOK {
		t.Errorf("lease after restart = %d %s", code, body)
	}
	if code := s.stop(); code != exitOK {
		t.Fatalf("second run: exit status %d:\n%s", code, s.stderr)
	}
}

func TestRosterdSecondSignalExitsAtOnce(t *testing.T) {
	s := start(t, fastArgs(t.TempDir())...)
	s.ready()

	// A request whose body never finishes holds the HTTP shutdown up, once
	// the server has its connection. The scrapes reuse one keep-alive
	// connection; the readiness checks' connections are closed first and
	// waited out (the server counts a closed one until it notices), so the
	// gauge reads 1 before the request's connection and 2 once the server
	// holds it.
	open := func() int {
		_, body := s.do("GET", "/metrics", "")
		for _, line := range strings.Split(body, "\n") {
			if v, ok := strings.CutPrefix(line, "roster_http_connections_open "); ok {
				n, _ := strconv.Atoi(strings.TrimSpace(v))
				return n
			}
		}
		return -1
	}
	http.DefaultClient.CloseIdleConnections()
	testutil.Eventually(t, 5*time.Second, "only the scrapes' connection open", func() bool { return open() == 1 })
	conn, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "POST /v1/leases HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"ttl\":")
	testutil.Eventually(t, 5*time.Second, "the server to hold the unfinished request's connection", func() bool { return open() == 2 })

	s.sigs <- syscall.SIGINT
	testutil.Eventually(t, 5*time.Second, "shutting down", func() bool { return s.stderr.find("shutting down") != nil })
	began := time.Now()
	s.sigs <- syscall.SIGINT
	select {
	case code := <-s.exit:
		if code != exitError {
			t.Errorf("exit status %d, want %d", code, exitError)
		}
		if time.Since(began) > 2*time.Second {
			t.Errorf("took %v to exit after the second signal", time.Since(began))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("second signal did not end rosterd")
	}
	if !strings.Contains(s.stderr.String(), "second signal (interrupt) during shutdown") {
		t.Errorf("stderr lacks the second-signal note:\n%s", s.stderr)
	}

	// In the real process main exits now; here the abandoned shutdown goes
	// on, so let it finish before the data directory is removed.
	conn.Close()
	testutil.Eventually(t, 15*time.Second, "rosterd stopped", func() bool { return s.stderr.find("rosterd stopped") != nil })
}

func TestRosterdExitStatus(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()

	tests := []struct {
		name string
		args []string
		want int
		out  string
	}{
		{"help", []string{"-h"}, exitOK, "Usage: rosterd"},
		{"bad flag", []string{"-tick", "soon"}, exitUsage, `rosterd: invalid value "soon" for flag -tick`},
		{"conflict", []string{"-http", "127.0.0.1:1", "-haddr", "127.0.0.1:2"}, exitUsage, "disagree"},
		// Caught by raft's own checks when the node opens.
		{"raft config", append(fastArgs(t.TempDir()), "-raft-leader-lease-timeout", "200ms"), exitUsage, "open node"},
		{"http address in use", append(fastArgs(t.TempDir()), "-http", busy.Addr().String()), exitError, "address already in use"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr syncBuffer
			env := environment{getenv: func(string) string { return "" }, hostname: os.Hostname}
			got := rosterd(context.Background(), tt.args, env, &stderr, nil)
			if got != tt.want || !strings.Contains(stderr.String(), tt.out) {
				t.Errorf("exit %d, want %d; stderr should contain %q:\n%s", got, tt.want, tt.out, stderr.String())
			}
		})
	}
}

// TestRosterdRefusesStateAheadOfRaftLog: API.md "Server command line": a
// data directory whose state is ahead of its raft log is refused with a
// non-zero exit and a message naming both files.
func TestRosterdRefusesStateAheadOfRaftLog(t *testing.T) {
	dir := t.TempDir()
	s := start(t, fastArgs(dir)...)
	s.ready()
	if code, body := s.do("PUT", "/v1/kv/a", "1"); code != http.StatusOK {
		t.Fatalf("put = %d %s", code, body)
	}
	if code := s.stop(); code != exitOK {
		t.Fatalf("exit status %d:\n%s", code, s.stderr)
	}
	if err := os.RemoveAll(dir + "/raft"); err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	env := environment{getenv: func(string) string { return "" }, hostname: os.Hostname}
	code := rosterd(context.Background(), fastArgs(dir), env, &stderr, nil)
	out := stderr.String()
	if code != exitError || !strings.Contains(out, "ahead of its raft log") ||
		!strings.Contains(out, dir+"/state.db") || !strings.Contains(out, dir+"/raft/raft.db") {
		t.Fatalf("exit %d, want %d with a message naming the state file and the raft log:\n%s", code, exitError, out)
	}
}

// TestRosterdDataDirectoryInUse: a second rosterd given the data directory
// of a running one (two members left on the default ./roster-data, say)
// says so, rather than "fsm: open …/state.db: timeout".
func TestRosterdDataDirectoryInUse(t *testing.T) {
	t.Parallel() // the state file's lock is waited for 5 s
	dir := t.TempDir()
	db, err := bolt.Open(filepath.Join(dir, "state.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var stderr syncBuffer
	env := environment{getenv: func(string) string { return "" }, hostname: os.Hostname}
	code := rosterd(context.Background(), fastArgs(dir), env, &stderr, nil)
	if out := stderr.String(); code != exitError || !strings.Contains(out, "data directory "+dir+" is in use by another process") {
		t.Fatalf("exit %d, want %d with a message saying the data directory is in use:\n%s", code, exitError, out)
	}
}
