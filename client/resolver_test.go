package client

import (
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rosterhq/roster/internal/cluster"
	"github.com/rosterhq/roster/internal/testutil"
)

// converge waits until r's view holds exactly keys, and Updates agrees.
func converge(t *testing.T, r *Resolver, d time.Duration, what string, keys ...string) {
	t.Helper()
	if keys == nil {
		keys = []string{}
	}
	var got []string
	if !testutil.Poll(d, func() bool { got = keysOf(r.Instances()); return slices.Equal(got, keys) }) {
		t.Fatalf("%s: resolver shows %v after %v, want %v", what, got, d, keys)
	}
	// The latest update delivered is the same set (latest wins).
	var last []KV
	for done := false; !done; {
		select {
		case u := <-r.Updates():
			last = u
		default:
			done = true
		}
	}
	if last != nil && !slices.Equal(keysOf(last), keys) {
		t.Fatalf("%s: the latest update is %v, want %v", what, keysOf(last), keys)
	}
}

// TestResolver follows a prefix through registrations, an expiry, a
// revocation, the death of the member its watch is on, and a compaction
// (the resolver is cut off while more changes than the members' watch
// history holds go by); and checks that without WithKeepLastKnown an
// outage empties the view while with it the view stays.
func TestResolver(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three rosterd processes")
	}
	cl := cluster.Start(t, 3, "-tick", "100ms", "-watch-history", "30")
	skipIfNoWatchRoute(t, cl.Endpoints()[0])
	ctx := ctxT(t, 120*time.Second)
	rc, _ := newTestClient(t, cl.Endpoints())  // registers
	vc, vt := newTestClient(t, cl.Endpoints()) // resolves
	reg := NewRegistrar(rc)

	r, err := NewResolver(ctx, vc, "/svc/api/")
	if err != nil {
		t.Fatalf("NewResolver: %v", err)
	}
	defer r.Close()
	select {
	case u := <-r.Updates():
		if len(u) != 0 {
			t.Fatalf("first update = %v, want the empty initial set", keysOf(u))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no initial update")
	}

	// Registrations appear.
	regs := map[string]*Registration{}
	for _, n := range []string{"a", "b", "c"} {
		g, err := reg.Register(ctx, "/svc/api/"+n, []byte("addr-"+n), 5)
		if err != nil {
			t.Fatal(err)
		}
		regs[n] = g
	}
	rc.Put(ctx, "/svc/apix", []byte("outside the prefix"))
	converge(t, r, 10*time.Second, "three registrations", "/svc/api/a", "/svc/api/b", "/svc/api/c")
	if v := r.Instances()[1]; string(v.Value) != "addr-b" || v.Lease != regs["b"].Lease() {
		t.Fatalf("instance b = %+v", v)
	}

	// An instance that stops renewing expires and vanishes.
	l, err := rc.Grant(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	rc.Put(ctx, "/svc/api/dying", nil, WithLease(l.ID))
	converge(t, r, 10*time.Second, "the short-lived one appears", "/svc/api/a", "/svc/api/b", "/svc/api/c", "/svc/api/dying")
	converge(t, r, 15*time.Second, "its lease expires", "/svc/api/a", "/svc/api/b", "/svc/api/c")

	// A registration that closes vanishes at once (revoked, not expired).
	if err := regs["c"].Close(ctx); err != nil {
		t.Fatal(err)
	}
	converge(t, r, 3*time.Second, "a closed registration", "/svc/api/a", "/svc/api/b")

	// Kill the member the resolver's watch is on.
	watched := memberByHost(cl, vt.last("GET /v1/watch/{key}"))
	if watched == nil {
		t.Fatalf("the watch went to no member: %q", vt.last("GET /v1/watch/{key}"))
	}
	watched.Kill()
	t.Logf("killed %s, which served the resolver's watch", watched.ID)
	g, err := reg.Register(ctx, "/svc/api/d", []byte("addr-d"), 5)
	if err != nil {
		t.Fatal(err)
	}
	regs["d"] = g
	converge(t, r, 20*time.Second, "a registration after the watched member died", "/svc/api/a", "/svc/api/b", "/svc/api/d")

	// Compaction: cut the resolver off, let more changes than the watch
	// history (30) go by, heal. The watch's resume point is gone: the
	// resolver lists again and carries on.
	lists := vt.count("GET /v1/kv/{key}")
	vt.cut()
	for i := range 40 {
		if _, err := rc.Put(ctx, fmt.Sprintf("/churn/%d", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	regs["b"].Close(ctx)
	g, err = reg.Register(ctx, "/svc/api/e", []byte("addr-e"), 5)
	if err != nil {
		t.Fatal(err)
	}
	regs["e"] = g
	vt.heal()
	converge(t, r, 20*time.Second, "after a compaction", "/svc/api/a", "/svc/api/d", "/svc/api/e")
	if vt.count("GET /v1/kv/{key}") == lists {
		t.Fatal("the resolver caught up without listing again: was the watch history not compacted?")
	}

	// Outage: without WithKeepLastKnown the view empties once the registry
	// has been unreachable for the timeout; with it, the view stays. Both
	// recover when the registry is back.
	oc, ot := newTestClient(t, cl.Endpoints())
	var reported atomic.Int32
	forget, err := NewResolver(ctx, oc, "/svc/api/", WithUnreachableTimeout(time.Second),
		WithErrorHandler(func(err error) { reported.Add(1); t.Logf("reported: %v", err) }))
	if err != nil {
		t.Fatal(err)
	}
	defer forget.Close()
	keep, err := NewResolver(ctx, oc, "/svc/api/", WithUnreachableTimeout(time.Second), WithKeepLastKnown(true))
	if err != nil {
		t.Fatal(err)
	}
	defer keep.Close()
	all := []string{"/svc/api/a", "/svc/api/d", "/svc/api/e"}
	converge(t, forget, 5*time.Second, "forgetful resolver", all...)
	converge(t, keep, 5*time.Second, "keeping resolver", all...)
	ot.cut()
	converge(t, forget, 10*time.Second, "forgetful resolver in an outage")
	testutil.Eventually(t, 10*time.Second, "the outage reported to the error handler", func() bool { return reported.Load() > 0 })
	if got := keysOf(keep.Instances()); !slices.Equal(got, all) {
		t.Fatalf("keep-last-known resolver in an outage shows %v, want %v", got, all)
	}
	ot.heal()
	converge(t, forget, 15*time.Second, "forgetful resolver after the outage", all...)
	converge(t, keep, 15*time.Second, "keeping resolver after the outage", all...)

	// Close ends Updates.
	r.Close()
	r.Close()
	for range r.Updates() {
	}
	for _, g := range regs {
		g.Close(ctx)
	}
}
