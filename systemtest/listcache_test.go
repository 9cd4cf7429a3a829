package systemtest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/rosterhq/roster/internal/cluster"
)

// TestKeptListingAfterSnapshotInstall: a follower that kept a listing,
// then fell behind a compacted log and caught up by snapshot install,
// answers the listing of its new state, not the kept one. The catch-up
// moves the revision by only 2 (the other entries are lease grants), so a
// kept answer is within the range the cache checks against the event
// history; the history begins again at the snapshot, and the check must
// treat that as "cannot tell", never as "nothing changed".
func TestKeptListingAfterSnapshotInstall(t *testing.T) {
	if testing.Short() {
		t.Skip("snapshot install: slow; skipped with -short")
	}
	c := cluster.Start(t, 3, "-snapshot-threshold", "128", "-trailing-logs", "64")
	leader := c.Leader(10 * time.Second)
	f := c.Followers(leader)[0]
	put := func(key, value string) {
		t.Helper()
		if code, b := do(t, "PUT", leader.URL("/v1/kv"+key), []byte(value)); code != 200 {
			t.Fatalf("put %s: %d %s", key, code, b)
		}
	}
	keys := func(m *cluster.Member) ([]string, int64) {
		t.Helper()
		var list listJSON
		code, b := do(t, "GET", m.URL("/v1/kv/lc/a/?prefix=true&stale=true"), nil)
		mustJSON(t, code, b, &list)
		var out []string
		for _, kv := range list.KVs {
			out = append(out, kv.Key)
		}
		return out, list.Revision
	}
	for i := 1; i <= 3; i++ {
		put(fmt.Sprintf("/lc/a/%d", i), "v")
	}
	put("/lc/b/1", "elsewhere")
	c.WaitCaughtUp(10*time.Second, f)
	before := []string{"/lc/a/1", "/lc/a/2", "/lc/a/3"}
	for range 2 { // the second answer comes from the follower's cache
		if got, _ := keys(f); !slices.Equal(got, before) {
			t.Fatalf("follower %s lists %v, want %v", f.ID, got, before)
		}
	}

	catchUpBySnapshot(t, c, leader, f, func() {
		put("/lc/a/4", "v")
		if code, b := do(t, "DELETE", leader.URL("/v1/kv/lc/a/1"), nil); code != 200 {
			t.Fatalf("delete: %d %s", code, b)
		}
		for i := range 200 { // log entries that move no revision
			grant(t, leader.URL(""), 600, fmt.Sprintf("/lc/lease-%d", i))
		}
	})
	want, wantRev := keys(leader)
	if !slices.Equal(want, []string{"/lc/a/2", "/lc/a/3", "/lc/a/4"}) {
		t.Fatalf("leader lists %v", want)
	}
	got, gotRev := keys(f)
	if !slices.Equal(got, want) || gotRev != wantRev {
		t.Fatalf("after its snapshot install follower %s lists %v at revision %d; the leader %v at %d", f.ID, got, gotRev, want, wantRev)
	}
}
