package client

import (
	"testing"
	"time"

	"github.com/rosterhq/roster/internal/cluster"
	"github.com/rosterhq/roster/internal/testutil"
)

// TestResolverLeavesAMemberCutOff follows a prefix with a Resolver whose
// watch is on a member that is then cut off from the majority (a
// follower, then the leader), while the client still reaches the others.
// The member cut off can no longer learn of changes, so the resolver must
// not keep serving its view from there: it must move to a member of the
// majority and show what was registered and deregistered meanwhile.
func TestResolverLeavesAMemberCutOff(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three rosterd processes")
	}
	if err := cluster.NetAvailable(); err != nil {
		t.Skip(err)
	}
	cl := cluster.StartNet(t, 3, "-tick", "100ms")
	leader := cl.Leader(30 * time.Second)
	for _, role := range []string{"follower", "leader"} {
		leader = resolveThroughACut(t, cl, leader, role)
	}
}

func resolveThroughACut(t *testing.T, cl *cluster.Cluster, leader *cluster.Member, role string) *cluster.Member {
	t.Helper()
	ctx := ctxT(t, 120*time.Second)
	prefix := "/svc/cut-" + role + "/"
	victim := leader
	if role == "follower" {
		victim = cl.Followers(leader)[0]
	}
	var rest []string
	for _, m := range cl.Running() {
		if m != victim {
			rest = append(rest, m.URL(""))
		}
	}
	vc, vt := newTestClient(t, append([]string{victim.URL("")}, rest...))
	wc, _ := newTestClient(t, rest)
	if _, err := wc.Put(ctx, prefix+"a", []byte("a")); err != nil {
		t.Fatal(err)
	}
	// The resolver's list and then its watch go to the victim first.
	vc.aimAt(victim.HTTP)
	vc.rr.Store(vc.rr.Load() + uint64(len(vc.endpoints)-1))
	r, err := NewResolver(ctx, vc, prefix)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	converge(t, r, 10*time.Second, "before the cut", prefix+"a")
	testutil.Eventually(t, 10*time.Second, "the resolver's watch", func() bool {
		return vt.last("GET /v1/watch/{key}") != ""
	})
	if h := vt.last("GET /v1/watch/{key}"); h != victim.HTTP {
		t.Fatalf("the resolver watches on %s, not the victim %s", h, victim.HTTP)
	}

	t.Logf("cutting off %s, the %s", victim.ID, role)
	cl.Net.Isolate(cluster.Cut, victim)
	if _, err := wc.Put(ctx, prefix+"b", []byte("b")); err != nil {
		t.Fatal(err)
	}
	if _, err := wc.Delete(ctx, prefix+"a"); err != nil {
		t.Fatal(err)
	}
	converge(t, r, 40*time.Second, "after the cut", prefix+"b")
	if h := vt.last("GET /v1/watch/{key}"); h == victim.HTTP {
		t.Fatalf("the resolver still watches on the member cut off")
	}
	cl.Net.Heal()
	cl.WaitReady(60*time.Second, cl.Running()...)
	return cl.Leader(30 * time.Second)
}
