package main

import "testing"

func TestRegister(t *testing.T) {
	t.Parallel()
	c := startCluster(t)

	t.Run("table", func(t *testing.T) {
		s := newSession(t, c)
		r := s.start("register", "/reg/api/n1", "10.0.0.1:8080", "--ttl", "10")
		r.waitLines(1)
		expect(t, s.run("get", "/reg/api/n1"), 0)
		expect(t, r.stop(), 0)
		// Close revoked the lease: the key is gone at once.
		expect(t, s.run("get", "/reg/api/n1"), exitNotFound)
		expect(t, s.run("lease", "list"), 0)
		s.golden("register_table")
	})

	t.Run("json", func(t *testing.T) {
		s := newSession(t, c)
		s.replace(`"time":"[^"]*"`, `"time":"<TIME>"`)
		r := s.start("-o", "json", "register", "/reg/api/n2", `{"addr":"10.0.0.2:8080"}`, "--ttl", "10")
		r.waitLines(1)
		expect(t, s.run("-o", "json", "get", "/reg/api/n2"), 0)
		expect(t, r.stop(), 0)
		expect(t, s.run("get", "/reg/api/n2"), exitNotFound)
		s.golden("register_json")
	})

	t.Run("errors", func(t *testing.T) {
		s := newSession(t, c)
		expect(t, s.run("register", "/reg/x", "v"), exitUsage)
		expect(t, s.run("register", "/reg/x", "v", "--ttl", "0"), exitUsage)
		expect(t, s.run("register", "/reg/x", "v", "--ttl", "1"), exitUsage)
		expect(t, s.run("register", "reg/x", "v", "--ttl", "10"), exitUsage)
		expect(t, s.run("lease", "list"), 0) // nothing left behind
		s.golden("register_errors")
	})
}
