package tlsutil_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rosterhq/roster/internal/logging/logtest"
	"github.com/rosterhq/roster/internal/testcerts"
	"github.com/rosterhq/roster/internal/testutil"
	"github.com/rosterhq/roster/internal/tlsutil"
)

// serve accepts connections on a loopback listener with cfg, completes the
// handshake and writes "ok"; it returns the address.
func serve(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	return testutil.Serve(t, ln, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if err := c.(*tls.Conn).Handshake(); err == nil {
			c.Write([]byte("ok"))
		}
	})
}

// dial connects with cfg and reads the greeting; it returns the server's
// leaf certificate.
func dial(addr string, cfg *tls.Config) (*x509.Certificate, error) {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil {
		return nil, err
	}
	if string(b) != "ok" {
		return nil, errors.New("no greeting: " + string(b))
	}
	return c.ConnectionState().PeerCertificates[0], nil
}

func load(t *testing.T, f tlsutil.Files) *tlsutil.Source {
	t.Helper()
	s, err := tlsutil.Load(f, tlsutil.Options{Name: "test", CheckInterval: -1, Logger: logtest.ForTest(t)})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestServerAndClientVerification(t *testing.T) {
	certs := testcerts.New(t)
	srv := load(t, tlsutil.Files{CertFile: certs.Server.CertFile, KeyFile: certs.Server.KeyFile, CAFiles: []string{certs.CAFile()}})
	addr := serve(t, srv.ServerConfig(true))

	good := load(t, tlsutil.Files{CertFile: certs.Client.CertFile, KeyFile: certs.Client.KeyFile, CAFiles: []string{certs.CAFile()}})
	if _, err := dial(addr, good.ClientConfig()); err != nil {
		t.Fatalf("client with a certificate the CA signed: %v", err)
	}
	withName := good.ClientConfig()
	withName.ServerName = "localhost"
	if _, err := dial(addr, withName); err != nil {
		t.Fatalf("server name localhost: %v", err)
	}
	wrongName := good.ClientConfig()
	wrongName.ServerName = "elsewhere.example"
	if _, err := dial(addr, wrongName); err == nil {
		t.Fatal("a server certificate without the dialed name was accepted")
	}

	noCert := load(t, tlsutil.Files{CAFiles: []string{certs.CAFile()}})
	if _, err := dial(addr, noCert.ClientConfig()); err == nil {
		t.Fatal("a client without a certificate was accepted")
	}
	rogue := load(t, tlsutil.Files{CertFile: certs.RogueClient.CertFile, KeyFile: certs.RogueClient.KeyFile, CAFiles: []string{certs.CAFile()}})
	if _, err := dial(addr, rogue.ClientConfig()); err == nil {
		t.Fatal("a client certificate of a rogue CA was accepted")
	}
	// The client side refuses a server the CA did not sign.
	trustsRogue := load(t, tlsutil.Files{CertFile: certs.Client.CertFile, KeyFile: certs.Client.KeyFile, CAFiles: []string{certs.Rogue.CertFile}})
	if _, err := dial(addr, trustsRogue.ClientConfig()); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("a server certificate the trusted CA did not sign: %v", err)
	}
	// Without client authentication, a client without a certificate is fine.
	open := serve(t, srv.ServerConfig(false))
	if _, err := dial(open, noCert.ClientConfig()); err != nil {
		t.Fatalf("no client auth: %v", err)
	}
}

