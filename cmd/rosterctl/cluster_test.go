package main

import (
	"testing"
	"time"
)

func TestCluster(t *testing.T) {
	t.Parallel()
	c := startCluster(t)

	// clusterSession normalises the raft term and indexes, which depend on
	// elections and configuration entries rather than on the test.
	clusterSession := func(t *testing.T) *session {
		s := newSession(t, c)
		s.replace(`(?m)^(term|commit_index|applied_index|index)(:\s+)\d+$`, "${1}${2}<N>")
		s.replace(`(?m)^((?:\S+\s+){5})\d+\s+\d+\s+\d+$`, "${1}<N>  <N>  <N>")
		s.replace(`("(?:term|commit_index|applied_index|index)": )\d+`, "${1}<N>")
		// The cluster ID is random.
		s.replace(`(?m)^(cluster_id:\s+)[0-9a-f]{32}$`, "${1}<ID>")
		s.replace(`("cluster_id": )"[0-9a-f]{32}"`, "${1}\"<ID>\"")
		return s
	}

	t.Run("one member", func(t *testing.T) {
		s := clusterSession(t)
		expect(t, s.run("member", "list"), 0)
		expect(t, s.run("-o", "json", "member", "list"), 0)
		expect(t, s.run("status"), 0)
		expect(t, s.run("-o", "json", "status"), 0)
		expect(t, s.run("snapshot"), 0)
		expect(t, s.run("-o", "json", "snapshot"), 0)
		s.golden("cluster_one")
	})

	t.Run("add and remove", func(t *testing.T) {
		s := clusterSession(t)
		m := c.Add()
		s.addr(m)
		m.Start("-bootstrap=false")
		c.WaitServing(30*time.Second, m)
		expect(t, s.run("member", "add", "n2", m.Raft, m.HTTP, "--nonvoter"), 0)
		c.WaitCaughtUp(30*time.Second, m)
		expect(t, s.run("member", "list"), 0)
		expect(t, s.run("-o", "json", "member", "list"), 0)
		expect(t, s.run("status"), 0) // n2 is not ready: it does not vote
		m.Kill()
		expect(t, s.run("status"), 0) // n2 is unreachable; the leader still leads
		expect(t, s.run("-o", "json", "status"), 0)
		expect(t, s.run("-o", "json", "member", "remove", "n2"), 0)
		expect(t, s.run("member", "list"), 0)
		expect(t, s.run("member", "add", "n3", "not-an-address"), exitUsage)
		expect(t, s.run("member", "add", "n3"), exitUsage)
		expect(t, s.run("member", "bogus"), exitUsage)
		// A member that does not exist is "not found", as a key is.
		r := s.run("member", "remove", "nobody")
		expect(t, r, exitNotFound)
		expectStderr(t, r, "not a member of the cluster: nobody")
		// The server refuses to remove the last voter: bad input (2),
		// but no usage hint; its status and code instead.
		r = s.run("member", "remove", "n1")
		expect(t, r, exitUsage)
		expectHint(t, r, false)
		expectStderr(t, r, "the cluster's last voter; add another voter first (refused by the server: 400 invalid_argument)")
		// The client's own check, before anything is sent, is a usage
		// error with the hint.
		expectHint(t, s.run("member", "remove", "a/b"), true)
		s.golden("cluster_members")
	})
}
