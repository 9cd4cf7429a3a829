package main

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rosterhq/roster/client"
	"github.com/rosterhq/roster/internal/cluster"
	"github.com/rosterhq/roster/internal/testcerts"
)

// TestAuth runs rosterctl against a secured member: HTTPS with client
// certificates required and access control on.
func TestAuth(t *testing.T) {
	t.Parallel()
	certs := testcerts.New(t)
	const root = "root-token-of-the-rosterctl-test"
	file := certs.TokenFile(t, root)
	tlsc, err := testcertsClient(certs)
	if err != nil {
		t.Fatal(err)
	}
	c := cluster.StartWith(t, 1, cluster.Options{Client: cluster.TokenClient(tlsc, root)},
		"-cert-file", certs.Server.CertFile, "-key-file", certs.Server.KeyFile, "-client-ca-file", certs.CAFile(),
		"-auth", "-root-token-file", file)
	c.Leader(30 * time.Second)

	s := newSession(t, c)
	s.lit = append(s.lit, certs.Dir, "<CERTS>")
	s.replace(`roster_[A-Za-z0-9_-]{43}`, "<SECRET>")
	// Token IDs before lease IDs: one in about 1,800 token IDs is 16
	// decimal digits, which the lease pattern would take. (Lease IDs are
	// 19 digits, never 16.)
	tokenIDs := replacement{re: regexp.MustCompile(`\b[0-9a-f]{16}\b`), fn: func(string) string { return placeholder("TOKEN_ID", 16) }}
	s.res = append([]replacement{tokenIDs}, s.res...)
	tlsFlags := []string{"--cacert", certs.CAFile(), "--cert", certs.Client.CertFile, "--key", certs.Client.KeyFile}
	run := func(code int, args ...string) result {
		t.Helper()
		r := s.run(append(append([]string{}, tlsFlags...), args...)...)
		expect(t, r, code)
		return r
	}

	run(exitDenied, "get", "/services/api/n1") // no token
	run(exitDenied, "--token", "roster_unknown", "auth", "whoami")
	s.env[envToken] = root
	run(exitOK, "auth", "whoami")
	run(exitOK, "auth", "role", "put", "api-registrar", "--readwrite", "/services/api/", "--read", "/config/")
	run(exitOK, "auth", "role", "put", "discoverer", "--read", "/services/")
	run(exitOK, "-o", "json", "auth", "role", "get", "api-registrar")
	run(exitOK, "auth", "role", "list")
	r := run(exitOK, "-o", "json", "auth", "token", "create", "api-node-1", "--role", "api-registrar")
	var tok struct{ ID, Token string }
	if err := json.Unmarshal([]byte(r.stdout), &tok); err != nil || !strings.HasPrefix(tok.Token, "roster_") {
		t.Fatalf("token create: %q %v", r.stdout, err)
	}
	run(exitOK, "auth", "token", "list") // sorted by ID: root comes after the hex IDs
	run(exitOK, "auth", "token", "create", "web", "--role", "discoverer")
	run(exitOK, "--token", tok.Token, "put", "/services/api/n1", "10.0.0.1:8080")
	run(exitOK, "--token", tok.Token, "get", "--prefix", "/services/api/")
	run(exitDenied, "--token", tok.Token, "put", "/other", "x")
	run(exitDenied, "--token", tok.Token, "get", "--prefix", "/services/")
	run(exitOK, "--token", tok.Token, "auth", "whoami")
	run(exitDenied, "--token", tok.Token, "auth", "token", "list")
	run(exitOK, "auth", "token", "revoke", tok.ID)
	run(exitDenied, "--token", tok.Token, "get", "/services/api/n1")
	run(exitOK, "auth", "role", "delete", "discoverer")
	expectHint(t, run(exitUsage, "auth", "token", "create", "nobody"), true)
	// The server refuses the built-in role's change: bad input, but no
	// usage hint; the message ends with the server's status and code.
	r = run(exitUsage, "auth", "role", "put", "root", "--admin")
	expectHint(t, r, false)
	expectStderr(t, r, "(refused by the server: 400 invalid_argument)")
	// A role, token or member that does not exist is "not found", as a key
	// is; a role named by token create too (the server refuses it as
	// invalid: rosterctl asks for the role).
	expectStderr(t, run(exitNotFound, "auth", "role", "get", "nobody"), `role not found: "nobody"`)
	expectStderr(t, run(exitNotFound, "auth", "role", "delete", "nobody"), `role not found: "nobody"`)
	expectStderr(t, run(exitNotFound, "auth", "token", "revoke", "0123456789abcdef"), `token not found: "0123456789abcdef"`)
	expectStderr(t, run(exitNotFound, "member", "remove", "nobody"), "not a member of the cluster: nobody")
	r = run(exitNotFound, "auth", "token", "create", "nobody", "--role", "api-registrar", "--role", "no-such-role")
	expectStderr(t, r, `no token created: role not found: "no-such-role"`)
	expectHint(t, r, false)
	// Another refusal of token create stays bad input.
	expectHint(t, run(exitUsage, "auth", "token", "create", "twice", "--role", "api-registrar", "--role", "api-registrar"), false)
	s.golden("auth")

	// status reaches the member's https address with the same files and
	// token (its indexes vary: not in the golden file).
	if r := s.run(append(append([]string{}, tlsFlags...), "-o", "json", "status")...); r.code != 0 || !strings.Contains(r.stdout, `"health": "ready"`) || !strings.Contains(r.stdout, `"term"`) {
		t.Fatalf("status: %d %s %s", r.code, r.stdout, r.stderr)
	}
}

// testcertsClient is an HTTP client that trusts the set's CA and presents
// its client certificate.
func testcertsClient(certs *testcerts.Set) (*http.Client, error) {
	tc, err := client.LoadTLS(certs.CAFile(), certs.Client.CertFile, certs.Client.KeyFile)
	if err != nil {
		return nil, err
	}
	return &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}, nil
}
