package grpcresolver_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/rosterhq/roster/client"
	"github.com/rosterhq/roster/client/grpcresolver"
	"github.com/rosterhq/roster/internal/cluster"
	"github.com/rosterhq/roster/internal/testutil"
)

const roundRobin = `{"loadBalancingConfig":[{"round_robin":{}}]}`

// backend is a real gRPC server on 127.0.0.1 serving the standard health
// service; an interceptor counts the calls it answers.
type backend struct {
	name  string
	addr  string
	calls atomic.Int64
}

func startBackend(t *testing.T, name string) *backend {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &backend{name: name, addr: lis.Addr().String()}
	srv := grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		b.calls.Add(1)
		return h(ctx, req)
	}))
	hs := health.NewServer()
	hs.SetServingStatus("id-"+name, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(lis)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-done
	})
	return b
}

// caller makes calls through one ClientConn and tells which backends
// answered them.
type caller struct {
	t        *testing.T
	hc       healthpb.HealthClient
	backends []*backend
}

// call makes n calls (each must succeed) and returns how many each
// backend answered.
func (c *caller) call(n int) map[string]int64 {
	c.t.Helper()
	before := make([]int64, len(c.backends))
	for i, b := range c.backends {
		before[i] = b.calls.Load()
	}
	for range n {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		resp, err := c.hc.Check(ctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true))
		cancel()
		if err != nil {
			c.t.Fatalf("call failed: %v", err)
		}
		if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			c.t.Fatalf("call answered %v", resp.GetStatus())
		}
	}
	got := map[string]int64{}
	for i, b := range c.backends {
		if d := b.calls.Load() - before[i]; d > 0 {
			got[b.name] = d
		}
	}
	return got
}

// onlyBackends reports whether the calls reached exactly the named
// backends (each at least once) and no other.
func onlyBackends(got map[string]int64, names ...string) bool {
	if len(got) != len(names) {
		return false
	}
	for _, n := range names {
		if got[n] == 0 {
			return false
		}
	}
	return true
}

// resolverGoroutines lists the goroutines of this package and of the
// client.Resolver behind it, for the leak check.
func resolverGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if strings.Contains(g, "client/grpcresolver.(*rosterResolver)") || strings.Contains(g, "client.(*Resolver)") {
			out = append(out, g)
		}
	}
	return out
}

func waitNoResolverGoroutines(t *testing.T) {
	t.Helper()
	var left []string
	if !testutil.Poll(10*time.Second, func() bool { left = resolverGoroutines(); return len(left) == 0 }) {
		t.Fatalf("%d resolver goroutine(s) still running after Close:\n%s", len(left), strings.Join(left, "\n\n"))
	}
}

