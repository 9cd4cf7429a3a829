package client

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rosterhq/roster/internal/cluster"
	"github.com/rosterhq/roster/internal/testutil"
)

// waitClosed drains ch until it closes, failing after d.
func waitClosed[T any](t *testing.T, ch <-chan T, d time.Duration, what string) {
	t.Helper()
	timeout := time.After(d)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-timeout:
			t.Fatalf("%s: channel still open after %v", what, d)
		}
	}
}

// recvN receives n values from ch within d and returns the last.
func recvN[T any](t *testing.T, ch <-chan T, n int, d time.Duration) T {
	t.Helper()
	var v T
	timeout := time.After(d)
	for i := 0; i < n; i++ {
		select {
		case x, ok := <-ch:
			if !ok {
				t.Fatalf("channel closed after %d of %d values", i, n)
			}
			v = x
		case <-timeout:
			t.Fatalf("got %d of %d values within %v", i, n, d)
		}
	}
	return v
}

// testKeepAliveRevoked: a lease revoked on the server (by anyone) closes
// the KeepAlive channel at the next renewal.
func testKeepAliveRevoked(t *testing.T, c *Client) {
	ctx := ctxT(t, 30*time.Second)
	g, err := c.Grant(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := c.KeepAlive(ctx, g.ID)
	if err != nil {
		t.Fatal(err)
	}
	r := recvN(t, ch, 1, 10*time.Second)
	if r.ID != g.ID || r.TTL != 2 || r.Remaining < 2 {
		t.Fatalf("first keep-alive response = %+v", r)
	}
	// Kept alive past its TTL: renewals every TTL/3.
	recvN(t, ch, 4, 10*time.Second)
	if _, err := c.TimeToLive(ctx, g.ID); err != nil {
		t.Fatalf("lease kept alive for > TTL is gone: %v", err)
	}
	other, _ := newTestClient(t, c.Endpoints())
	if _, err := other.Revoke(ctx, g.ID); err != nil {
		t.Fatal(err)
	}
	// Renewals come every TTL/3: the channel closes at the next one.
	waitClosed(t, ch, 5*time.Second, "KeepAlive of a revoked lease")

	// KeepAlive of a lease that never existed closes at the first renewal.
	ch, err = c.KeepAlive(ctx, 424242)
	if err != nil {
		t.Fatal(err)
	}
	waitClosed(t, ch, 5*time.Second, "KeepAlive of an unknown lease")
	if _, err := c.KeepAlive(ctx, 0); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("KeepAlive(0): %v", err)
	}
}

