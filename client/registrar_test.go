package client

import (
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rosterhq/roster/internal/cluster"
	"github.com/rosterhq/roster/internal/testutil"
)

// nextEvent receives the next registration event within d.
func nextEvent(t *testing.T, ch <-chan RegistrationEvent, d time.Duration) RegistrationEvent {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("registration events closed")
		}
		return ev
	case <-time.After(d):
		t.Fatalf("no registration event within %v", d)
	}
	panic("unreachable")
}

// testRegistrarReregisters: a registration whose client is cut off for
// longer than the TTL loses its lease (the server expires it and the key
// goes), then comes back on its own — same key and value, new lease — once
// the network heals. Close removes the key at once. (The cluster runs with
// -tick 100ms; the TTL is 2 s.)
func testRegistrarReregisters(t *testing.T, cl *cluster.Cluster) {
	c, tt := newTestClient(t, cl.Endpoints())
	observer, _ := newTestClient(t, cl.Endpoints())
	ctx := ctxT(t, 60*time.Second)

	var mu sync.Mutex
	var seen []RegistrationEventType
	r := NewRegistrar(c, WithRetryInterval(200*time.Millisecond), WithOnChange(func(ev RegistrationEvent) {
		mu.Lock()
		seen = append(seen, ev.Type)
		mu.Unlock()
	}))
	reg, err := r.Register(ctx, "/svc/api/node-1", []byte(`{"addr":"10.0.0.1:80"}`), 2)
	if err != nil {
		t.Fatalf("Register: %v", err)
	}
	ev := nextEvent(t, reg.Events(), 5*time.Second)
	first := reg.Lease()
	if ev.Type != Registered || ev.Lease != first || ev.Key != "/svc/api/node-1" || ev.Revision <= 0 {
		t.Fatalf("first event = %+v", ev)
	}
	g, err := observer.Get(ctx, "/svc/api/node-1")
	if err != nil || g.KVs[0].Lease != first {
		t.Fatalf("registered key = %+v, %v", g, err)
	}
	// Stays registered well past its TTL: four renewals at TTL/3 span
	// more than the TTL.
	rev0 := g.KVs[0].ModRevision
	testutil.Eventually(t, 10*time.Second, "four renewals", func() bool { return tt.count("POST /v1/leases/keepalive") >= 4 })
	if g, err := observer.Get(ctx, "/svc/api/node-1"); err != nil || g.KVs[0].ModRevision != rev0 {
		t.Fatalf("after 3 s (TTL 2 s) the key is %+v, %v", g, err)
	}

	// Update changes the value in place, on the same lease.
	if _, err := reg.Update(ctx, []byte(`{"addr":"10.0.0.2:80"}`)); err != nil {
		t.Fatalf("Update: %v", err)
	}

	// Cut off: the lease expires on the server, the key goes.
	tt.cut()
	ev = nextEvent(t, reg.Events(), 10*time.Second)
	if ev.Type != Lost || ev.Lease != first {
		t.Fatalf("event after the cut = %+v, want Lost of %v", ev, first)
	}
	testutil.Eventually(t, 15*time.Second, "the server to expire the lease and its key", func() bool {
		_, err := observer.Get(ctx, "/svc/api/node-1")
		return errors.Is(err, ErrKeyNotFound)
	})
	tt.heal()
	ev = nextEvent(t, reg.Events(), 15*time.Second)
	if ev.Type != Reregistered || ev.Lease == first || ev.Lease != reg.Lease() {
		t.Fatalf("event after healing = %+v, want Reregistered with a new lease", ev)
	}
	g, err = observer.Get(ctx, "/svc/api/node-1")
	if err != nil || g.KVs[0].Lease != reg.Lease() || string(g.KVs[0].Value) != `{"addr":"10.0.0.2:80"}` {
		t.Fatalf("re-registered key = %+v, %v; want the updated value on lease %v", g, err, reg.Lease())
	}

	// A lease revoked by someone else is noticed and replaced too.
	second := reg.Lease()
	if _, err := observer.Revoke(ctx, second); err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, reg.Events(), 10*time.Second); ev.Type != Lost || ev.Lease != second {
		t.Fatalf("after a revoke: %+v, want Lost", ev)
	}
	if ev := nextEvent(t, reg.Events(), 10*time.Second); ev.Type != Reregistered {
		t.Fatalf("after a revoke: %+v, want Reregistered", ev)
	}

	// Close revokes: the key is gone when Close returns.
	if err := reg.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := observer.Get(ctx, "/svc/api/node-1"); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("after Close the key is still there: %v", err)
	}
	if err := reg.Close(ctx); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	waitClosed(t, reg.Events(), time.Second, "Events after Close")
	if _, err := reg.Update(ctx, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Update after Close: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []RegistrationEventType{Registered, Lost, Reregistered, Lost, Reregistered}
	if len(seen) != len(want) {
		t.Fatalf("OnChange saw %v, want %v", seen, want)
	}
	for i := range want {
		if seen[i] != want[i] {
			t.Fatalf("OnChange saw %v, want %v", seen, want)
		}
	}
}

