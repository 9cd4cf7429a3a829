package faulttest

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/rosterhq/roster/internal/cluster"
	"github.com/rosterhq/roster/internal/testutil"
)

// TestLeaseSafetyScenarios runs the lease promises that need a fault at a
// chosen moment rather than a random one, on one cluster:
//
//   - the minority side of a partition expires and deletes nothing (read
//     with stale reads on the isolated member) while the majority expires
//     the same lease;
//   - remaining TTL carries over a leader change (kill -9 of the leader);
//   - lease IDs stay unique across a kill -9 and restart of every member.
//
// The long profile repeats the first two five times.
func TestLeaseSafetyScenarios(t *testing.T) {
	rounds := 1
	if currentProfile(t).Soak {
		rounds = 5
	}
	c := cluster.StartNet(t, 3, "-tick", "100ms")
	ids := map[int64]bool{}
	grant := func(m *cluster.Member, ttl int) int64 {
		t.Helper()
		var id int64
		c.Eventually(30*time.Second, "a lease granted through "+m.ID, func() bool {
			r := send("POST", m.URL("/v1/leases"), []byte(fmt.Sprintf(`{"ttl":%d}`, ttl)))
			var l struct {
				ID string `json:"id"`
			}
			if r.status != 201 || r.decode(&l) != nil {
				return false
			}
			id, _ = strconv.ParseInt(l.ID, 10, 64)
			return true
		})
		if ids[id] {
			t.Fatalf("lease ID %d issued twice", id)
		}
		ids[id] = true
		return id
	}

	for round := range rounds {
		leaseScenarioRound(t, c, round, grant)
	}

	t.Log("scenario: IDs unique across restarts")
	{
		for range 10 {
			grant(c.Leader(30*time.Second), 60)
		}
		for _, m := range c.Members {
			m.Kill()
		}
		for _, m := range c.Members {
			m.Restart()
		}
		c.WaitReady(60*time.Second, c.Members...)
		for range 10 {
			grant(c.Leader(30*time.Second), 60) // fails on a repeated ID
		}
		t.Logf("%d lease IDs, all distinct", len(ids))
	}
}

// leaseScenarioRound runs the minority and TTL carry-over scenarios once.
func leaseScenarioRound(t testing.TB, c *cluster.Cluster, round int, grant func(*cluster.Member, int) int64) {
	key := fmt.Sprintf("/minority/%d", round)
	t.Logf("scenario %d: the minority expires nothing", round)
	func() {
		leader := c.Leader(30 * time.Second)
		const ttl = 3
		id := grant(leader, ttl)
		lid := strconv.FormatInt(id, 10)
		if r := send("PUT", leader.URL("/v1/kv"+key+"?lease="+lid), []byte("x")); r.status != 200 {
			t.Fatalf("put: %d %s", r.status, r.body)
		}
		c.WaitCaughtUp(30 * time.Second)
		before := send("GET", leader.URL("/v1/kv/minority/?prefix=true&stale=true"), nil)
		c.Net.Isolate(cluster.Cut, leader)
		defer c.Net.Heal()
		cut := time.Now()
		majority := c.Followers(leader)
		// Until the majority expired the lease and twice its TTL passed,
		// every read of the isolated member must still show both.
		expiredOnMajority := false
		done := testutil.Poll(60*time.Second-time.Since(cut), func() bool {
			kv := send("GET", leader.URL("/v1/kv"+key+"?stale=true"), nil)
			l := send("GET", leader.URL("/v1/leases/"+lid+"?stale=true"), nil)
			if kv.status != 200 || l.status != 200 || kv.rev != before.rev {
				t.Fatalf("%v after the partition the isolated member shows key %d %s, lease %d %s, revision %d (was %d)",
					time.Since(cut).Round(time.Millisecond), kv.status, kv.body, l.status, l.body, kv.rev, before.rev)
			}
			if !expiredOnMajority {
				r := send("GET", majority[0].URL("/v1/leases/"+lid), nil)
				expiredOnMajority = r.status == 404 && r.code == "lease_not_found"
			}
			return expiredOnMajority && time.Since(cut) >= 2*ttl*time.Second
		})
		if !done {
			t.Fatalf("the majority did not expire the lease within 60 s of the partition")
		}
		t.Logf("the isolated member kept the lease and its key %v past the TTL while the majority expired it", time.Since(cut).Round(time.Millisecond))
		c.Net.Heal()
		c.Eventually(30*time.Second, "the healed member to apply the expiry", func() bool {
			return send("GET", leader.URL("/v1/kv"+key+"?stale=true"), nil).status == 404
		})
	}()

	t.Logf("scenario %d: remaining TTL carries over a leader change", round)
	{
		leader := c.Leader(30 * time.Second)
		const ttl = 10
		lid := strconv.FormatInt(grant(leader, ttl), 10)
		remaining := func(m *cluster.Member) int64 {
			var l struct {
				Remaining int64 `json:"remaining"`
			}
			r := send("GET", m.URL("/v1/leases/"+lid), nil)
			if r.status != 200 || r.decode(&l) != nil {
				return -1
			}
			return l.Remaining
		}
		var r0 int64
		c.Eventually(30*time.Second, "the lease to run down to 7 s", func() bool {
			r0 = remaining(leader)
			return r0 > 0 && r0 <= 7
		})
		t0 := time.Now()
		leader.Kill()
		next := c.WaitNewLeader(30*time.Second, leader)
		var r1 int64
		c.Eventually(30*time.Second, "the lease on the new leader", func() bool {
			r1 = remaining(next)
			return r1 > 0
		})
		gone := int64(time.Since(t0).Seconds()) + 1
		t.Logf("remaining %d s before the kill, %d s on the new leader %v later", r0, r1, time.Since(t0).Round(time.Millisecond))
		if r1 > r0 || r1 < r0-gone {
			t.Fatalf("remaining TTL %d s before the leader change, %d s %v after: want between %d and %d", r0, r1, time.Since(t0), r0-gone, r0)
		}
		leader.Restart()
		c.WaitReady(60*time.Second, c.Members...)
	}
}
