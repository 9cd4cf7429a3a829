package systemtest

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rosterhq/roster/internal/cluster"
	"github.com/rosterhq/roster/internal/testutil"
)

// TestSnapshotJoinAndRemove fills a three-member cluster whose members keep
// only 64 log entries after a snapshot, compacts the leader's log with
// POST /v1/cluster/snapshot, then adds a fourth member: the log it would
// need is gone, so it gets the state by snapshot install — keys, leases
// with their remaining TTL (so the lease clock came along), revisions and
// the membership. Then a member is removed through a follower and the
// cluster goes on without it.
func TestSnapshotJoinAndRemove(t *testing.T) {
	if testing.Short() {
		t.Skip("snapshot install to a joining member: slow; skipped with -short")
	}
	c := cluster.Start(t, 3, "-tick", "100ms", "-snapshot-threshold", "128", "-trailing-logs", "64")
	leader := c.Leader(10 * time.Second)
	followers := c.Followers(leader)

	// State: leases (with names), keys attached to them and plain keys,
	// an expired lease (its key deleted by expiry), overwrites.
	granted := time.Now()
	var leases []leaseJSON
	for i := range 4 {
		leases = append(leases, grant(t, leader.URL(""), 60, fmt.Sprintf("/svc/snap-%d", i)))
	}
	short := grant(t, leader.URL(""), 2, "/svc/short")
	if code, b := do(t, "PUT", leader.URL("/v1/kv/snap/short?lease="+short.ID), []byte("s")); code != 200 {
		t.Fatalf("put: %d %s", code, b)
	}
	const n = 400
	for i := range n {
		m := c.Members[i%3] // through every member
		u := m.URL(fmt.Sprintf("/v1/kv/snap/k%04d", i))
		if i%4 == 0 {
			u += "?lease=" + leases[(i/4)%len(leases)].ID
		}
		if code, b := do(t, "PUT", u, []byte(fmt.Sprintf("v%d", i))); code != 200 {
			t.Fatalf("put %d via %s: %d %s", i, m.ID, code, b)
		}
	}
	for i := 5; i < n; i += 10 { // second versions of keys without a lease
		if code, b := do(t, "PUT", leader.URL(fmt.Sprintf("/v1/kv/snap/k%04d", i)), []byte(fmt.Sprintf("w%d", i))); code != 200 {
			t.Fatalf("overwrite %d: %d %s", i, code, b)
		}
	}
	c.Eventually(15*time.Second, "the 2 s lease to expire", func() bool {
		code, _, err := try("GET", leader.URL("/v1/leases/"+short.ID+"?stale=true"), nil)
		return err == nil && code == 404
	})

	// Compact the leader's log.
	var snap struct {
		Index uint64 `json:"index"`
	}
	code, b := do(t, "POST", leader.URL("/v1/cluster/snapshot"), nil)
	mustJSON(t, code, b, &snap)
	t.Logf("leader %s took a snapshot at index %d, %v after the start", leader.ID, snap.Index, time.Since(granted).Round(time.Millisecond))
	if snap.Index < n {
		t.Fatalf("snapshot at index %d, below the %d writes", snap.Index, n)
	}
	// A few writes after the snapshot: the newcomer gets them from the log.
	for i := range 5 {
		if code, b := do(t, "PUT", leader.URL(fmt.Sprintf("/v1/kv/snap/after%d", i)), []byte("a")); code != 200 {
			t.Fatalf("put after snapshot: %d %s", code, b)
		}
	}

	n4 := c.Add()
	n4.Start("-join", followers[0].HTTP)
	c.WaitReady(30*time.Second, n4)
	c.WaitVoters(20*time.Second, 4)
	// The line reaches the captured log a moment after the install.
	installed := func() bool { return strings.Contains(n4.Logs(), "Installed remote snapshot") }
	if !testutil.Poll(10*time.Second, installed) {
		t.Fatalf("n4 did not get its state by snapshot install")
	}
	leader = c.WaitCaughtUp(20*time.Second, n4)
	t.Logf("n4 joined through %s and caught up by snapshot install, %v after the start", followers[0].ID, time.Since(granted).Round(time.Millisecond))

	// Keys, values, lease attachments and revisions match the leader's.
	want, wantRev := staleKVs(t, leader, "/snap/")
	got, gotRev := staleKVs(t, n4, "/snap/")
	if len(got) != n+5 || len(want) != n+5 {
		t.Fatalf("keys: n4 has %d, leader %d, want %d", len(got), len(want), n+5)
	}
	if _, ok := got["/snap/short"]; ok {
		t.Fatalf("n4 holds the key of the expired lease")
	}
	for k, w := range want {
		if g := got[k]; g != w {
			t.Fatalf("key %s: n4 has %+v, leader %+v", k, g, w)
		}
	}
	if gotRev < wantRev {
		t.Fatalf("revision on n4 %d, leader %d", gotRev, wantRev)
	}
	// Leases: same TTL and name, the same remaining TTL as the leader (the
	// lease clock came with the snapshot), and only the time since the
	// grant gone from it.
	for _, l := range leases {
		lw := staleLease(t, leader, l.ID)
		lg := staleLease(t, n4, l.ID)
		elapsed := int64(time.Since(granted).Seconds()) + 1
		if lg.TTL != 60 || lg.Name != l.Name || lg.Remaining > 60 || lg.Remaining < 60-elapsed ||
			lg.Remaining < lw.Remaining-1 || lg.Remaining > lw.Remaining+1 {
			t.Fatalf("lease on n4 %+v, on the leader %+v, %d s after the grant", lg, lw, elapsed)
		}
	}
	// The lease index: a lease's keys, read from n4's replica.
	var withKeys struct {
		Keys []string `json:"keys"`
	}
	code, b = do(t, "GET", n4.URL("/v1/leases/"+leases[0].ID+"?keys=true&stale=true"), nil)
	mustJSON(t, code, b, &withKeys)
	if len(withKeys.Keys) != n/4/len(leases) {
		t.Fatalf("lease %s on n4 has %d keys, want %d: %v", leases[0].ID, len(withKeys.Keys), n/4/len(leases), withKeys.Keys)
	}
	// Membership: n4 knows all four members with their HTTP addresses.
	info := clusterView(t, c, n4)
	if got := fmt.Sprint(memberIDs(info)); got != "[n1 n2 n3 n4]" || info.Leader == nil {
		t.Fatalf("members as seen by n4: %s, leader %v", got, info.Leader)
	}
	for _, e := range info.Members {
		if !e.Voter || e.HTTPAddr == "" {
			t.Fatalf("member entry on n4 lacks metadata: %+v", e)
		}
	}
	// A grant through n4 is visible through another member.
	l4 := grant(t, n4.URL(""), 30, "/svc/n4")
	var l4b leaseJSON
	code, b = do(t, "GET", followers[1].URL("/v1/leases/"+l4.ID), nil)
	mustJSON(t, code, b, &l4b)

	// Remove a member, asking a follower that is not the one removed.
	leader = c.Leader(10 * time.Second)
	var asked, victim *cluster.Member
	for _, m := range c.Followers(leader) {
		switch {
		case asked == nil:
			asked = m
		case victim == nil:
			victim = m
		}
	}
	code, b = do(t, "DELETE", asked.URL("/v1/cluster/members/"+victim.ID), nil)
	if code != 200 {
		t.Fatalf("DELETE member %s via %s: %d %s", victim.ID, asked.ID, code, b)
	}
	var removed map[string]string
	if err := json.Unmarshal(b, &removed); err != nil || removed["removed"] != victim.ID {
		t.Fatalf("DELETE answer %s", b)
	}
	t.Logf("removed %s through %s (leader %s)", victim.ID, asked.ID, leader.ID)
	var rest []*cluster.Member
	for _, m := range c.Running() {
		if m != victim {
			rest = append(rest, m)
		}
	}
	for _, m := range rest {
		c.Eventually(10*time.Second, m.ID+" to drop "+victim.ID, func() bool {
			info, err := c.ClusterInfo(m)
			if err != nil || info.Leader == nil {
				return false
			}
			_, _, _, ok := memberEntry(info, victim.ID)
			return !ok && len(info.Members) == 3
		})
	}
	// The cluster goes on: writes through every remaining member, with the
	// removed member's process still running, then without it.
	for _, m := range rest {
		if code, b := do(t, "PUT", m.URL("/v1/kv/snap/after-remove/"+m.ID), []byte("r")); code != 200 {
			t.Fatalf("write via %s after removing %s: %d %s", m.ID, victim.ID, code, b)
		}
	}
	victim.Kill()
	for _, m := range rest {
		if code, b := do(t, "PUT", m.URL("/v1/kv/snap/after-kill/"+m.ID), []byte("r")); code != 200 {
			t.Fatalf("write via %s after killing removed %s: %d %s", m.ID, victim.ID, code, b)
		}
	}
	c.WaitCaughtUp(20 * time.Second)
	for _, m := range rest {
		kvs, _ := staleKVs(t, m, "/snap/after-")
		if len(kvs) != 2*len(rest) {
			t.Fatalf("%s holds %d of the %d writes made after the removal", m.ID, len(kvs), 2*len(rest))
		}
	}
}
