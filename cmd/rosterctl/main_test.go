package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rosterhq/roster/internal/cluster"
	"github.com/rosterhq/roster/internal/testutil"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the actual output")

// cmdTimeout bounds every rosterctl invocation of the tests.
const cmdTimeout = 30 * time.Second

// result is one rosterctl invocation's outcome.
type result struct {
	code           int
	stdout, stderr string
}

// replacement rewrites variable parts of the output before comparing.
type replacement struct {
	re  *regexp.Regexp
	new string
	fn  func(string) string // instead of new
}

// session runs rosterctl commands against one cluster and records a
// normalised transcript of them, compared at the end with a golden file.
type session struct {
	t    *testing.T
	env  map[string]string
	lit  []string // old, new pairs replaced literally (addresses)
	res  []replacement
	text strings.Builder
}

// leaseIDs matches snowflake lease IDs (19 digits today).
var leaseIDs = regexp.MustCompile(`\b\d{15,20}\b`)

func newSession(t *testing.T, c *cluster.Cluster) *session {
	s := &session{t: t, env: map[string]string{}}
	if c != nil {
		s.env[envEndpoints] = strings.Join(c.Endpoints(), ",")
		for _, m := range c.Members {
			s.addr(m)
		}
	}
	s.res = append(s.res, replacement{re: leaseIDs, fn: func(id string) string { return placeholder("LEASE", len(id)) }})
	return s
}

// addr makes the member's addresses placeholders.
func (s *session) addr(m *cluster.Member) {
	s.lit = append(s.lit,
		m.HTTP, placeholder("HTTP:"+m.ID, len(m.HTTP)),
		m.Raft, placeholder("RAFT:"+m.ID, len(m.Raft)))
}

// placeholder is <NAME> padded with "_" to n characters, so that tables
// stay aligned after normalisation.
func placeholder(name string, n int) string {
	return "<" + name + strings.Repeat("_", max(0, n-len(name)-2)) + ">"
}

// replace adds a normalisation: matches of expr are replaced by repl
// (which may refer to groups as ${1}).
func (s *session) replace(expr, repl string) {
	s.res = append(s.res, replacement{re: regexp.MustCompile(expr), new: repl})
}

func (s *session) getenv(k string) string { return s.env[k] }

func (s *session) normalise(out string) string {
	out = strings.NewReplacer(s.lit...).Replace(out)
	for _, r := range s.res {
		if r.fn != nil {
			out = r.re.ReplaceAllStringFunc(out, r.fn)
		} else {
			out = r.re.ReplaceAllString(out, r.new)
		}
	}
	return out
}

// run invokes rosterctl with stdin "" and records it.
func (s *session) run(args ...string) result { return s.runIn("", args...) }

// runIn invokes rosterctl with the given standard input and records it.
func (s *session) runIn(stdin string, args ...string) result {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, args, strings.NewReader(stdin), &stdout, &stderr, s.getenv)
	r := result{code: code, stdout: stdout.String(), stderr: stderr.String()}
	s.record(args, stdin, r, "")
	return r
}

// async is a streaming command running in the background.
type async struct {
	s      *session
	args   []string
	cancel context.CancelFunc
	stdout testutil.SyncBuffer
	stderr testutil.SyncBuffer
	done   chan struct{} // closed when run returned, with code set
	code   int
}

// start runs rosterctl in a goroutine until stop.
func (s *session) start(args ...string) *async {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	a := &async{s: s, args: args, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(a.done)
		a.code = run(ctx, args, strings.NewReader(""), &a.stdout, &a.stderr, s.getenv)
	}()
	s.t.Cleanup(func() {
		cancel()
		select {
		case <-a.done:
		case <-time.After(cmdTimeout):
		}
	})
	return a
}

