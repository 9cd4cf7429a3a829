package registry_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rosterhq/roster/fsm"
	"github.com/rosterhq/roster/internal/logging/logtest"
	"github.com/rosterhq/roster/internal/testutil"
	"github.com/rosterhq/roster/lease"
	"github.com/rosterhq/roster/registry"
)

// openNode starts a one-member node in dir and waits until it is ready.
func openNode(t *testing.T, dir string, tick time.Duration) *registry.Node {
	t.Helper()
	n, err := registry.Open(registry.Config{
		ID: "n1", DataDir: dir, RaftAddr: "127.0.0.1:0", Bootstrap: true, NodeNumber: -1,
		Tick: tick, HTTPAdvertise: "127.0.0.1:1",
	}, logtest.ForTest(t), prometheus.NewRegistry())
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { n.Close() })
	testutil.Eventually(t, 10*time.Second, "node ready", func() bool { return n.Ready() == nil })
	return n
}

func TestPutReadGrantExpire(t *testing.T) {
	n := openNode(t, t.TempDir(), 20*time.Millisecond)
	ctx := context.Background()
	// The lease's deadline is set when the grant applies, which is after
	// this: measuring from here can only make expiry look later.
	granted := time.Now()
	l, err := n.Grant(ctx, 2, "/svc/a", 0)
	if err != nil || l.ID <= 0 || l.TTL != 2 || l.Remaining != 2 {
		t.Fatalf("grant: %+v %v", l, err)
	}
	res, err := n.Put(ctx, fsm.Put{Key: "/svc/a/ep", Value: []byte("x"), Lease: l.ID})
	if err != nil || res.Revision != 1 {
		t.Fatalf("put: %+v %v", res, err)
	}
	st, err := n.Read(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	kv, ok := st.Get("/svc/a/ep")
	if !ok || string(kv.Value) != "x" || kv.Lease != l.ID {
		t.Fatalf("get: %+v %v", kv, ok)
	}
	testutil.Eventually(t, 5*time.Second, "expiry", func() bool {
		_, ok := n.FSM().State().Get("/svc/a/ep")
		return !ok
	})
	if el := time.Since(granted); el < 2*time.Second-50*time.Millisecond {
		t.Fatalf("lease expired after %v, before its ttl", el)
	}
	if _, err := n.Put(ctx, fsm.Put{Key: "/x", Lease: l.ID}); !errors.Is(err, fsm.ErrLeaseNotFound) {
		t.Fatalf("put on expired lease: %v", err)
	}
}

func TestKeepAliveCoalescesAndRestart(t *testing.T) {
	dir := t.TempDir()
	n := openNode(t, dir, 50*time.Millisecond)
	ctx := context.Background()
	var ids []int64
	for i := 0; i < 50; i++ {
		l, err := n.Grant(ctx, 30, fmt.Sprintf("/l/%d", i), 0)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, l.ID)
		if _, err := n.Put(ctx, fsm.Put{Key: fmt.Sprintf("/k/%02d", i), Value: []byte("v"), Lease: l.ID}); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, nf, err := n.KeepAlive(ctx, []int64{ids[i], ids[i], 12345})
			if err != nil || len(r) != 1 || r[0].ID != ids[i] || len(nf) != 1 || nf[0] != 12345 {
				t.Errorf("keepalive %d: %+v %v %v", i, r, nf, err)
			}
		}()
	}
	wg.Wait()
	rev := n.FSM().State().Revision()
	clock := n.FSM().State().Clock()
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	n2 := openNode(t, dir, 50*time.Millisecond)
	st := n2.FSM().State()
	if st.Revision() != rev || st.LeaseCount() != 50 || st.KeyCount() != 50 || st.Clock() < clock {
		t.Fatalf("after restart: rev %d/%d leases %d keys %d clock %d/%d", st.Revision(), rev, st.LeaseCount(), st.KeyCount(), st.Clock(), clock)
	}
	l, ok := st.Lease(ids[0])
	if !ok || l.Remaining > 30 || l.Remaining < 25 {
		t.Fatalf("lease after restart: %+v", l)
	}
}