func TestPeerConfigBothEnds(t *testing.T) {
	certs := testcerts.New(t)
	peer := load(t, tlsutil.Files{CertFile: certs.Peer.CertFile, KeyFile: certs.Peer.KeyFile, CAFiles: []string{certs.CAFile()}})
	addr := serve(t, peer.PeerConfig())
	if _, err := dial(addr, peer.PeerConfig()); err != nil {
		t.Fatalf("peer to peer: %v", err)
	}
	rogue := load(t, tlsutil.Files{CertFile: certs.RoguePeer.CertFile, KeyFile: certs.RoguePeer.KeyFile, CAFiles: []string{certs.CAFile()}})
	if _, err := dial(addr, rogue.PeerConfig()); err == nil {
		t.Fatal("a peer with a rogue certificate was accepted")
	}
	// A client-only certificate cannot serve: dialing a rogue-served peer fails too.
	rogueAddr := serve(t, rogue.PeerConfig())
	if _, err := dial(rogueAddr, peer.PeerConfig()); err == nil {
		t.Fatal("a peer accepted a server with a rogue certificate")
	}
}

func TestReloadOnChangeAndOnRequest(t *testing.T) {
	certs := testcerts.New(t)
	// The server's files live in their own copies, replaced during the test.
	dir := t.TempDir()
	live := testcerts.Pair{CertFile: dir + "/live.crt", KeyFile: dir + "/live.key"}
	certs.Server.CopyTo(t, live)
	srv := load(t, tlsutil.Files{CertFile: live.CertFile, KeyFile: live.KeyFile})
	addr := serve(t, srv.ServerConfig(false))
	client := load(t, tlsutil.Files{CAFiles: []string{certs.CAFile()}})

	first, err := dial(addr, client.ClientConfig())
	if err != nil {
		t.Fatal(err)
	}
	// A new certificate on disk is served to the next connection.
	next := certs.CA.Sign(t, t.TempDir(), "next", "roster-server-2", true)
	next.CopyTo(t, live)
	got, err := dial(addr, client.ClientConfig())
	if err != nil {
		t.Fatal(err)
	}
	if got.SerialNumber.Cmp(first.SerialNumber) == 0 || got.Subject.CommonName != "roster-server-2" {
		t.Fatalf("after the files changed the server still presents %v", got.Subject)
	}

	// A broken pair on disk (key of another certificate) keeps the old one.
	kb, _ := os.ReadFile(certs.Peer.KeyFile)
	if err := os.WriteFile(live.KeyFile, kb, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := srv.Reload(); err == nil {
		t.Fatal("Reload accepted a key that does not match its certificate")
	}
	if got, err = dial(addr, client.ClientConfig()); err != nil || got.Subject.CommonName != "roster-server-2" {
		t.Fatalf("after a failed reload: %v %v", got, err)
	}

	// Reload on request (SIGHUP) with a slow check interval.
	dir2 := t.TempDir()
	hup := testcerts.Pair{CertFile: dir2 + "/hup.crt", KeyFile: dir2 + "/hup.key"}
	certs.Server.CopyTo(t, hup)
	slow, err := tlsutil.Load(tlsutil.Files{CertFile: hup.CertFile, KeyFile: hup.KeyFile}, tlsutil.Options{CheckInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	addr2 := serve(t, slow.ServerConfig(false))
	next.CopyTo(t, hup)
	if got, _ := dial(addr2, client.ClientConfig()); got == nil || got.Subject.CommonName != "roster-server" {
		t.Fatalf("reloaded before the check interval: %v", got)
	}
	if err := slow.Reload(); err != nil {
		t.Fatal(err)
	}
	if got, _ := dial(addr2, client.ClientConfig()); got == nil || got.Subject.CommonName != "roster-server-2" {
		t.Fatalf("after Reload: %v", got)
	}
}

func TestLoadErrors(t *testing.T) {
	certs := testcerts.New(t)
	for name, f := range map[string]tlsutil.Files{
		"cert without key": {CertFile: certs.Server.CertFile},
		"missing file":     {CertFile: certs.Server.CertFile, KeyFile: certs.Dir + "/absent.key"},
		"mismatched key":   {CertFile: certs.Server.CertFile, KeyFile: certs.Peer.KeyFile},
		"CA not PEM":       {CAFiles: []string{certs.Server.KeyFile}},
	} {
		if _, err := tlsutil.Load(f, tlsutil.Options{}); err == nil {
			t.Errorf("%s: loaded", name)
		}
	}
}