// waitLines waits until the command printed n lines, or fails the test.
func (a *async) waitLines(n int) {
	a.s.t.Helper()
	ended := false
	enough := testutil.Poll(15*time.Second, func() bool {
		select {
		case <-a.done:
			ended = true
			return true
		default:
		}
		return strings.Count(a.stdout.String(), "\n") >= n
	})
	switch {
	case ended && strings.Count(a.stdout.String(), "\n") < n:
		a.s.t.Fatalf("rosterctl %s ended early with %d\nstdout:\n%s\nstderr:\n%s", strings.Join(a.args, " "), a.code, a.stdout.String(), a.stderr.String())
	case !enough:
		a.s.t.Fatalf("rosterctl %s: timed out waiting for %d lines; stdout:\n%s\nstderr:\n%s", strings.Join(a.args, " "), n, a.stdout.String(), a.stderr.String())
	}
}

// stop interrupts the command (as Ctrl-C does), waits for it and records
// its output.
func (a *async) stop() result {
	a.s.t.Helper()
	a.cancel()
	select {
	case <-a.done:
	case <-time.After(cmdTimeout):
		a.s.t.Fatalf("rosterctl %s did not end after the interrupt", strings.Join(a.args, " "))
	}
	r := result{code: a.code, stdout: a.stdout.String(), stderr: a.stderr.String()}
	a.s.record(a.args, "", r, " (interrupted)")
	return r
}

func (s *session) record(args []string, stdin string, r result, note string) {
	w := &s.text
	w.WriteString("$")
	if stdin != "" {
		fmt.Fprintf(w, " echo -n %s |", strconv.Quote(stdin))
	}
	w.WriteString(" rosterctl")
	for _, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\n\"'$*|") {
			a = strconv.Quote(a)
		}
		w.WriteString(" " + s.normalise(a))
	}
	w.WriteString(note + "\n")
	if out := s.normalise(r.stdout); out != "" {
		w.WriteString(out)
		if !strings.HasSuffix(out, "\n") {
			w.WriteString("\n[no newline at end]\n")
		}
	}
	for _, line := range strings.SplitAfter(s.normalise(r.stderr), "\n") {
		if line != "" {
			w.WriteString("2> " + line)
		}
	}
	fmt.Fprintf(w, "[exit %d]\n\n", r.code)
}

// golden compares the transcript with testdata/name.golden (or rewrites it
// with -update).
func (s *session) golden(name string) {
	s.t.Helper()
	path := filepath.Join("testdata", name+".golden")
	got := s.text.String()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			s.t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		s.t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		s.t.Errorf("%s differs (run go test -update to accept):\n%s", path, diff(string(want), got))
	}
}

// diff is a small line diff: the first differing line and both texts.
func diff(want, got string) string {
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < max(len(wl), len(gl)); i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			return fmt.Sprintf("line %d:\n  want %q\n  got  %q\n---- got:\n%s", i+1, w, g, got)
		}
	}
	return "(no line differs)"
}

// expect fails the test when r did not exit with code.
func expect(t *testing.T, r result, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
}

// usageHint starts the line a usage error ends with.
const usageHint = "Run 'rosterctl "

// expectHint fails the test unless r's standard error holds the usage
// hint exactly when want.
func expectHint(t *testing.T, r result, want bool) {
	t.Helper()
	if got := strings.Contains(r.stderr, usageHint); got != want {
		t.Fatalf("usage hint printed: %v, want %v\nstderr:\n%s", got, want, r.stderr)
	}
}

// expectStderr fails the test unless r's standard error holds sub.
func expectStderr(t *testing.T, r result, sub string) {
	t.Helper()
	if !strings.Contains(r.stderr, sub) {
		t.Fatalf("stderr does not hold %q:\n%s", sub, r.stderr)
	}
}

// startCluster starts a fresh one-member cluster: its store begins at
// revision 0, so the revisions a test sees are deterministic.
func startCluster(t *testing.T) *cluster.Cluster {
	t.Helper()
	c := cluster.Start(t, 1)
	c.Leader(30 * time.Second)
	return c
}
