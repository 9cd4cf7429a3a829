package client

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/rosterhq/roster/internal/cluster"
	"github.com/rosterhq/roster/internal/testutil"
)

// stacks returns the stacks of every goroutine, split one per entry.
func stacks() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Split(string(buf[:n]), "\n\n")
		}
		buf = make([]byte, 2*len(buf))
	}
}

// packageGoroutines lists the goroutines running this package's code
// (not the tests'), but the keep-alive loop, which lives as long as its
// client by design.
func packageGoroutines() []string {
	var out []string
	for _, g := range stacks() {
		if strings.Contains(g, "roster/client.") && !strings.Contains(g, "_test.go") &&
			!strings.Contains(g, "(*keepAliver).run") {
			out = append(out, g)
		}
	}
	return out
}

// startAll starts one of each long-lived helper on c under ctx: a kept
// lease, a watch and a resolver, and waits until each works.
func startAll(t *testing.T, ctx context.Context, c *Client, prefix string) (<-chan KeepAliveResponse, <-chan WatchResponse, *Resolver) {
	t.Helper()
	g, err := c.Grant(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	ka, err := c.KeepAlive(ctx, g.ID)
	if err != nil {
		t.Fatal(err)
	}
	recvN(t, ka, 1, 10*time.Second)
	wch := c.Watch(ctx, prefix, WithPrefix())
	r, err := NewResolver(ctx, c, prefix)
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "the watch in place", func() bool {
		if _, err := c.Put(ctx, prefix+"k", nil); err != nil {
			t.Fatal(err)
		}
		select {
		case resp := <-wch:
			return len(resp.Events) > 0
		case <-time.After(200 * time.Millisecond):
			return false
		}
	})
	converge(t, r, 10*time.Second, "the resolver", prefix+"k")
	return ka, wch, r
}

// TestNoGoroutineLeaks: KeepAlive, Watch and Resolver leave no goroutine
// behind once their context ends, or once the client (or the resolver)
// is closed; closing twice, or in either order, is harmless.
func TestNoGoroutineLeaks(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a rosterd process")
	}
	cl := cluster.Start(t, 1, "-tick", "100ms")

	t.Run("context ends", func(t *testing.T) {
		c, err := New(Config{Endpoints: cl.Endpoints()})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		ka, wch, r := startAll(t, ctx, c, "/leak/ctx/")
		cancel()
		waitClosed(t, ka, 5*time.Second, "the KeepAlive channel")
		waitClosed(t, wch, 5*time.Second, "the watch")
		waitClosed(t, r.Updates(), 5*time.Second, "the resolver's Updates")
		r.Close()
		r.Close()
		var left []string
		if !testutil.Poll(10*time.Second, func() bool { left = packageGoroutines(); return len(left) == 0 }) {
			t.Fatalf("%d goroutines of the package left after the context ended:\n%s", len(left), strings.Join(left, "\n\n"))
		}
	})

	t.Run("Close", func(t *testing.T) {
		// The goroutines of the test's cluster helpers and the first
		// subtest's client are settled: all that comes now is c's.
		base := runtime.NumGoroutine()
		c, err := New(Config{Endpoints: cl.Endpoints()})
		if err != nil {
			t.Fatal(err)
		}
		ka, wch, r := startAll(t, context.Background(), c, "/leak/close/")
		r2, err := NewResolver(context.Background(), c, "/leak/close/")
		if err != nil {
			t.Fatal(err)
		}
		r2.Close() // closed before the client
		r2.Close()
		c.Close()
		waitClosed(t, ka, time.Second, "the KeepAlive channel")
		waitClosed(t, wch, time.Second, "the watch")
		waitClosed(t, r.Updates(), 5*time.Second, "the resolver's Updates")
		c.Close()
		r.Close() // closed after the client
		r.Close()
		var n int
		if !testutil.Poll(10*time.Second, func() bool { n = runtime.NumGoroutine(); return n <= base }) {
			t.Fatalf("%d goroutines after Close, %d before the client:\n%s", n, base, strings.Join(stacks(), "\n\n"))
		}
		if _, err := c.KeepAlive(context.Background(), 1); err == nil {
			t.Fatal("KeepAlive after Close succeeded")
		}
		if _, ok := <-c.Watch(context.Background(), "/leak/"); ok {
			t.Fatal("a watch after Close delivered")
		}
		if _, err := NewResolver(context.Background(), c, "/leak/"); err == nil {
			t.Fatal("NewResolver after Close succeeded")
		}
		if !testutil.Poll(5*time.Second, func() bool { n = runtime.NumGoroutine(); return n <= base }) {
			t.Fatalf("calls after Close left %d goroutines over the %d before the client:\n%s", n-base, base, strings.Join(stacks(), "\n\n"))
		}
	})
}

// TestResolverCloseWaits: Resolver.Close returns once the resolver's
// goroutines, its watch's included, are done (it returned while its watch
// still held its stream), so that a program that closes it leaves nothing
// running on its behalf; and the error handler
// may close the resolver it reports on (it runs on the resolver's own
// goroutine, which Close would otherwise wait for for ever).
func TestResolverCloseWaits(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a rosterd process")
	}
	cl := cluster.Start(t, 1, "-tick", "100ms")
	ctx := ctxT(t, 30*time.Second)

	t.Run("Close", func(t *testing.T) {
		c, tt := newTestClient(t, cl.Endpoints())
		for i := range 20 {
			r, err := NewResolver(ctx, c, "/leak/wait/")
			if err != nil {
				t.Fatal(err)
			}
			if i > 0 {
				// Also with its watch in place.
				testutil.Eventually(t, 5*time.Second, "the watch in place", func() bool { return c.watching() })
			}
			r.Close()
			// Nothing the resolver started is still at work: its watch's
			// stream is closed. (The goroutines themselves may still be
			// returning from their last statement.)
			if n := tt.open(); n != 0 {
				t.Fatalf("round %d: %d answers still open when Resolver.Close returned", i, n)
			}
			var left []string
			if !testutil.Poll(2*time.Second, func() bool { left = packageGoroutines(); return len(left) == 0 }) {
				t.Fatalf("round %d: %d goroutines of the package left after Resolver.Close:\n%s", i, len(left), strings.Join(left, "\n\n"))
			}
		}
	})

	t.Run("Close from the error handler", func(t *testing.T) {
		c, tt := newTestClient(t, cl.Endpoints())
		var r *Resolver
		ready := make(chan struct{})
		closed := make(chan struct{})
		handler := func(error) {
			<-ready
			r.Close()
			close(closed)
		}
		r, err := NewResolver(ctx, c, "/leak/handler/", WithUnreachableTimeout(300*time.Millisecond), WithErrorHandler(handler))
		if err != nil {
			t.Fatal(err)
		}
		close(ready)
		tt.cut() // the list fails from now on: the handler is called
		select {
		case <-closed:
		case <-time.After(10 * time.Second):
			t.Fatal("Resolver.Close called from the error handler did not return")
		}
		waitClosed(t, r.Updates(), 5*time.Second, "the resolver's Updates")
		r.Close()
		tt.heal()
	})
}
