package main

import (
	"bytes"
	"context"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/rosterhq/roster/internal/cluster"
)

// TestUsage covers what needs no cluster: help, usage errors, version,
// completion, and exit code 6 when no member answers.
func TestUsage(t *testing.T) {
	t.Parallel()

	t.Run("help and usage errors", func(t *testing.T) {
		s := newSession(t, nil)
		expect(t, s.run(), 0)
		expect(t, s.run("put", "--help"), 0)
		expect(t, s.run("lease"), 0)
		expect(t, s.run("bogus"), exitUsage)
		expect(t, s.run("gett", "/a"), exitUsage)
		expect(t, s.run("--nope"), exitUsage)
		expect(t, s.run("-o", "yaml", "get", "/a"), exitUsage)
		expect(t, s.run("--timeout", "0s", "get", "/a"), exitUsage)
		expect(t, s.run("--timeout", "soon", "get", "/a"), exitUsage)
		expect(t, s.run("--endpoints", " , ", "get", "/a"), exitUsage)
		expect(t, s.run("--endpoints", "ftp://127.0.0.1:1", "get", "/a"), exitUsage)
		expect(t, s.run("member", "add", "n9"), exitUsage)
		expect(t, s.run("completion", "tcsh"), exitUsage)
		s.golden("usage")
	})

	t.Run("version", func(t *testing.T) {
		s := newSession(t, nil)
		s.lit = append(s.lit, runtime.Version(), "<GO>", runtime.GOOS+"/"+runtime.GOARCH, "<PLATFORM>")
		s.replace(`(?m)^(version:\s+)\S+$`, "${1}<VERSION>")
		s.replace(`("version": )"[^"]*"`, `${1}"<VERSION>"`)
		expect(t, s.run("version"), 0)
		expect(t, s.run("-o", "json", "version"), 0)
		s.golden("version")
	})

	t.Run("completion", func(t *testing.T) {
		for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
			s := newSession(t, nil)
			r := s.run("completion", shell)
			expect(t, r, 0)
			if len(r.stdout) < 500 || !strings.Contains(r.stdout, "rosterctl") {
				t.Errorf("completion %s: %d bytes, want a script that mentions rosterctl:\n%.300s", shell, len(r.stdout), r.stdout)
			}
		}
	})

	t.Run("unavailable", func(t *testing.T) {
		s := newSession(t, nil)
		dead := cluster.FreePort(t) // nothing listens there
		s.env[envEndpoints] = dead
		s.lit = append(s.lit, dead, placeholder("DEAD", len(dead)))
		// The client keeps retrying the refused connections until the
		// --timeout, then reports a timeout.
		s.replace(`after \S+: context deadline exceeded`, "after <T>: context deadline exceeded")
		expect(t, s.run("--timeout", "300ms", "get", "/a"), exitUnavailable)
		expect(t, s.run("--timeout", "300ms", "put", "/a", "v"), exitUnavailable)
		expect(t, s.run("--timeout", "300ms", "status"), exitUnavailable)
		expect(t, s.run("--timeout", "300ms", "lease", "grant", "10"), exitUnavailable)
		expect(t, s.run("--timeout", "300ms", "lease", "keepalive", "12345"), exitUnavailable)
		expect(t, s.run("--timeout", "300ms", "watch", "--prefix", "/a/"), exitUnavailable)
		s.golden("unavailable")
	})

	t.Run("interrupted", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		var stdout, stderr bytes.Buffer
		getenv := func(string) string { return cluster.FreePort(t) }
		code := run(ctx, []string{"get", "/a"}, nil, &stdout, &stderr, getenv)
		if code != exitInterrupted || stdout.Len() != 0 || !regexp.MustCompile(`^rosterctl: interrupted\n$`).MatchString(stderr.String()) {
			t.Fatalf("exit %d, stdout %q, stderr %q; want 130 and rosterctl: interrupted", code, stdout.String(), stderr.String())
		}
	})
}
