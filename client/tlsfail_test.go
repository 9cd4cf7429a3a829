package client

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rosterhq/roster/internal/cluster"
	"github.com/rosterhq/roster/internal/testcerts"
	"github.com/rosterhq/roster/internal/testutil"
)

// tlsMember starts a single-member rosterd serving HTTPS with cert. The
// helpers' own client skips verification: the certificate may be one no
// client should accept.
// With certs, it requires client certificates signed by certs' CA.
func tlsMember(t *testing.T, cert testcerts.Pair, certs *testcerts.Set) *cluster.Member {
	t.Helper()
	tc := &tls.Config{InsecureSkipVerify: true}
	args := []string{"-cert-file", cert.CertFile, "-key-file", cert.KeyFile, "-tick", "100ms"}
	if certs != nil {
		tc.Certificates = []tls.Certificate{certs.Client.TLS(t)}
		args = append(args, "-client-ca-file", certs.CAFile())
	}
	hc := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
	cl := cluster.StartWith(t, 1, cluster.Options{Client: hc}, args...)
	cl.Leader(30 * time.Second)
	return cl.Members[0]
}

// tlsTestClient is a client of endpoints that trusts certs' CA, with a
// test transport that counts the requests per member.
func tlsTestClient(t *testing.T, certs *testcerts.Set, endpoints ...string) (*Client, *testTransport) {
	t.Helper()
	tlsConf, err := LoadTLS(certs.CAFile(), "", "")
	if err != nil {
		t.Fatal(err)
	}
	tt := newTestTransport()
	tr := newTransport(DefaultDialTimeout)
	tr.TLSClientConfig = tlsConf
	tt.base = tr
	c, err := New(Config{Endpoints: endpoints, HTTPClient: &http.Client{Transport: tt}, RequestTimeout: 15 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, tt
}

// TestUnverifiableMembers: a member whose certificate the client cannot
// verify (signed by a CA it does not trust, made out to another host
// name, expired) fails every handshake the same way. The client took
// that for a member that is down: each call retried it until the call's
// deadline and ended as ErrNoLeader, and a watch retried for ever. Now a
// call leaves such a member for the others, later calls try it last, and
// with no member verifiable a call or watch fails at once with an error
// that names each member and wraps its x509 error.
func TestUnverifiableMembers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four rosterd processes")
	}
	certs := testcerts.New(t)
	expired := certs.CA.SignWith(t, certs.Dir, "expired", "roster-server", true, func(c *x509.Certificate) {
		c.NotBefore, c.NotAfter = time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour)
	})
	elsewhere := certs.CA.SignWith(t, certs.Dir, "elsewhere", "roster-server", true, func(c *x509.Certificate) {
		c.DNSNames, c.IPAddresses = []string{"elsewhere.example"}, nil
	})
	good := tlsMember(t, certs.Server, nil)
	rogue := tlsMember(t, certs.RoguePeer, nil)
	old := tlsMember(t, expired, nil)
	wrong := tlsMember(t, elsewhere, nil)
	bad := []*cluster.Member{rogue, old, wrong}
	ctx := ctxT(t, 60*time.Second)

	t.Run("the others answer", func(t *testing.T) {
		c, tt := tlsTestClient(t, certs, rogue.URL(""), old.URL(""), wrong.URL(""), good.URL(""))
		for i := range 12 {
			c.aimAt(bad[i%3].HTTP) // a bad member is first in line
			c.ignoreLeader.Store(false)
			start := time.Now()
			var err error
			if i%2 == 0 {
				_, err = c.Put(ctx, "/tls/k", []byte("v"))
			} else {
				_, err = c.Get(ctx, "/tls/k")
			}
			if err != nil {
				t.Fatalf("call %d: %v", i, err)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Fatalf("call %d took %v", i, d)
			}
			// aimAt put the bad members back in line: each is still
			// tried at most once per call.
			for _, m := range bad {
				if n := tt.sentTo(m.HTTP); n > i+1 {
					t.Fatalf("after %d calls, %d requests went to %s", i+1, n, m.ID)
				}
			}
		}
		// From a fresh start (every member in line, as aimAt left them),
		// each bad member is tried once, then stays at the end of the
		// line: the round-robin does not keep choosing it.
		for _, e := range c.endpoints {
			e.markHealthy()
		}
		before := map[string]int{}
		for _, m := range bad {
			before[m.HTTP] = tt.sentTo(m.HTTP)
		}
		for range 16 {
			if _, err := c.Get(ctx, "/tls/k"); err != nil {
				t.Fatal(err)
			}
		}
		for _, m := range bad {
			if n := tt.sentTo(m.HTTP) - before[m.HTTP]; n > 1 {
				t.Fatalf("16 calls were sent %d times to %s, whose certificate failed: want at most once", n, m.ID)
			}
		}
	})

	t.Run("none verifies", func(t *testing.T) {
		c, tt := tlsTestClient(t, certs, rogue.URL(""), old.URL(""), wrong.URL(""))
		for name, f := range map[string]func() error{
			"Get":   func() error { _, err := c.Get(ctx, "/tls/k"); return err },
			"Put":   func() error { _, err := c.Put(ctx, "/tls/k", nil); return err },
			"Grant": func() error { _, err := c.Grant(ctx, 10); return err },
		} {
			before := map[string]int{}
			for _, m := range bad {
				before[m.HTTP] = tt.sentTo(m.HTTP)
			}
			start := time.Now()
			err := f()
			if d := time.Since(start); d > 2*time.Second {
				t.Fatalf("%s failed after %v, not at once: %v", name, d, err)
			}
			checkTLSErr(t, name, err, bad)
			for _, m := range bad {
				if n := tt.sentTo(m.HTTP) - before[m.HTTP]; n != 1 {
					t.Fatalf("%s: %d requests to %s, want 1", name, n, m.ID)
				}
			}
		}
		start := time.Now()
		select {
		case resp, ok := <-c.Watch(ctx, "/tls/", WithPrefix()):
			if !ok {
				t.Fatal("the watch closed without an error")
			}
			checkTLSErr(t, "Watch", resp.Err, bad)
		case <-time.After(10 * time.Second):
			t.Fatal("the watch kept retrying members whose certificates fail")
		}
		t.Logf("the watch ended after %v", time.Since(start))
	})
}