// testKeepAliveEnds: the channel closes when the caller's context ends
// (while another KeepAlive of the same lease goes on) and when the client
// closes.
func testKeepAliveEnds(t *testing.T, cl *cluster.Cluster) {
	c, _ := newTestClient(t, cl.Endpoints())
	ctx := ctxT(t, 30*time.Second)
	g, err := c.Grant(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	kctx, cancel := context.WithCancel(ctx)
	ch1, err := c.KeepAlive(kctx, g.ID)
	if err != nil {
		t.Fatal(err)
	}
	ch2, err := c.KeepAlive(ctx, g.ID)
	if err != nil {
		t.Fatal(err)
	}
	<-ch2
	cancel()
	waitClosed(t, ch1, 5*time.Second, "KeepAlive after its ctx ended")
	c.Close()
	waitClosed(t, ch2, 5*time.Second, "KeepAlive after Close")
	if _, err := c.KeepAlive(ctx, g.ID); !errors.Is(err, ErrClosed) {
		t.Fatalf("KeepAlive after Close: %v, want ErrClosed", err)
	}
	if _, err := c.Get(ctx, "/x"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Get after Close: %v, want ErrClosed", err)
	}
	c.Close() // idempotent
}

// testKeepAliveBatched: 200 leases kept alive by one client cost one
// request per renewal interval, not one per lease, and all stay alive.
func testKeepAliveBatched(t *testing.T, cl *cluster.Cluster) {
	// Renewal interval: 2 s. With 3 s (1 s intervals) a machine at load
	// 10 made the grants outlast half the TTL, or shifted a renewal
	// across an interval's edge.
	const n, ttl = 200, 6
	c, tt := newTestClient(t, cl.Endpoints())
	ctx := ctxT(t, 60*time.Second)
	// Granted in parallel: every lease must still be alive when its
	// keep-alive starts below, and 200 grants one after another took
	// longer than the TTL on a machine at load 20.
	ids := make([]LeaseID, n)
	granting := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for w := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 10 {
				g, err := c.Grant(ctx, ttl)
				if err != nil {
					errs <- err
					return
				}
				ids[i] = g.ID
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	if d := time.Since(granting); d > ttl*time.Second/2 {
		t.Fatalf("granting %d leases took %v, too close to their TTL of %ds for the test to mean anything", n, d, ttl)
	}
	chans := make([]<-chan KeepAliveResponse, n)
	start := time.Now()
	for i, id := range ids {
		ch, err := c.KeepAlive(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		chans[i] = ch
	}
	// Wait until every lease has been renewed three times, counting the
	// responses as they come; the requests sent meanwhile are then set
	// against the renewal intervals that actually elapsed.
	got := make([]int, n)
	testutil.Eventually(t, 30*time.Second, "three renewals of every lease", func() bool {
		done := true
		for i, ch := range chans {
		drain:
			for {
				select {
				case _, ok := <-ch:
					if !ok {
						t.Fatalf("KeepAlive channel %d closed", i)
					}
					got[i]++
				default:
					break drain
				}
			}
			done = done && got[i] >= 3
		}
		return done
	})
	elapsed := time.Since(start)
	batched := tt.count("POST /v1/leases/keepalive")
	single := tt.count("POST /v1/leases/{id}/keepalive")
	intervals := int(elapsed / (ttl * time.Second / 3))
	t.Logf("%d leases, %v: %d batched keep-alive requests, %d single (%d intervals)", n, elapsed, batched, single, intervals)
	if single != 0 {
		t.Errorf("%d single-lease keep-alive requests, want 0", single)
	}
	// The first renewal (learning the TTLs) plus one per interval; allow a
	// little slack for a retry, never anything near one per lease.
	if batched < intervals || batched > intervals+3 {
		t.Errorf("%d keep-alive requests over %d intervals, want about %d (one per interval, not %d)", batched, intervals, intervals+1, n*intervals)
	}
	// Every lease outlived its TTL and every channel is open and fed.
	for i := range got {
		if got[i] < intervals {
			t.Errorf("lease %d: %d responses, want at least %d", i, got[i], intervals)
		}
	}
	leases, err := c.Leases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	alive := map[LeaseID]bool{}
	for _, l := range leases.Leases {
		alive[l.ID] = true
	}
	for _, id := range ids {
		if !alive[id] {
			t.Fatalf("lease %v expired while kept alive", id)
		}
	}
}

// fakeKeepAlive serves POST /v1/leases/keepalive, renewing every ID with
// ttl (or answering 503 no_leader while down is set), and records the
// batch sizes.
type fakeKeepAlive struct {
	ttl  int64
	down atomic.Bool
	// deny, when set, is a lease the client's token may not renew: a
	// batch that names it is refused as a whole, 403 (API.md).
	deny LeaseID
	// gate, when set, holds every request until it is closed.
	gate  chan struct{}
	mu    sync.Mutex
	sizes []int
}

func (f *fakeKeepAlive) handle(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/v1/leases/keepalive" {
		writeErr(w, 404, "not_found")
		return
	}
	if f.down.Load() {
		writeErr(w, 503, "no_leader")
		return
	}
	if f.gate != nil {
		<-f.gate
	}
	var req struct {
		IDs []LeaseID `json:"ids"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.IDs) > kaMaxBatch {
		writeErr(w, 400, "invalid_argument")
		return
	}
	if f.deny != 0 && slices.Contains(req.IDs, f.deny) {
		writeErr(w, 403, "permission_denied")
		return
	}
	f.mu.Lock()
	f.sizes = append(f.sizes, len(req.IDs))
	f.mu.Unlock()
	resp := struct {
		Leases   []KeepAliveResponse `json:"leases"`
		NotFound []string            `json:"not_found"`
	}{NotFound: []string{}}
	for _, id := range req.IDs {
		resp.Leases = append(resp.Leases, KeepAliveResponse{ID: id, TTL: f.ttl, Remaining: f.ttl})
	}
	json.NewEncoder(w).Encode(resp)
}

// client serves f on a member of its own and returns a client of it,
// closed at the end of the test.
func (f *fakeKeepAlive) client(t *testing.T) *Client {
	t.Helper()
	m := newFakeMember(t, f.handle)
	c, err := New(Config{Endpoints: []string{m.URL}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func (f *fakeKeepAlive) batches() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.sizes)
}

// TestKeepAliveChunks: more leases than one request may carry are renewed
// in requests of at most 10,000 IDs.
func TestKeepAliveChunks(t *testing.T) {
	// The first request is held until every lease is registered, so what
	// is sent after it does not depend on how fast this machine is: the
	// rest goes out together, in at most two chunks.
	f := &fakeKeepAlive{ttl: 60, gate: make(chan struct{})}
	release := sync.OnceFunc(func() { close(f.gate) })
	defer release()
	c := f.client(t)
	ctx := ctxT(t, 30*time.Second)
	const n = kaMaxBatch + 5
	chans := make([]<-chan KeepAliveResponse, n)
	for i := range chans {
		var err error
		if chans[i], err = c.KeepAlive(ctx, LeaseID(i+1)); err != nil {
			t.Fatal(err)
		}
	}
	release()
	for i, ch := range chans {
		if r := recvN(t, ch, 1, 20*time.Second); r.ID != LeaseID(i+1) || r.TTL != 60 {
			t.Fatalf("lease %d: response %+v", i+1, r)
		}
	}
	total := 0
	for _, s := range f.batches() {
		if s > kaMaxBatch {
			t.Fatalf("a batch of %d IDs", s)
		}
		total += s
	}
	if total != n || len(f.batches()) > 3 {
		t.Fatalf("batches %v: want %d IDs in a few requests", f.batches(), n)
	}
}

// TestKeepAliveDeadline: when no renewal succeeds before the lease could
// have expired (the members answer no_leader), the channel closes — about
// one TTL after the last success, not earlier.
func TestKeepAliveDeadline(t *testing.T) {
	f := &fakeKeepAlive{ttl: 2}
	c := f.client(t)
	ctx := ctxT(t, 30*time.Second)
	ch, err := c.KeepAlive(ctx, 77)
	if err != nil {
		t.Fatal(err)
	}
	recvN(t, ch, 2, 5*time.Second)
	lastOK := time.Now()
	f.down.Store(true)
	waitClosed(t, ch, 5*time.Second, "KeepAlive with no successful renewal")
	if d := time.Since(lastOK); d < 1300*time.Millisecond {
		t.Fatalf("closed %v after the last success; the lease (TTL 2 s) was still alive", d)
	}
}

// TestKeepAliveDeniedLeaseSparesTheOthers: the server refuses a batch
// keep-alive as a whole when the token may not renew one of its leases.
// That lease's channel closes; the leases batched with it go on being
// renewed.
func TestKeepAliveDeniedLeaseSparesTheOthers(t *testing.T) {
	f := &fakeKeepAlive{ttl: 2, deny: 13}
	c := f.client(t)
	ctx := ctxT(t, 30*time.Second)
	var chans []<-chan KeepAliveResponse
	for _, id := range []LeaseID{1, 13, 2} {
		ch, err := c.KeepAlive(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		chans = append(chans, ch)
	}
	waitClosed(t, chans[1], 5*time.Second, "KeepAlive of a lease the token may not renew")
	// Renewed past their TTL, every TTL/3.
	for _, ch := range []<-chan KeepAliveResponse{chans[0], chans[2]} {
		recvN(t, ch, 4, 5*time.Second)
	}
}

// TestKeepAliveLeavesAHungLeader: the member named as the leader hangs
// (stopped, or cut off with the client's connection still open). The
// renewal of a lease of 30 s or more must still reach another member in
// time, and the next renewals must not start with the hung one again.
func TestKeepAliveLeavesAHungLeader(t *testing.T) {
	f := &fakeKeepAlive{ttl: 60}
	// The body read, the server notices the client hanging up (and ends
	// the request's context); done ends it at the latest with the test.
	done := make(chan struct{})
	hung := newFakeMember(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-done:
		}
	})
	t.Cleanup(func() { close(done) })
	good := newFakeMember(t, f.handle)
	c, err := New(Config{Endpoints: []string{hung.URL, good.URL}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.ignoreLeader.Store(true) // keep the hint on the hung member
	c.leader.Store(c.endpoints[0])
	// A lease of 60 s granted 20 s ago: its renewal is due now.
	ch, err := c.keepAliveFrom(ctxT(t, 30*time.Second), 77, 60, time.Now().Add(-20*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if r := recvN(t, ch, 1, 4*time.Second); r.ID != 77 {
		t.Fatalf("renewal %+v", r)
	}
	if hung.hits.Load() != 1 || c.endpoints[0].downUntil.Load() == 0 {
		t.Fatalf("the hung member got %d requests and is not tried last", hung.hits.Load())
	}
}

// TestKeepAliveFirstRenewalDeadline: a KeepAlive whose first renewal
// never gets through (no leader, no member reachable) closes its channel
// once a lease of the assumed TTL could have expired, as etcd's does,
// instead of retrying for ever while the lease, whose TTL the client has
// not learnt, may be long gone. A first renewal that gets through in time
// keeps the lease, whatever came before it.
func TestKeepAliveFirstRenewalDeadline(t *testing.T) {
	f := &fakeKeepAlive{ttl: 60}
	f.down.Store(true)
	c := f.client(t)
	ctx := ctxT(t, 30*time.Second)
	start := time.Now()
	ch, err := c.KeepAlive(ctx, 77)
	if err != nil {
		t.Fatal(err)
	}
	waitClosed(t, ch, kaFirstDeadline+3*time.Second, "KeepAlive whose first renewal never got through")
	if d := time.Since(start); d < kaFirstDeadline-100*time.Millisecond {
		t.Fatalf("closed after %v, before the first renewal's deadline ", d)
	}

	// Down for a while at the start, then back: the lease is kept.
	ch, err = c.KeepAlive(ctx, 78)
	if err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(kaFirstDeadline/3, func() { f.down.Store(false) })
	if r := recvN(t, ch, 1, kaFirstDeadline); r.ID != 78 {
		t.Fatalf("renewal %+v", r)
	}
}
