package client

import (
	"fmt"
	"testing"
	"time"

	"github.com/rosterhq/roster/internal/cluster"
)

// TestWatchLeavesAMemberCutOff follows a watch on a member that is then
// cut off from the others (a follower, then a leader: the cluster goes on
// under a new one). Such a member still sends heartbeats, so the stream
// looked alive while it delivered nothing of what the cluster committed
// elsewhere, for as long as the partition lasted. The watch asks for a
// leader (require_leader): the member ends the stream once it has had none
// for a heartbeat interval, and the watch resumes on a member of the
// majority from its last revision, every change exactly once.
func TestWatchLeavesAMemberCutOff(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three rosterd processes")
	}
	if err := cluster.NetAvailable(); err != nil {
		t.Skip(err)
	}
	cl := cluster.StartNet(t, 3, "-tick", "100ms")
	leader := cl.Leader(30 * time.Second)
	for _, role := range []string{"follower", "leader"} {
		victim := leader
		if role == "follower" {
			victim = cl.Followers(leader)[0]
		}
		t.Logf("cutting off %s, the %s", victim.ID, role)
		leader = watchThroughACut(t, cl, victim, "/cut/"+role+"/")
	}
}

// watchThroughACut watches prefix on victim, cuts victim off, writes
// through the others and checks that the watch delivers those writes,
// exactly once and in order. It heals the network and returns the leader.
func watchThroughACut(t *testing.T, cl *cluster.Cluster, victim *cluster.Member, prefix string) *cluster.Member {
	t.Helper()
	ctx := ctxT(t, 90*time.Second)
	var rest []string
	for _, m := range cl.Running() {
		if m != victim {
			rest = append(rest, m.URL(""))
		}
	}
	// The watch's first request goes to the first endpoint: the victim.
	wc, wtt := newTestClient(t, append([]string{victim.URL("")}, rest...))
	writer, _ := newTestClient(t, rest)
	put := func(v string) int64 {
		t.Helper()
		r, err := writer.Put(ctx, prefix+"k", []byte(v))
		if err != nil {
			t.Fatalf("put %s: %v", v, err)
		}
		return r.Revision
	}
	if _, err := writer.Put(ctx, "/cut/unwatched", nil); err != nil {
		t.Fatal(err) // so that the first watched revision is above 1
	}
	var want []int64
	want = append(want, put("before"))
	ch := wc.Watch(ctx, prefix, WithPrefix(), WithRev(want[0]-1))
	var got []int64
	next := func(d time.Duration) bool {
		t.Helper()
		select {
		case resp, ok := <-ch:
			if !ok || resp.Err != nil {
				t.Fatalf("watch ended: %v", resp.Err)
			}
			for _, ev := range resp.Events {
				got = append(got, ev.Revision)
			}
			return true
		case <-time.After(d):
			return false
		}
	}
	for len(got) < 1 {
		if !next(30 * time.Second) {
			t.Fatal("no first event")
		}
	}
	if h := wtt.last("GET /v1/watch/{key}"); h != victim.HTTP {
		t.Fatalf("the watch went to %s, not the victim %s", h, victim.HTTP)
	}

	cl.Net.Isolate(cluster.Cut, victim)
	for i := range 3 {
		want = append(want, put(fmt.Sprint(i)))
	}
	deadline := time.Now().Add(40 * time.Second)
	for len(got) < len(want) && time.Now().Before(deadline) {
		next(time.Until(deadline))
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("watch delivered revisions %v, want %v (last stream on %s)", got, want, wtt.last("GET /v1/watch/{key}"))
	}
	if h := wtt.last("GET /v1/watch/{key}"); h == victim.HTTP {
		t.Fatalf("the watch resumed on the member cut off")
	}
	cl.Net.Heal()
	cl.WaitReady(60*time.Second, cl.Running()...)
	return cl.Leader(30 * time.Second)
}
