package main

import (
	"crypto/tls"
	"io"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rosterhq/roster/internal/testcerts"
	"github.com/rosterhq/roster/internal/testutil"
)

// httpsGet fetches path from the server with the given client TLS
// configuration and returns the status, or the error.
func httpsGet(addr, path string, cfg *tls.Config) (*http.Response, error) {
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}}
	resp, err := hc.Get("https://" + addr + path)
	if err != nil {
		return nil, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp, nil
}

func TestRosterdServesHTTPS(t *testing.T) {
	certs := testcerts.New(t)
	// The server's certificate lives in copies the test replaces later.
	live := testcerts.Pair{CertFile: t.TempDir() + "/server.crt", KeyFile: t.TempDir() + "/server.key"}
	certs.Server.CopyTo(t, live)
	s := start(t, append(fastArgs(t.TempDir()), "-cert-file", live.CertFile, "-key-file", live.KeyFile)...)
	t.Cleanup(func() { s.stop() })
	trust := certs.ClientTLS(t, nil)

	testutil.Eventually(t, 15*time.Second, "/readyz over https", func() bool {
		resp, err := httpsGet(s.addr, "/readyz", trust)
		return err == nil && resp.StatusCode == http.StatusOK
	})
	// Plain HTTP to the TLS port is refused (Go's server answers 400 to a
	// plain request on a TLS port, and serves nothing).
	resp, err := http.Get("http://" + s.addr + "/healthz")
	if err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK || strings.Contains(string(b), `"ok"`) {
			t.Fatalf("plain HTTP to the TLS port was served: %d %s", resp.StatusCode, b)
		}
	}
	// A client that does not trust the CA refuses the server.
	if _, err := httpsGet(s.addr, "/healthz", &tls.Config{RootCAs: certs.Rogue.Pool()}); err == nil {
		t.Fatal("a client trusting only the rogue CA accepted the server")
	}
	// The member advertises an https address.
	resp, err = httpsGet(s.addr, "/v1/cluster", trust)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/v1/cluster: %v %v", resp, err)
	}
	var rec map[string]any
	testutil.Eventually(t, 5*time.Second, "serving log", func() bool { rec = s.stderr.find("rosterd serving"); return rec != nil })
	if rec["advertise_http"] != "https://127.0.0.1:0" || rec["tls"] != true {
		t.Errorf("serving log: %v", rec)
	}

	// SIGHUP reloads the certificate: the next connection sees the new one.
	next := certs.CA.Sign(t, t.TempDir(), "next", "roster-server-2", true)
	next.CopyTo(t, live)
	s.sigs <- syscall.SIGHUP
	testutil.Eventually(t, 10*time.Second, "the new certificate served", func() bool {
		c, err := tls.Dial("tcp", s.addr, trust)
		if err != nil {
			return false
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].Subject.CommonName == "roster-server-2"
	})
	if s.stderr.find("SIGHUP: reloading TLS certificates") == nil {
		t.Error("no log line for the SIGHUP reload")
	}
}

func TestRosterdRequiresClientCertificates(t *testing.T) {
	certs := testcerts.New(t)
	s := start(t, append(fastArgs(t.TempDir()), "-cert-file", certs.Server.CertFile, "-key-file", certs.Server.KeyFile,
		"-client-ca-file", certs.CAFile())...)
	t.Cleanup(func() { s.stop() })
	good := certs.ClientTLS(t, &certs.Client)
	testutil.Eventually(t, 15*time.Second, "/readyz with a client certificate", func() bool {
		resp, err := httpsGet(s.addr, "/readyz", good)
		return err == nil && resp.StatusCode == http.StatusOK
	})
	// Every route, probes included, needs the certificate.
	for _, path := range []string{"/healthz", "/readyz", "/metrics", "/v1/cluster"} {
		if resp, err := httpsGet(s.addr, path, certs.ClientTLS(t, nil)); err == nil {
			t.Errorf("%s without a client certificate: %d", path, resp.StatusCode)
		}
		if resp, err := httpsGet(s.addr, path, certs.ClientTLS(t, &certs.RogueClient)); err == nil {
			t.Errorf("%s with a rogue client certificate: %d", path, resp.StatusCode)
		}
		if resp, err := httpsGet(s.addr, path, good); err != nil || resp.StatusCode != http.StatusOK {
			t.Errorf("%s with a good client certificate: %v %v", path, resp, err)
		}
	}
	// A member's peer certificate is signed by the same CA here: accepted.
	if resp, err := httpsGet(s.addr, "/healthz", certs.ClientTLS(t, &certs.Peer)); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("peer certificate: %v %v", resp, err)
	}
}

func TestRosterdBadCertificateFilesAreUsageErrors(t *testing.T) {
	certs := testcerts.New(t)
	var stderr syncBuffer
	env := environment{getenv: func(string) string { return "" }, hostname: os.Hostname}
	args := append(fastArgs(t.TempDir()), "-cert-file", certs.Server.CertFile, "-key-file", certs.Peer.KeyFile)
	if got := rosterd(t.Context(), args, env, &stderr, nil); got != exitUsage || !strings.Contains(stderr.String(), "private key does not match") {
		t.Errorf("mismatched key: exit %d\n%s", got, stderr.String())
	}
}
