package client

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rosterhq/roster/internal/cluster"
	"github.com/rosterhq/roster/internal/testcerts"
)

// TestSecuredCluster drives the client against a member that serves HTTPS,
// requires client certificates and enforces access control.
func TestSecuredCluster(t *testing.T) {
	certs := testcerts.New(t)
	const root = "root-token-of-the-client-test"
	file := certs.TokenFile(t, root)
	tc, err := LoadTLS(certs.CAFile(), certs.Client.CertFile, certs.Client.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	base := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
	c := cluster.StartWith(t, 1, cluster.Options{Client: cluster.TokenClient(base, root)},
		"-cert-file", certs.Server.CertFile, "-key-file", certs.Server.KeyFile, "-client-ca-file", certs.CAFile(),
		"-auth", "-root-token-file", file, "-tick", "100ms")
	c.Leader(30 * time.Second)
	m := c.Members[0]
	ctx := context.Background()
	newClient := func(cfg Config) *Client {
		t.Helper()
		cfg.Endpoints = []string{m.HTTP} // host:port: https because TLS is set
		if cfg.RequestTimeout == 0 {
			cfg.RequestTimeout = 5 * time.Second
		}
		cli, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cli.Close() })
		return cli
	}
	files := Config{CAFile: certs.CAFile(), CertFile: certs.Client.CertFile, KeyFile: certs.Client.KeyFile}

	admin := files
	admin.Token = root
	ac := newClient(admin)
	if ep := ac.Endpoints()[0]; !strings.HasPrefix(ep, "https://") {
		t.Fatalf("endpoint %s: want https with TLS settings", ep)
	}
	if w, err := ac.WhoAmI(ctx); err != nil || !w.Admin || w.ID != "root" {
		t.Fatalf("whoami as root: %+v %v", w, err)
	}
	if _, err := ac.PutRole(ctx, "api", []Rule{{Prefix: "/services/api/", Read: true, Write: true}}, false); err != nil {
		t.Fatal(err)
	}
	if r, err := ac.Role(ctx, "api"); err != nil || len(r.Rules) != 1 || r.Rules[0].Prefix != "/services/api/" {
		t.Fatalf("role: %+v %v", r, err)
	}
	nt, err := ac.CreateToken(ctx, "api-node", []string{"api"})
	if err != nil || nt.Token == "" {
		t.Fatalf("create token: %+v %v", nt, err)
	}
	if ts, err := ac.Tokens(ctx); err != nil || len(ts) != 2 {
		t.Fatalf("tokens: %+v %v", ts, err)
	}

	// The registrar's token: everything under /services/api/, nothing else.
	reg := files
	reg.Token = nt.Token
	rc := newClient(reg)
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	// From the revision before the registration: a watch "from now" would
	// race with it and could start after the put.
	before, err := rc.Get(ctx, "/services/api/", WithPrefix())
	if err != nil {
		t.Fatalf("list with the registrar's token: %v", err)
	}
	events := rc.Watch(wctx, "/services/api/", WithPrefix(), WithRev(before.Revision))
	r, err := NewRegistrar(rc).Register(ctx, "/services/api/n1", []byte("10.0.0.1:80"), 10)
	if err != nil {
		t.Fatalf("register with the registrar's token: %v", err)
	}
	select {
	case ev := <-events:
		if ev.Err != nil || len(ev.Events) == 0 || ev.Events[0].KV.Key != "/services/api/n1" {
			t.Fatalf("watch: %+v", ev)
		}
	case <-wctx.Done():
		t.Fatal("no watch event")
	}
	if _, err := rc.Put(ctx, "/other", []byte("x")); !errors.Is(err, ErrPermissionDenied) {
		t.Fatalf("put outside the role: %v", err)
	}
	if _, err := rc.Get(ctx, "/services/", WithPrefix()); !errors.Is(err, ErrPermissionDenied) {
		t.Fatalf("listing wider than the role: %v", err)
	}
	if resp := <-rc.Watch(wctx, "/other"); !errors.Is(resp.Err, ErrPermissionDenied) {
		t.Fatalf("watch outside the role: %+v", resp)
	}
	if err := r.Close(ctx); err != nil {
		t.Fatalf("deregister: %v", err)
	}

	// No token, or no client certificate: refused.
	if _, err := newClient(files).Get(ctx, "/services/api/n1"); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("no token: %v", err)
	}
	// (a refused handshake is retried like a refused connection until the
	// request timeout)
	noCert := Config{CAFile: certs.CAFile(), Token: root, RequestTimeout: time.Second}
	if _, err := newClient(noCert).Get(ctx, "/services/api/n1"); err == nil {
		t.Fatal("a client without a certificate was served")
	}
	if err := ac.DeleteToken(ctx, nt.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := rc.Get(ctx, "/services/api/n1"); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("deleted token: %v", err)
	}
	if _, err := New(Config{Endpoints: []string{m.HTTP}, CertFile: certs.Client.CertFile}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("a certificate without its key: %v", err)
	}
}