func dial(t *testing.T, target string, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(target, append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(roundRobin),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

func TestRoundRobinFollowsRegistry(t *testing.T) {
	cl := cluster.Start(t, 1, "-tick", "100ms")
	c, err := client.New(client.Config{Endpoints: cl.Endpoints()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	a, b, cc, d := startBackend(t, "a"), startBackend(t, "b"), startBackend(t, "c"), startBackend(t, "d")
	decoy := startBackend(t, "decoy")
	all := []*backend{a, b, cc, d, decoy}

	// Noise the resolver must ignore: an instance outside the prefix (a
	// plain byte prefix: "/services/testing/" is not under
	// "/services/test/") and a value that names no address.
	if _, err := c.Put(ctx, "/services/testing/decoy", []byte(decoy.addr)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Put(ctx, "/services/test/bad", []byte("not an address")); err != nil {
		t.Fatal(err)
	}

	logs := &testutil.SyncBuffer{}
	builder := grpcresolver.NewBuilder(c,
		grpcresolver.WithLogger(slog.New(slog.NewTextHandler(logs, nil))),
		// Short, so that the outage below outlasts it: the set must
		// survive anyway, since the builder keeps the last known set.
		grpcresolver.WithResolverOptions(client.WithUnreachableTimeout(300*time.Millisecond)),
	)
	conn := dial(t, "roster:///services/test/", grpc.WithResolvers(builder))
	defer conn.Close()
	call := &caller{t: t, hc: healthpb.NewHealthClient(conn), backends: all}

	// 1. A registers (lease of 3 s kept alive, plain host:port value):
	// calls converge on it.
	leaseA, err := c.Grant(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Put(ctx, "/services/test/a", []byte(a.addr), client.WithLease(leaseA.ID)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.KeepAlive(ctx, leaseA.ID); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "calls to reach a", func() bool { return onlyBackends(call.call(1), "a") })

	// 2. B (JSON with metadata; a lease of 2 s whose keep-alive we can
	// stop) and C (Registrar; grpc_addr wins over a dead addr) register:
	// calls spread round-robin across all three.
	leaseB, err := c.Grant(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	valB := fmt.Sprintf(`{"addr":%q,"metadata":{"zone":"b","weight":2}}`, b.addr)
	if _, err := c.Put(ctx, "/services/test/b", []byte(valB), client.WithLease(leaseB.ID)); err != nil {
		t.Fatal(err)
	}
	kaB, stopB := context.WithCancel(ctx)
	defer stopB()
	if _, err := c.KeepAlive(kaB, leaseB.ID); err != nil {
		t.Fatal(err)
	}
	reg := client.NewRegistrar(c)
	valC := fmt.Sprintf(`{"grpc_addr":%q,"addr":"127.0.0.1:1"}`, cc.addr)
	if _, err := reg.Register(ctx, "/services/test/c", []byte(valC), 3); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "calls to reach a, b and c", func() bool { return onlyBackends(call.call(30), "a", "b", "c") })
	got := call.call(300)
	for _, n := range []string{"a", "b", "c"} {
		if got[n] < 80 {
			t.Errorf("round robin over a, b, c: %s got %d of 300 calls (%v)", n, got[n], got)
		}
	}
	if !onlyBackends(got, "a", "b", "c") {
		t.Errorf("300 calls reached %v, want a, b and c only", got)
	}

	// 3. A's lease is revoked (its server keeps running): A stops
	// receiving calls, B and C share them.
	if _, err := c.Revoke(ctx, leaseA.ID); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "a to stop receiving calls", func() bool { return onlyBackends(call.call(10), "b", "c") })
	if got := call.call(60); !onlyBackends(got, "b", "c") || got["b"] < 20 || got["c"] < 20 {
		t.Errorf("after revoking a, 60 calls reached %v, want b and c about evenly", got)
	}

	// 4. B's keep-alive stops: its lease of 2 s expires and B stops
	// receiving calls (its server keeps running too).
	stopB()
	expiring := time.Now()
	testutil.Eventually(t, 15*time.Second, "b to stop receiving calls after its lease expired", func() bool { return onlyBackends(call.call(10), "c") })
	t.Logf("b dropped %v after its keep-alive stopped", time.Since(expiring).Round(10*time.Millisecond))
	if _, err := c.TimeToLive(ctx, leaseB.ID); err == nil {
		t.Errorf("lease of b still exists after b was dropped")
	}

	// 5. D registers: it starts receiving calls.
	valD := fmt.Sprintf(`{"address":%q}`, d.addr)
	if _, err := reg.Register(ctx, "/services/test/d", []byte(valD), 3); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "calls to reach d", func() bool { return onlyBackends(call.call(10), "c", "d") })
	if got := call.call(60); !onlyBackends(got, "c", "d") || got["c"] < 20 || got["d"] < 20 {
		t.Errorf("after d registered, 60 calls reached %v, want c and d about evenly", got)
	}

	// The opaque target form names the same prefix.
	conn2 := dial(t, "roster:services/test/", grpc.WithResolvers(builder))
	defer conn2.Close()
	call2 := &caller{t: t, hc: healthpb.NewHealthClient(conn2), backends: all}
	testutil.Eventually(t, 10*time.Second, "roster:services/test/ to reach c and d", func() bool { return onlyBackends(call2.call(10), "c", "d") })

	// The invalid value was skipped and logged.
	if !strings.Contains(logs.String(), "key=/services/test/bad") {
		t.Errorf("the invalid value was not logged; logs:\n%s", logs.String())
	}
	if decoy.calls.Load() != 0 {
		t.Errorf("the instance outside the prefix got %d calls", decoy.calls.Load())
	}

	// 6. The registry goes away: the last known set stays in use, well
	// past the unreachable timeout.
	cl.Members[0].Kill()
	until := time.Now().Add(1500 * time.Millisecond)
	for time.Now().Before(until) {
		if got := call.call(10); !onlyBackends(got, "c", "d") {
			t.Fatalf("with the registry down, calls reached %v, want c and d", got)
		}
	}

	// 7. Closing the ClientConns stops every resolver goroutine.
	if len(resolverGoroutines()) == 0 {
		t.Fatal("the leak check sees no resolver goroutine while two ClientConns resolve")
	}
	conn.Close()
	conn2.Close()
	waitNoResolverGoroutines(t)
}

// A registry that is not up yet: the channel reports the resolver's
// error, then recovers once the registry answers, without a redial.
func TestRegistryComingUpLate(t *testing.T) {
	cl := cluster.New(t, "-tick", "100ms")
	m := cl.Add()
	c, err := client.New(client.Config{Endpoints: []string{m.HTTP}, RequestTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	be := startBackend(t, "late")

	logs := &testutil.SyncBuffer{}
	builder := grpcresolver.NewBuilder(c, grpcresolver.WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
	conn := dial(t, "roster:///services/late/", grpc.WithResolvers(builder))
	defer conn.Close()
	hc := healthpb.NewHealthClient(conn)

	// Without wait-for-ready a call fails with the resolver's error.
	testutil.Eventually(t, 10*time.Second, "the resolver error to reach calls", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := hc.Check(ctx, &healthpb.HealthCheckRequest{})
		return err != nil && strings.Contains(err.Error(), "grpcresolver: resolving /services/late/")
	})

	m.Start()
	cl.WaitReady(30*time.Second, m)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	reg, err := client.NewRegistrar(c).Register(ctx, "/services/late/1", []byte(be.addr), 3)
	if err != nil {
		t.Fatal(err)
	}
	call := &caller{t: t, hc: hc, backends: []*backend{be}}
	testutil.Eventually(t, 15*time.Second, "calls to reach the instance", func() bool { return onlyBackends(call.call(1), "late") })

	// Deregistering empties the set: calls fail fast again.
	if err := reg.Close(ctx); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "calls to fail after the only instance left", func() bool {
		cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
		defer ccancel()
		_, err := hc.Check(cctx, &healthpb.HealthCheckRequest{})
		return err != nil
	})

	if len(resolverGoroutines()) == 0 {
		t.Fatal("the leak check sees no resolver goroutine while a ClientConn resolves")
	}

	// Closing the registry client ends the resolution (grpc keeps the
	// last addresses it had) and says so.
	c.Close()
	waitNoResolverGoroutines(t)
	if !strings.Contains(logs.String(), "the registry client was closed") {
		t.Errorf("closing the client was not logged; logs:\n%s", logs.String())
	}
	conn.Close()
	waitNoResolverGoroutines(t)
}

// A malformed target fails the channel's calls with a clear error.
func TestBadTarget(t *testing.T) {
	c, err := client.New(client.Config{Endpoints: []string{"127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	builder := grpcresolver.NewBuilder(c)
	if builder.Scheme() != "roster" {
		t.Fatalf("Scheme() = %q", builder.Scheme())
	}
	if s := grpcresolver.NewBuilder(c, grpcresolver.WithScheme("Roster-B")).Scheme(); s != "roster-b" {
		t.Fatalf("WithScheme: Scheme() = %q", s)
	}
	conn := dial(t, "roster://services/api/", grpc.WithResolvers(builder))
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err == nil || !strings.Contains(err.Error(), "has an authority") {
		t.Fatalf("call through a target with an authority: %v, want the resolver's refusal", err)
	}
}
