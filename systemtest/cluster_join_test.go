package systemtest

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/rosterhq/roster/internal/cluster"
	"github.com/rosterhq/roster/internal/testutil"
)

// memberEntry finds id in a cluster view.
func memberEntry(info cluster.Info, id string) (raftAddr, httpAddr string, voter, ok bool) {
	for _, m := range info.Members {
		if m.ID == id {
			return m.RaftAddr, m.HTTPAddr, m.Voter, true
		}
	}
	return "", "", false, false
}

// waitEntry waits until every running member lists id as a voter at
// raftAddr (and httpAddr, unless that is empty) among total members.
func waitEntry(t *testing.T, c *cluster.Cluster, id, raftAddr, httpAddr string, total int) {
	t.Helper()
	for _, m := range c.Running() {
		c.Eventually(20*time.Second, fmt.Sprintf("%s to list %s at %s", m.ID, id, raftAddr), func() bool {
			info, err := c.ClusterInfo(m)
			if err != nil || len(info.Members) != total {
				return false
			}
			ra, ha, voter, ok := memberEntry(info, id)
			return ok && voter && ra == raftAddr && (httpAddr == "" || ha == httpAddr)
		})
	}
}

// TestBootstrapFalseJoinAndRejoinWithNewAddress starts a member with
// -bootstrap=false: it serves /healthz but answers /readyz with 503 until
// an existing member adds it through the compatibility route POST /join
// (sent to a follower); then it is a ready voter holding the data. Then the
// same member re-joins under its ID from a new raft port with -join, first
// with an empty data directory, then keeping its data directory: each time
// its entry is replaced (no unreachable twin at the old address) and it
// serves again.
func TestBootstrapFalseJoinAndRejoinWithNewAddress(t *testing.T) {
	c := cluster.Start(t, 3, "-tick", "100ms")
	leader := c.Leader(10 * time.Second)
	follower := c.Followers(leader)[0]
	if code, b := do(t, "PUT", follower.URL("/v1/kv/join/before"), []byte("b")); code != 200 {
		t.Fatalf("put: %d %s", code, b)
	}

	n4 := c.Add()
	n4.Start("-bootstrap=false")
	c.Eventually(10*time.Second, "n4 to serve /healthz", func() bool {
		code, _, err := try("GET", n4.URL("/healthz"), nil)
		return err == nil && code == 200
	})
	// Not ready while it waits to be added, and it stays so (it must not
	// bootstrap a cluster of its own).
	testutil.Hold(t, 1500*time.Millisecond, "/readyz 503 while waiting to be added", func() error {
		code, b, err := try("GET", n4.URL("/readyz"), nil)
		if err != nil || code != 503 {
			return fmt.Errorf("%d %s %v", code, b, err)
		}
		if ec := errorCode(b); ec != "no_leader" && ec != "not_ready" {
			return fmt.Errorf("error code %q: %s", ec, b)
		}
		return nil
	})
	if info := clusterView(t, c, n4); info.Leader != nil {
		t.Fatalf("a member waiting to be added reports a leader: %+v", info)
	}

	body := fmt.Sprintf(`{"id":%q,"addr":%q}`, n4.ID, n4.Raft)
	if code, b := do(t, "POST", follower.URL("/join"), []byte(body)); code != 200 {
		t.Fatalf("POST /join via follower %s: %d %s", follower.ID, code, b)
	}
	c.WaitReady(30*time.Second, n4)
	c.WaitVoters(20*time.Second, 4)
	waitEntry(t, c, n4.ID, n4.Raft, "", 4) // POST /join gave no HTTP address
	c.WaitCaughtUp(20*time.Second, n4)
	if kvs, _ := staleKVs(t, n4, "/join/"); kvs["/join/before"].Value != "b" {
		t.Fatalf("n4 after joining holds %v", kvs)
	}
	// It serves: a write through it, a linearizable read of it elsewhere.
	if code, b := do(t, "PUT", n4.URL("/v1/kv/join/n4"), []byte("4")); code != 200 {
		t.Fatalf("write via n4: %d %s", code, b)
	}
	var kv kvJSON
	code, b := do(t, "GET", follower.URL("/v1/kv/join/n4"), nil)
	mustJSON(t, code, b, &kv)
	if kv.Value != "4" {
		t.Fatalf("read via %s of a write via n4: %+v", follower.ID, kv)
	}

	// Re-join the same ID from a new raft port, through a follower.
	for _, keepData := range []bool{false, true} {
		what := "an empty data directory"
		if keepData {
			what = "its data directory"
		}
		via := c.Followers(c.Leader(10 * time.Second))[0]
		if via == n4 {
			via = c.Followers(c.Leader(10 * time.Second))[1]
		}
		oldRaft := n4.Raft
		n4.Kill()
		if !keepData {
			if err := os.RemoveAll(n4.Dir); err != nil {
				t.Fatal(err)
			}
		}
		key := fmt.Sprintf("/join/while-down-%v", keepData)
		if code, b := do(t, "PUT", via.URL("/v1/kv"+key), []byte("x")); code != 200 {
			t.Fatalf("write while n4 is down: %d %s", code, b)
		}
		n4.Raft = cluster.FreePort(t)
		t.Logf("restarting n4 with %s on raft %s (was %s), -join %s", what, n4.Raft, oldRaft, via.HTTP)
		n4.Restart("-join", via.HTTP)
		c.Eventually(20*time.Second, "n4 to be ready again after re-joining with "+what+" from a new raft address", func() bool {
			return c.Ready(n4)
		})
		// The join sent by -join carries the HTTP address as well.
		waitEntry(t, c, n4.ID, n4.Raft, n4.HTTP, 4)
		c.WaitVoters(10*time.Second, 4)
		c.WaitCaughtUp(20*time.Second, n4)
		if kvs, _ := staleKVs(t, n4, key); kvs[key].Value != "x" {
			t.Fatalf("n4 back with %s lacks the write made while it was down: %v", what, kvs)
		}
		for _, m := range c.Running() {
			info := clusterView(t, c, m)
			for _, e := range info.Members {
				if e.RaftAddr == oldRaft {
					t.Fatalf("%s still lists the old address %s: %+v", m.ID, oldRaft, info.Members)
				}
				if e.ID == n4.ID && e.HTTPAddr != n4.HTTP {
					t.Fatalf("%s lists n4 with HTTP address %q, want %q (sent by -join)", m.ID, e.HTTPAddr, n4.HTTP)
				}
			}
		}
		// It serves again: a write through it.
		if code, b := do(t, "PUT", n4.URL("/v1/kv/join/via-n4"), []byte(what)); code != 200 {
			t.Fatalf("write via n4 after re-joining with %s: %d %s", what, code, b)
		}
	}
}
