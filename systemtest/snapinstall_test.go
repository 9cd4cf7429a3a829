package systemtest

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rosterhq/roster/internal/cluster"
	"github.com/rosterhq/roster/internal/testutil"
)

// TestSnapshotInstallWithLargeValues: a follower that fell behind a
// compacted log installs the leader's snapshot when the leader's state
// file has freed and partly reused runs of pages (values of several
// pages, overwritten and deleted). The follower's check of the received
// file once called such a file torn, and the leader resent it forever.
func TestSnapshotInstallWithLargeValues(t *testing.T) {
	if testing.Short() {
		t.Skip("snapshot install: slow; skipped with -short")
	}
	c := cluster.Start(t, 3, "-snapshot-threshold", "64", "-trailing-logs", "16")
	leader := c.Leader(10 * time.Second)
	f := c.Followers(leader)[0]
	put := func(key string, size int) {
		t.Helper()
		if code, b := do(t, "PUT", leader.URL("/v1/kv"+key), bytes.Repeat([]byte("v"), size)); code != 200 {
			t.Fatalf("put %s: %d %s", key, code, b)
		}
	}
	for i := 0; i < 20; i++ {
		put(fmt.Sprintf("/big/%02d", i), 3000+i*700)
	}
	c.WaitCaughtUp(10*time.Second, f)
	catchUpBySnapshot(t, c, leader, f, func() {
		for round := 0; round < 6; round++ {
			for i := 0; i < 20; i++ {
				if (i+round)%5 == 0 {
					if code, b := do(t, "DELETE", leader.URL(fmt.Sprintf("/v1/kv/big/%02d", i)), nil); code != 200 {
						t.Fatalf("delete: %d %s", code, b)
					}
					continue
				}
				put(fmt.Sprintf("/big/%02d", i), 100+((i*7+round*3)%20)*900)
			}
		}
	})
	for i := 0; i < 20; i++ {
		key := fmt.Sprintf("/v1/kv/big/%02d?stale=true", i)
		lc, lb := do(t, "GET", leader.URL(key), nil)
		fc, fb := do(t, "GET", f.URL(key), nil)
		if lc != fc || !bytes.Equal(lb, fb) {
			t.Fatalf("key %d: leader %d (%d bytes), follower %s %d (%d bytes)", i, lc, len(lb), f.ID, fc, len(fb))
		}
	}
}

// catchUpBySnapshot freezes follower f, runs writes (on the leader), has
// the leader take a snapshot, thaws f and waits until f has caught up
// through a snapshot install; it fails the test if f caught up from the
// log instead, since the caller would then prove nothing.
func catchUpBySnapshot(t *testing.T, c *cluster.Cluster, leader, f *cluster.Member, writes func()) {
	t.Helper()
	f.Freeze()
	writes()
	if code, b := do(t, "POST", leader.URL("/v1/cluster/snapshot"), nil); code != 200 {
		t.Fatalf("snapshot: %d %s", code, b)
	}
	f.Thaw()
	c.WaitCaughtUp(30*time.Second, f)
	// raft logs the install just after the state it restored is applied
	// (and WaitCaughtUp can see it), so the line may still be on its way.
	installed := func() bool { return strings.Contains(f.Logs(), "Installed remote snapshot") }
	if !testutil.Poll(10*time.Second, installed) {
		t.Fatalf("follower %s caught up without a snapshot install; the test proves nothing", f.ID)
	}
}
