package main

import (
	"strings"
	"testing"
)

func TestLease(t *testing.T) {
	t.Parallel()
	c := startCluster(t)

	// grantID grants a lease and returns its ID (unrecorded).
	grantID := func(t *testing.T, s *session, args ...string) string {
		t.Helper()
		r := s.run(append([]string{"-o", "json", "lease", "grant"}, args...)...)
		expect(t, r, 0)
		_, rest, _ := strings.Cut(r.stdout, `"id": "`)
		id, _, _ := strings.Cut(rest, `"`)
		if id == "" {
			t.Fatalf("no id in %q", r.stdout)
		}
		return id
	}

	t.Run("table", func(t *testing.T) {
		s := newSession(t, c)
		// The remaining seconds may tick down during the test.
		s.replace(`(?m)^(remaining:\s+)\d+$`, "${1}<N>")
		s.replace(`(?m)^(<LEASE_*>\s+\S+\s+\d+\s+)\d+$`, "${1}<N>")
		expect(t, s.run("lease", "grant", "60", "--name", "/svc/one"), 0)
		id := grantID(t, s, "120")
		expect(t, s.run("put", "/l/a", "1", "--lease", id), 0)
		expect(t, s.run("put", "/l/b", "2", "--lease", id), 0)
		expect(t, s.run("lease", "ttl", id), 0)
		expect(t, s.run("lease", "ttl", id, "--keys"), 0)
		expect(t, s.run("lease", "list"), 0)
		expect(t, s.run("lease", "list", "--limit", "1"), 0)
		expect(t, s.run("get", "--prefix", "/l/"), 0)
		expect(t, s.run("lease", "revoke", id), 0)
		expect(t, s.run("get", "--prefix", "/l/"), 0)
		s.golden("lease_table")
	})

	t.Run("json", func(t *testing.T) {
		s := newSession(t, c)
		s.replace(`("remaining": )\d+`, "${1}<N>")
		// Start from no leases at all.
		r := s.run("-o", "json", "lease", "list")
		for _, line := range strings.Split(r.stdout, "\n") {
			if _, rest, ok := strings.Cut(line, `"id": "`); ok {
				id, _, _ := strings.Cut(rest, `"`)
				expect(t, s.run("lease", "revoke", id), 0)
			}
		}
		s.text.Reset()
		expect(t, s.run("-o", "json", "lease", "grant", "30", "--name", "/svc/j"), 0)
		id := grantID(t, s, "45")
		expect(t, s.run("put", "/lj/a", "x", "--lease", id), 0)
		expect(t, s.run("-o", "json", "lease", "ttl", id), 0)
		expect(t, s.run("-o", "json", "lease", "ttl", id, "--keys"), 0)
		expect(t, s.run("-o", "json", "lease", "list"), 0)
		expect(t, s.run("-o", "json", "lease", "list", "--limit", "1"), 0)
		expect(t, s.run("-o", "json", "lease", "revoke", id), 0)
		s.golden("lease_json")
	})

	t.Run("keepalive", func(t *testing.T) {
		s := newSession(t, c)
		id := grantID(t, s, "30")
		s.text.Reset()
		// The first renewal goes out at once, the next after 10 s: stop
		// after the first.
		k := s.start("lease", "keepalive", id)
		k.waitLines(1)
		expect(t, k.stop(), 0)
		kj := s.start("-o", "json", "lease", "keepalive", id)
		kj.waitLines(1)
		expect(t, kj.stop(), 0)
		expect(t, s.run("lease", "keepalive", "12345"), exitLeaseNotFound)
		s.golden("lease_keepalive")
	})

	t.Run("errors", func(t *testing.T) {
		s := newSession(t, c)
		expect(t, s.run("lease", "ttl", "12345"), exitLeaseNotFound)
		expect(t, s.run("-o", "json", "lease", "ttl", "12345"), exitLeaseNotFound)
		expect(t, s.run("lease", "revoke", "12345"), exitLeaseNotFound)
		expect(t, s.run("lease", "grant", "ten"), exitUsage)
		expect(t, s.run("lease", "grant", "1"), exitUsage) // below the minimum TTL: the client refuses it before sending
		expect(t, s.run("lease", "ttl", "-5"), exitUsage)
		expect(t, s.run("lease", "revoke", "abc"), exitUsage)
		expect(t, s.run("lease", "list", "extra"), exitUsage)
		expect(t, s.run("lease", "bogus"), exitUsage)
		s.golden("lease_errors")
	})
}