// TestMemberRefusesTheClientCertificate: a member that requires a client
// certificate the client does not have refuses the handshake (with TLS
// 1.3, only once the client has sent its request); the request never
// reached the member, so even a write fails at once with a *TLSError
// rather than as a write of unknown outcome.
func TestMemberRefusesTheClientCertificate(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a rosterd process")
	}
	certs := testcerts.New(t)
	m := tlsMember(t, certs.Server, certs)
	ctx := ctxT(t, 30*time.Second)
	for _, cert := range []*testcerts.Pair{nil, &certs.RogueClient} {
		tc := certs.ClientTLS(t, cert)
		c, err := New(Config{Endpoints: []string{m.URL("")}, TLS: tc, RequestTimeout: 15 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now()
		_, err = c.Put(ctx, "/tls/k", []byte("v"))
		var te *TLSError
		if !errors.As(err, &te) || te.Member != m.HTTP || errors.Is(err, ErrTimeout) {
			t.Fatalf("put with client certificate %v: %v, want a *TLSError naming %s", cert != nil, err, m.HTTP)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("put failed after %v, not at once", d)
		}
		t.Logf("client certificate %v: %v", cert != nil, err)
	}
}

// checkTLSErr checks that err names every bad member and wraps the x509
// error of each kind of failure.
func checkTLSErr(t *testing.T, name string, err error, bad []*cluster.Member) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s succeeded", name)
	}
	var te *TLSError
	var ua x509.UnknownAuthorityError
	var ci x509.CertificateInvalidError
	var he x509.HostnameError
	if !errors.As(err, &te) || !errors.As(err, &ua) || !errors.As(err, &ci) || !errors.As(err, &he) {
		t.Fatalf("%s: %v: want a *TLSError wrapping each x509 error", name, err)
	}
	if ci.Reason != x509.Expired {
		t.Fatalf("%s: the certificate error is %v, want expired", name, ci)
	}
	for _, m := range bad {
		if !strings.Contains(err.Error(), m.HTTP) {
			t.Fatalf("%s: %v does not name %s", name, err, m.HTTP)
		}
	}
	if errors.Is(err, ErrNoLeader) || errors.Is(err, ErrTimeout) {
		t.Fatalf("%s: %v: a certificate failure is neither ErrNoLeader nor ErrTimeout", name, err)
	}
}