// A lease ID is never issued twice, even when the wall clock steps back:
// here IDs minted an hour "in the future" (as before a step back of an
// hour) are in the state, and the leader's new IDs stay above them, also
// after a restart, when the ID generator starts again from the clock.
func TestLeaseIDsStayAboveStateAfterClockStepBack(t *testing.T) {
	dir := t.TempDir()
	n := openNode(t, dir, 50*time.Millisecond)
	ctx := context.Background()
	first, err := n.Grant(ctx, 10, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	ahead := first.ID + int64(time.Hour/time.Millisecond)<<22
	if _, err := n.Grant(ctx, 10, "", ahead); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Revoke(ctx, ahead); err != nil {
		t.Fatal(err)
	}
	check := func(n *registry.Node) {
		t.Helper()
		prev := ahead
		for i := 0; i < 20; i++ {
			l, err := n.Grant(ctx, 10, "", 0)
			if err != nil {
				t.Fatal(err)
			}
			if l.ID <= prev {
				t.Fatalf("lease ID %d issued after %d", l.ID, prev)
			}
			prev = l.ID
		}
		ahead = prev
	}
	check(n)
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	check(openNode(t, dir, 50*time.Millisecond))
}

// An explicit lease ID may not take the IDs the leader picks from: one
// grant of math.MaxInt64 used to leave no ID above the largest granted,
// and every later grant without an ID failed, for good.
func TestExplicitLeaseIDLeavesRoomForPickedOnes(t *testing.T) {
	n := openNode(t, t.TempDir(), 50*time.Millisecond)
	ctx := context.Background()
	for _, id := range []int64{math.MaxInt64, lease.MaxExplicitID + 1} {
		if _, err := n.Grant(ctx, 10, "", id); !errors.Is(err, fsm.ErrInvalidArgument) {
			t.Fatalf("grant with id %d: %v, want ErrInvalidArgument", id, err)
		}
		_, err := n.Txn(ctx, []fsm.Command{fsm.Grant{ID: id, TTL: 10}})
		if !errors.Is(err, fsm.ErrInvalidArgument) {
			t.Fatalf("txn granting id %d: %v, want ErrInvalidArgument", id, err)
		}
	}
	if _, err := n.Grant(ctx, 10, "", lease.MaxExplicitID); err != nil {
		t.Fatalf("grant with the largest explicit id: %v", err)
	}
	for range 3 {
		l, err := n.Grant(ctx, 10, "", 0)
		if err != nil || l.ID <= lease.MaxExplicitID {
			t.Fatalf("grant after the largest explicit id: %+v %v", l, err)
		}
	}
}

// A write refused with ErrNoLeader (503) changed nothing. Shutting a node
// down under load fails the writes still in flight; those raft had already
// appended may commit (they are in the log and apply on restart), so they
// must fail as ErrTimeout (outcome unknown), never as ErrNoLeader.
func TestWriteInFlightAtShutdownIsNotARefusal(t *testing.T) {
	dir := t.TempDir()
	n := openNode(t, dir, 50*time.Millisecond)
	ctx := context.Background()
	const writers, each = 16, 200
	type outcome struct {
		key string
		err error
	}
	out := make(chan outcome, writers*each)
	var wg sync.WaitGroup
	started := make(chan struct{})
	var once sync.Once
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				key := fmt.Sprintf("/w/%02d/%04d", w, i)
				_, err := n.Put(ctx, fsm.Put{Key: key, Value: []byte("v")})
				out <- outcome{key, err}
				if i == 20 {
					once.Do(func() { close(started) })
				}
				if err != nil {
					return
				}
			}
		}()
	}
	<-started
	if err := n.Close(); err != nil {
		t.Logf("close: %v", err)
	}
	wg.Wait()
	close(out)
	n2 := openNode(t, dir, 50*time.Millisecond)
	st, err := n2.Read(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	refused, unknown := 0, 0
	for o := range out {
		switch {
		case o.err == nil:
			if _, ok := st.Get(o.key); !ok {
				t.Errorf("acknowledged put of %s lost", o.key)
			}
		case errors.Is(o.err, registry.ErrNoLeader), errors.Is(o.err, registry.ErrClosed):
			refused++
			if _, ok := st.Get(o.key); ok {
				t.Errorf("put of %s was refused (%v) but it committed", o.key, o.err)
			}
		case errors.Is(o.err, registry.ErrTimeout):
			unknown++
		default:
			t.Errorf("put of %s: unexpected error %v", o.key, o.err)
		}
	}
	t.Logf("refused %d, outcome unknown %d", refused, unknown)
}
