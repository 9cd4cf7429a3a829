package registry

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"
)

// collectResult is what collectKeepAlives returned.
type collectResult struct {
	batch []*kaRequest
	count int
	ok    bool
}

// collectAsync runs collectKeepAlives on a bare node (only its queue, its
// limits and its stop channel) and hands back the result.
func collectAsync(n *Node, first *kaRequest, target int) <-chan collectResult {
	out := make(chan collectResult, 1)
	go func() {
		b, c, ok := n.collectKeepAlives(first, target)
		out <- collectResult{b, c, ok}
	}()
	return out
}

func bareBatcher(linger time.Duration) *Node {
	return &Node{
		kaCh: make(chan *kaRequest, 16),
		stop: make(chan struct{}),
		cfg:  Config{KeepAliveBatch: 100, KeepAliveLinger: linger},
	}
}

func kaReq(ids ...int64) *kaRequest { return &kaRequest{ids: ids} }

func waitCollect(t *testing.T, ch <-chan collectResult) collectResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("collectKeepAlives did not return within 10 s")
		return collectResult{}
	}
}

// A group with nothing to grow to (a quiet member: target 0) takes what
// waits and goes at once, however long the linger allowed.
func TestKeepAliveGroupWithoutTargetDoesNotLinger(t *testing.T) {
	n := bareBatcher(time.Hour)
	n.kaCh <- kaReq(2, 3)
	n.kaCh <- kaReq(4)
	r := waitCollect(t, collectAsync(n, kaReq(1), 0))
	if !r.ok || len(r.batch) != 3 || r.count != 4 {
		t.Fatalf("got %d requests, %d IDs, ok %v; want the 3 waiting requests with 4 IDs", len(r.batch), r.count, r.ok)
	}
	// Already as large as the group before it: no wait either.
	n.kaCh <- kaReq(6, 7)
	r = waitCollect(t, collectAsync(n, kaReq(5), 3))
	if !r.ok || len(r.batch) != 2 || r.count != 3 {
		t.Fatalf("got %d requests, %d IDs, ok %v; want 2 requests with 3 IDs", len(r.batch), r.count, r.ok)
	}
}

// Below its target a group waits for more: it ends once it reaches the
// target (here the linger, an hour, would not end it), or when the node
// stops, and then still holds every request it took.
func TestKeepAliveGroupLingersUntilItReachesTheLastGroup(t *testing.T) {
	n := bareBatcher(time.Hour)
	ch := collectAsync(n, kaReq(1, 2), 5)
	n.kaCh <- kaReq(3)
	n.kaCh <- kaReq(4, 5)
	r := waitCollect(t, ch)
	if !r.ok || len(r.batch) != 3 || r.count != 5 {
		t.Fatalf("got %d requests, %d IDs, ok %v; want 3 requests with 5 IDs", len(r.batch), r.count, r.ok)
	}

	ch = collectAsync(n, kaReq(6), 5)
	n.kaCh <- kaReq(7)
	close(n.stop)
	r = waitCollect(t, ch)
	if r.ok {
		t.Fatalf("a group waiting for its target returned ok after the node stopped (%d IDs)", r.count)
	}
	if len(r.batch) == 0 || r.batch[0].ids[0] != 6 {
		t.Fatalf("a stopped group must hand back the requests it took, got %d", len(r.batch))
	}
}

// The linger bounds the wait: a group that never reaches its target goes
// with what it has.
func TestKeepAliveGroupLingerEnds(t *testing.T) {
	n := bareBatcher(20 * time.Millisecond)
	r := waitCollect(t, collectAsync(n, kaReq(1), 50))
	if !r.ok || len(r.batch) != 1 || r.count != 1 {
		t.Fatalf("got %d requests, %d IDs, ok %v; want the one request", len(r.batch), r.count, r.ok)
	}
	// The batch cap bounds the target too: a group already at the cap goes.
	n.cfg.KeepAliveBatch = 2
	n.kaCh <- kaReq(2)
	r = waitCollect(t, collectAsync(n, kaReq(1), 1000))
	if !r.ok || r.count != 2 {
		t.Fatalf("got %d IDs, ok %v; want 2, the cap", r.count, r.ok)
	}
}

// A renewal still queued when the node closes was never proposed: its
// caller, even one without a deadline, gets ErrClosed instead of waiting
// forever.
func TestKeepAliveQueuedAtCloseIsRefused(t *testing.T) {
	n := bareBatcher(time.Hour)
	n.done = make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		_, err := n.keepAliveGrouped(context.Background(), []int64{1})
		errc <- err
	}()
	// The request is queued (no batcher runs here); then the node closes.
	deadline := time.Now().Add(10 * time.Second)
	for len(n.kaCh) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the renewal never reached the queue")
		}
		runtime.Gosched()
	}
	close(n.stop)
	close(n.done)
	select {
	case err := <-errc:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("got %v, want ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a renewal queued at close still waits 10 s later")
	}
}
