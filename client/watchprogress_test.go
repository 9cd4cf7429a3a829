package client

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/rosterhq/roster/internal/cluster"
	"github.com/rosterhq/roster/internal/testutil"
)

// TestWatchOfAQuietKeyResumesAfterItsProgress: a watch of a key that does
// not change resumed from its last event, so after a break on a member
// whose history (-watch-history) had moved on through changes of other
// keys it ended with ErrCompacted though nothing under its key changed:
// its consumer had to list again and start over. The watch asks for
// progress_notify: the member's heartbeats carry the revision the stream
// got to, and the watch resumes from there.
func TestWatchOfAQuietKeyResumesAfterItsProgress(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a rosterd process")
	}
	cl := cluster.Start(t, 1, "-tick", "100ms", "-watch-history", "50")
	c, tt := newTestClient(t, cl.Endpoints())
	ctx := ctxT(t, 60*time.Second)
	put := func(key string) int64 {
		t.Helper()
		r, err := c.Put(ctx, key, []byte("v"))
		if err != nil {
			t.Fatalf("put %s: %v", key, err)
		}
		return r.Revision
	}
	put("/unwatched") // so that the first watched revision is above 1
	first := put("/q/a")
	ch := c.Watch(ctx, "/q/", WithPrefix(), WithRev(first-1))
	expect := func(rev int64) {
		t.Helper()
		select {
		case resp, ok := <-ch:
			if !ok || resp.Err != nil {
				t.Fatalf("watch ended: %v (compacted: %v)", resp.Err, errors.Is(resp.Err, ErrCompacted))
			}
			if len(resp.Events) != 1 || resp.Events[0].Revision != rev {
				t.Fatalf("watch delivered %+v, want the change at %d", resp.Events, rev)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("no event at %d", rev)
		}
	}
	expect(first)

	tt.record.Store(true)
	var last int64
	for i := range 100 {
		last = put(fmt.Sprintf("/busy/%d", i))
	}
	// A heartbeat (every 5 s) carries the progress.
	testutil.Eventually(t, 20*time.Second, "a heartbeat with the progress", func() bool {
		return tt.streamedHas(fmt.Sprintf("id: %d\n\n", last))
	})
	tt.cut() // the stream breaks; the watch resumes once healed
	tt.heal()
	expect(put("/q/b"))
}
