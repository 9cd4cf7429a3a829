package registry_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rosterhq/roster/fsm"
	"github.com/rosterhq/roster/internal/logging/logtest"
	"github.com/rosterhq/roster/internal/testutil"
	"github.com/rosterhq/roster/registry"
)

func openAuthNode(t *testing.T, dir, root string) *registry.Node {
	t.Helper()
	cfg := registry.Config{ID: "n1", DataDir: dir, RaftAddr: "127.0.0.1:0", Bootstrap: true, NodeNumber: -1,
		Tick: 50 * time.Millisecond, HTTPAdvertise: "127.0.0.1:1", Auth: true, NoSync: true}
	if root != "" {
		cfg.RootTokenHash = registry.HashToken(root)
	}
	n, err := registry.Open(cfg, logtest.ForTest(t), prometheus.NewRegistry())
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	testutil.Eventually(t, 10*time.Second, "node ready", func() bool { return n.Ready() == nil })
	return n
}

// TestRootTokenBootstrap: the first leader of a cluster without tokens
// creates the root token it was given; a cluster that has tokens ignores
// the root token given at a later start.
func TestRootTokenBootstrap(t *testing.T) {
	dir := t.TempDir()
	const first, second = "first-root-token-0123456789", "second-root-token-0123456789"
	n := openAuthNode(t, dir, first)
	testutil.Eventually(t, 5*time.Second, "root token", func() bool { _, err := n.Authenticate(first); return err == nil })
	p, _ := n.Authenticate(first)
	if p.TokenID != "root" || !p.Admin() || !p.CanWritePrefix("/") {
		t.Fatalf("root principal: %+v", p)
	}
	ctx := context.Background()
	if err := n.PutRole(ctx, fsm.Role{Name: "svc", Rules: []fsm.Rule{{Prefix: "/svc/", Read: true}}}); err != nil {
		t.Fatal(err)
	}
	tok, secret, err := n.CreateToken(ctx, "reader", []string{"svc"})
	if err != nil || tok.ID == "" || len(secret) < 40 {
		t.Fatalf("create: %+v %q %v", tok, secret, err)
	}
	rp, err := n.Authenticate(secret)
	if err != nil || rp.Admin() || !rp.CanRead("/svc/a") || rp.CanRead("/svcx") || rp.CanWrite("/svc/a") ||
		!rp.CanReadPrefix("/svc/a/") || rp.CanReadPrefix("/sv") || rp.CanReadPrefix("") {
		t.Fatalf("reader principal: %+v %v", rp, err)
	}
	if _, err := n.Authenticate(""); !errors.Is(err, registry.ErrUnauthenticated) {
		t.Fatalf("no token: %v", err)
	}
	if _, _, err := n.CreateToken(ctx, "x", []string{"absent"}); !errors.Is(err, fsm.ErrInvalidArgument) {
		t.Fatalf("token with an unknown role: %v", err)
	}
	n.Close()

	n = openAuthNode(t, dir, second)
	defer n.Close()
	// Ready (waited for above) means the leader start-up that would create
	// a root token has run.
	testutil.Eventually(t, 5*time.Second, "the old root token", func() bool { _, err := n.Authenticate(first); return err == nil })
	if _, err := n.Authenticate(second); !errors.Is(err, registry.ErrUnauthenticated) {
		t.Fatalf("a root token given to a cluster that has tokens was accepted: %v", err)
	}
	if st := n.FSM().State(); st.TokenCount() != 2 {
		t.Fatalf("tokens: %+v", st.Tokens())
	}
}

// TestBuiltInRootRoleCannotBeDeleted: deleting the built-in role root is
// refused as changing it is (400, "built in"), not answered 404 "role not
// found" for a role that GET /v1/auth/roles/root shows and the root token
// holds.
func TestBuiltInRootRoleCannotBeDeleted(t *testing.T) {
	const root = "root-token-for-the-built-in-role"
	n := openAuthNode(t, t.TempDir(), root)
	defer n.Close()
	testutil.Eventually(t, 5*time.Second, "root token", func() bool { _, err := n.Authenticate(root); return err == nil })
	err := n.DeleteRole(context.Background(), fsm.RootRole)
	if !errors.Is(err, fsm.ErrInvalidArgument) || !strings.Contains(err.Error(), "built in") {
		t.Fatalf("delete of the built-in role root: %v, want invalid argument: built in", err)
	}
	if _, err := n.Authenticate(root); err != nil {
		t.Fatalf("root token after the refused delete: %v", err)
	}
}