// TestWatchOutlivesAnOutageBesideAnUnverifiableMember: a watch ends on
// certificate failures only when every member failed one. It ended as
// soon as the members it could verify were unreachable for a moment (a
// restart, a partition, an election's no_leader), because the member
// whose certificate fails is tried last (tlsPenalty), so its *TLSError
// was the round's last error, which the watch took for the reason it
// could not go on.
func TestWatchOutlivesAnOutageBesideAnUnverifiableMember(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two rosterd processes")
	}
	certs := testcerts.New(t)
	good := tlsMember(t, certs.Server, nil)
	rogue := tlsMember(t, certs.RoguePeer, nil)
	ctx := ctxT(t, 60*time.Second)
	c, tt := tlsTestClient(t, certs, good.URL(""), rogue.URL(""))

	wch := c.Watch(ctx, "/tls/w/", WithPrefix())
	next := func(key string) {
		t.Helper()
		if _, err := c.Put(ctx, key, []byte("v")); err != nil {
			t.Fatal(err)
		}
		select {
		case resp, ok := <-wch:
			if !ok || resp.Err != nil || len(resp.Events) != 1 || resp.Events[0].KV.Key != key {
				t.Fatalf("watch: %+v (open %v), want the put of %s", resp, ok, key)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("the watch did not deliver the put of %s", key)
		}
	}
	testutil.Eventually(t, 10*time.Second, "the watch in place", func() bool { return tt.open() == 1 })
	next("/tls/w/1")

	// The good member is cut off: the watch tries it and the rogue one in
	// turn, round after round, and must not end.
	before := tt.sentTo(rogue.HTTP)
	tt.cutHost(good.HTTP)
	testutil.Eventually(t, 20*time.Second, "two more rounds over both members", func() bool {
		select {
		case resp, ok := <-wch:
			t.Fatalf("the watch ended while the member it can verify was cut off: %v (open %v)", resp.Err, ok)
		default:
		}
		return tt.sentTo(rogue.HTTP)-before >= 2
	})
	tt.healHost()
	next("/tls/w/2")
}

// TestHTTPSEndpointServingPlainHTTP: an https:// endpoint whose member
// serves plain HTTP answers every TLS handshake with an HTTP answer, as
// long as the configuration stays wrong. The client retried it like a
// member that is down until the call's deadline; now a call or a watch
// fails at once with a *TLSError naming the member, and nothing reached
// it (the put is not stored).
func TestHTTPSEndpointServingPlainHTTP(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a rosterd process")
	}
	certs := testcerts.New(t)
	cl := cluster.Start(t, 1, "-tick", "100ms")
	cl.Leader(30 * time.Second)
	m := cl.Members[0]
	c, _ := tlsTestClient(t, certs, "https://"+m.HTTP)
	ctx := ctxT(t, 30*time.Second)

	start := time.Now()
	_, err := c.Put(ctx, "/tls/plain", []byte("v"))
	var te *TLSError
	if !errors.As(err, &te) || te.Member != m.HTTP || errors.Is(err, ErrTimeout) || errors.Is(err, ErrNoLeader) {
		t.Fatalf("put: %v, want a *TLSError naming %s", err, m.HTTP)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("put failed after %v, not at once", d)
	}
	t.Logf("put: %v", err)
	select {
	case resp, ok := <-c.Watch(ctx, "/tls/", WithPrefix()):
		if !ok || !errors.As(resp.Err, &te) {
			t.Fatalf("watch: %+v (open %v), want a *TLSError", resp, ok)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the watch kept retrying a member that does not speak TLS")
	}
	plain, err := New(Config{Endpoints: []string{m.URL("")}})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if _, err := plain.Get(ctx, "/tls/plain"); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("get over plain HTTP: %v, want ErrKeyNotFound (the put never reached the member)", err)
	}
}

// TestPlainEndpointOfAnHTTPSMember: an endpoint without a scheme (or
// http://) whose member serves HTTPS, the newcomer's mistake of calling a
// secured cluster without its CA. Go's server answers such a request 400
// in plain text before any handler; the client passed that on as a bare
// 400 ("Client sent an HTTP request to an HTTPS server.", rosterctl exit
// 1) naming neither the member nor the fix. It is now a *TLSError whose
// reason, ErrPlainToTLS, says to give the CA or an https:// endpoint,
// for calls and watches alike, and the member is tried last.
func TestPlainEndpointOfAnHTTPSMember(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a rosterd process")
	}
	certs := testcerts.New(t)
	m := tlsMember(t, certs.Server, nil)
	host := strings.TrimPrefix(m.HTTP, "https://")
	c, err := New(Config{Endpoints: []string{host}, RequestTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := ctxT(t, 30*time.Second)
	start := time.Now()
	_, err = c.Put(ctx, "/tls/plain", []byte("v"))
	var te *TLSError
	if !errors.As(err, &te) || !errors.Is(err, ErrPlainToTLS) || te.Member != host {
		t.Fatalf("put: %v, want a *TLSError naming %s with ErrPlainToTLS", err, host)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("put failed after %v, not at once", d)
	}
	if !strings.Contains(err.Error(), "CA") || strings.Contains(err.Error(), "handshake failed") {
		t.Fatalf("put: %q, want it to name the fix and no handshake", err)
	}
	select {
	case resp, ok := <-c.Watch(ctx, "/tls/", WithPrefix()):
		if !ok || !errors.Is(resp.Err, ErrPlainToTLS) {
			t.Fatalf("watch: %+v (open %v), want ErrPlainToTLS", resp, ok)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the watch kept retrying a member that serves HTTPS")
	}
}
