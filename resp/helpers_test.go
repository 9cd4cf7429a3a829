package resp

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/rosterhq/roster/internal/logging/logtest"
	"github.com/rosterhq/roster/internal/testutil"
	"github.com/rosterhq/roster/registry"
)

// testTick is the lease tick of test nodes: short, so expiry is prompt.
const testTick = 50 * time.Millisecond

// env is one real single-member node with the Redis port served in front
// of it.
type env struct {
	t    testing.TB
	node *registry.Node
	srv  *Server
	addr string
	reg  *prometheus.Registry
}

func newEnv(t testing.TB) *env { t.Helper(); return newEnvWith(t, nil) }

func newEnvWith(t testing.TB, adjust func(*Config)) *env {
	t.Helper()
	log := logtest.ForTest(t)
	reg := prometheus.NewRegistry()
	node := openTestNode(t, log, reg)
	var cfg Config
	if adjust != nil {
		adjust(&cfg)
	}
	srv, err := New(cfg, node, log)
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, node: node, srv: srv, addr: serveTest(t, srv), reg: reg}
}

// openTestNode opens a one-member node in a temporary directory, closed at
// cleanup, and waits until it is ready.
func openTestNode(t testing.TB, log *slog.Logger, reg prometheus.Registerer) *registry.Node {
	t.Helper()
	node, err := registry.Open(registry.Config{
		ID: "n1", DataDir: t.TempDir(), RaftAddr: "127.0.0.1:0", Bootstrap: true, NoSync: true,
		Tick: testTick, HTTPAdvertise: "127.0.0.1:1",
	}, log, reg)
	if err != nil {
		t.Fatalf("open node: %v", err)
	}
	t.Cleanup(func() { _ = node.Close() })
	testutil.Eventually(t, 10*time.Second, "node ready", func() bool { return node.Ready() == nil })
	return node
}

// serveTest serves srv on a new local port until cleanup and returns the
// address.
func serveTest(t testing.TB, srv *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// client is a go-redis client of the port, closed at cleanup.
func (e *env) client() *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: e.addr, MaxRetries: -1, ReadTimeout: 10 * time.Second})
	e.t.Cleanup(func() { c.Close() })
	return c
}

// dial opens a raw TCP connection to the port.
func (e *env) dial() net.Conn {
	e.t.Helper()
	c, err := net.DialTimeout("tcp", e.addr, 5*time.Second)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	return c
}

// value reads a Roster key straight from the node's applied state.
func (e *env) value(key string) (string, bool) {
	kv, ok := e.node.FSM().State().Get(key)
	if !ok {
		return "", false
	}
	return string(kv.Value), true
}

func ctx() context.Context { return context.Background() }

// wantErr asserts err is the RESP error text want.
func wantErr(t testing.TB, err error, want string) {
	t.Helper()
	if err == nil || err.Error() != want {
		t.Fatalf("error %v, want %q", err, want)
	}
}

// batches counts the Batch proposals the node made (its apply-duration
// histogram, label "batch").
func (e *env) batches() uint64 { e.t.Helper(); return e.proposals("batch") }

// proposals counts the node's proposals of one kind (its apply-duration
// histogram's label command).
func (e *env) proposals(kind string) uint64 {
	e.t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "roster_raft_apply_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "command" && l.GetValue() == kind {
					return m.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	return 0
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// about says whether a TTL read back is want, or a little less (the time
// since it was set, on a loaded machine); -1 and -2 must be exact.
func about(got, want time.Duration) bool {
	if want <= 0 {
		return got == want
	}
	return got <= want && got > want-3*time.Second
}

// openCluster opens n real members in temporary directories (the first
// bootstraps and leads, the others join as voters), closed at cleanup,
// and waits until every one is ready.
func openCluster(t testing.TB, log *slog.Logger, n int) []*registry.Node {
	t.Helper()
	var nodes []*registry.Node
	for i := range n {
		node, err := registry.Open(registry.Config{
			ID: fmt.Sprintf("n%d", i+1), DataDir: t.TempDir(), RaftAddr: "127.0.0.1:0", Bootstrap: i == 0,
			NoSync: true, Tick: testTick, HTTPAdvertise: fmt.Sprintf("127.0.0.1:%d", i+1), NodeNumber: -1,
			CommitTimeout: 10 * time.Millisecond,
		}, log.With("node", i+1), prometheus.NewRegistry())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = node.Close() })
		nodes = append(nodes, node)
	}
	leader := nodes[0]
	testutil.Eventually(t, 10*time.Second, "leader ready", func() bool { return leader.Ready() == nil })
	for i, node := range nodes[1:] {
		id := fmt.Sprintf("n%d", i+2)
		if err := leader.AddMember(ctx(), registry.JoinRequest{ID: id, RaftAddr: node.RaftAddr(), HTTPAddr: fmt.Sprintf("127.0.0.1:%d", i+2), Voter: true}); err != nil {
			t.Fatal(err)
		}
		testutil.Eventually(t, 20*time.Second, id+" ready", func() bool { return node.Ready() == nil })
	}
	return nodes
}