// testRegistrationCloseFromHandler: the OnChange handler runs on the
// registration's own goroutine, and a handler that gives up on a lost
// registration by closing it must not wait for itself: Close returns,
// revokes nothing it should not, ends Events, and the registration does
// not come back.
func testRegistrationCloseFromHandler(t *testing.T, cl *cluster.Cluster) {
	c, _ := newTestClient(t, cl.Endpoints())
	observer, _ := newTestClient(t, cl.Endpoints())
	ctx := ctxT(t, 60*time.Second)

	var reg atomic.Pointer[Registration]
	closed := make(chan error, 1)
	var mu sync.Mutex
	var seen []RegistrationEventType
	r := NewRegistrar(c, WithRetryInterval(100*time.Millisecond), WithOnChange(func(ev RegistrationEvent) {
		mu.Lock()
		seen = append(seen, ev.Type)
		mu.Unlock()
		if ev.Type == Lost {
			closed <- reg.Load().Close(ctx)
		}
	}))
	g, err := r.Register(ctx, "/svc/close-in-handler/n1", []byte("v"), 5)
	if err != nil {
		t.Fatalf("Register: %v", err)
	}
	reg.Store(g)
	if _, err := observer.Revoke(ctx, g.Lease()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close from the handler: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Close called from the OnChange handler did not return")
	}
	waitClosed(t, g.Events(), 10*time.Second, "Events after Close from the handler")
	if err := g.Close(ctx); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := observer.Get(ctx, "/svc/close-in-handler/n1"); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("after Close the key is there: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 || seen[0] != Registered || seen[1] != Lost {
		t.Fatalf("OnChange saw %v, want [Registered Lost]: a closed registration came back", seen)
	}
}

// testRegistrationCloseRacesTheHandler: a Close made from another
// goroutine (the program shutting down) waits for the registration's
// goroutine; if that goroutine then runs the OnChange handler and the
// handler closes the registration too (giving up after Lost), the
// handler's Close waited for the first one, which waited for the
// handler: both hung for ever. The test holds evMu to stop the
// registration's goroutine in emit, just before the handler, until the
// other Close is waiting for it.
func testRegistrationCloseRacesTheHandler(t *testing.T, cl *cluster.Cluster) {
	c, _ := newTestClient(t, cl.Endpoints())
	observer, _ := newTestClient(t, cl.Endpoints())
	ctx := ctxT(t, 60*time.Second)

	var reg atomic.Pointer[Registration]
	fromHandler := make(chan error, 1)
	r := NewRegistrar(c, WithRetryInterval(100*time.Millisecond), WithOnChange(func(ev RegistrationEvent) {
		if ev.Type == Lost {
			fromHandler <- reg.Load().Close(ctx)
		}
	}))
	g, err := r.Register(ctx, "/svc/close-race/n1", []byte("v"), 5)
	if err != nil {
		t.Fatalf("Register: %v", err)
	}
	reg.Store(g)
	g.evMu.Lock()
	locked := true
	defer func() {
		if locked {
			g.evMu.Unlock()
		}
	}()
	if _, err := observer.Revoke(ctx, g.Lease()); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Update(ctx, []byte("v2")); !errors.Is(err, ErrLeaseNotFound) {
		t.Fatalf("Update on a revoked lease: %v, want ErrLeaseNotFound", err)
	}
	testutil.Eventually(t, 10*time.Second, "the registration's goroutine about to report Lost", func() bool {
		return goroutineIn("(*Registration).emit(", "")
	})
	fromOther := make(chan error, 1)
	go func() { fromOther <- g.Close(ctx) }()
	testutil.Eventually(t, 10*time.Second, "the other Close waiting for the registration's goroutine", func() bool {
		return goroutineIn("(*Registration).Close", "[chan receive")
	})
	g.evMu.Unlock()
	locked = false
	for what, ch := range map[string]chan error{"the handler": fromHandler, "the other goroutine": fromOther} {
		select {
		case err := <-ch:
			if err != nil {
				t.Fatalf("Close from %s: %v", what, err)
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("Close from %s did not return: the two Closes wait for each other", what)
		}
	}
	waitClosed(t, g.Events(), 10*time.Second, "Events after both Closes")
	if _, err := observer.Get(ctx, "/svc/close-race/n1"); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("after Close the key is there: %v", err)
	}
}

// goroutineIn reports whether a goroutine is running fn, in state (its
// header's "[state"; "" for any).
func goroutineIn(fn, state string) bool {
	for _, g := range stacks() {
		if strings.Contains(g, fn) && strings.Contains(g, "roster/client.") &&
			(state == "" || strings.Contains(strings.SplitN(g, "\n", 2)[0], state)) {
			return true
		}
	}
	return false
}
