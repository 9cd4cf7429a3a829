package client

import (
	"slices"
	"testing"
	"time"

	"github.com/rosterhq/roster/internal/cluster"
	"github.com/rosterhq/roster/internal/testutil"
)

// TestResolverKeepsItsViewWhileTheRegistryHasNoLeader: when the cluster
// loses its majority, the surviving member knows no leader and, since
// watches ask for one (require_leader), ends the resolver's stream and
// refuses it again. The registry still answers, but cannot change: the
// resolver must keep its view, as it did while its stream stayed open on
// such a member, rather than take the refusals for an outage and empty
// the view after its unreachable timeout.
func TestResolverKeepsItsViewWhileTheRegistryHasNoLeader(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three rosterd processes")
	}
	cl := cluster.Start(t, 3, "-tick", "100ms")
	ctx := ctxT(t, 90*time.Second)
	rc, _ := newTestClient(t, cl.Endpoints())
	vc, vt := newTestClient(t, cl.Endpoints())
	// Not closed at the end: no leader could revoke it; the client's Close
	// ends it.
	_, err := NewRegistrar(rc).Register(ctx, "/svc/frozen/a", []byte("addr-a"), 60)
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewResolver(ctx, vc, "/svc/frozen/", WithUnreachableTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	converge(t, r, 10*time.Second, "the registration", "/svc/frozen/a")

	leader := cl.Leader(30 * time.Second)
	followers := cl.Followers(leader)
	followers[0].Kill()
	leader.Kill() // the survivor knows no leader from now on
	t.Logf("killed %s and %s; %s survives without a leader", followers[0].ID, leader.ID, followers[1].ID)
	// The survivor ends the stream after two heartbeats without a leader
	// (5 s apart), then refuses each attempt: wait for several.
	watches := vt.count("GET /v1/watch/{key}")
	testutil.Eventually(t, 40*time.Second, "the watch refused again and again", func() bool {
		return vt.count("GET /v1/watch/{key}") >= watches+6
	})
	if testutil.Poll(3*time.Second, func() bool { return len(r.Instances()) == 0 }) {
		t.Fatal("the resolver emptied its view while the registry had no leader")
	}
	if got := keysOf(r.Instances()); !slices.Equal(got, []string{"/svc/frozen/a"}) {
		t.Fatalf("the resolver shows %v", got)
	}
}
