package main

import "testing"

func TestWatch(t *testing.T) {
	t.Parallel()
	c := startCluster(t)

	// Each watch starts after a known revision (--rev), so it is in place
	// before the puts without waiting on the server, and the output is
	// deterministic.
	t.Run("table", func(t *testing.T) {
		s := newSession(t, c)
		expect(t, s.run("put", "/w/a", "before"), 0) // revision 1, not shown
		w := s.start("watch", "/w/", "--prefix", "--rev", "1")
		expect(t, s.run("put", "/w/a", "v1"), 0)
		expect(t, s.run("put", "/w/b", "two words"), 0)
		expect(t, s.run("put", "/other", "not watched"), 0)
		expect(t, s.run("del", "/w/a"), 0)
		w.waitLines(3)
		expect(t, w.stop(), 0)
		s.golden("watch_table")
	})

	t.Run("json", func(t *testing.T) {
		s := newSession(t, c)
		w := s.start("-o", "json", "watch", "/wj/k", "--rev", "5", "--prev-kv")
		expect(t, s.run("put", "/wj/k", "first"), 0)
		expect(t, s.run("put", "/wj/k", "second"), 0)
		expect(t, s.run("put", "/wj/k2", "other key"), 0)
		expect(t, s.run("del", "/wj/k"), 0)
		w.waitLines(3)
		expect(t, w.stop(), 0)
		s.golden("watch_json")
	})

	t.Run("errors", func(t *testing.T) {
		s := newSession(t, c)
		expect(t, s.run("watch", "no-slash"), exitUsage)
		expect(t, s.run("watch", "/w/", "--rev", "-1"), exitUsage)
		expect(t, s.run("watch"), exitUsage)
		s.golden("watch_errors")
	})
}
