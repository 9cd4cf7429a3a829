package systemtest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rosterhq/roster/internal/cluster"
	"github.com/rosterhq/roster/internal/testcerts"
)

// secureCluster starts n members with TLS everywhere, client certificates
// required and access control on; the root token is in a file, and every
// member gets it as ROSTER_TOKEN to join. The cluster's client presents
// the client certificate and the root token.
func secureCluster(t *testing.T, n int) (*cluster.Cluster, *http.Client, string) {
	t.Helper()
	certs := testcerts.New(t)
	var b [16]byte
	rand.Read(b[:])
	root := "root-" + hex.EncodeToString(b[:])
	file := certs.TokenFile(t, root)
	base := tlsClient(t, certs, &certs.Client)
	args := append(tlsArgs(certs), "-auth", "-root-token-file", file)
	c := cluster.StartWith(t, n, cluster.Options{Client: cluster.TokenClient(base, root), Env: []string{"ROSTER_TOKEN=" + root}}, args...)
	return c, base, root
}

// as sends a request with a bearer token over base.
func as(t testing.TB, base *http.Client, token, method, url string, body []byte) (int, []byte) {
	t.Helper()
	return send(t, cluster.TokenClient(base, token), method, url, body)
}

// TestSecuredClusterTokens: members with TLS, client certificates and
// access control join each other with the root token; a token created on
// one member works through every member and, once deleted, stops working
// on every member; a member without an admin token cannot join; no secret
// reaches a file under the data directories or the logs.
func TestSecuredClusterTokens(t *testing.T) {
	c, base, root := secureCluster(t, 3)
	leader := c.Leader(30 * time.Second)
	followers := c.Followers(leader)

	code, b := as(t, base, root, "PUT", followers[0].URL("/v1/auth/roles/api"), []byte(`{"rules":[{"prefix":"/services/api/","read":true,"write":true}]}`))
	if code != 200 {
		t.Fatalf("put role via a follower: %d %s", code, b)
	}
	code, b = as(t, base, root, "POST", followers[1].URL("/v1/auth/tokens"), []byte(`{"name":"api-registrar","roles":["api"]}`))
	if code != 201 {
		t.Fatalf("create token via a follower: %d %s", code, b)
	}
	var tok struct{ ID, Token string }
	if err := json.Unmarshal(b, &tok); err != nil || tok.Token == "" {
		t.Fatalf("created token: %s %v", b, err)
	}
	// The token works through every member once each has applied it.
	for i, m := range c.Members {
		key := "/v1/kv/services/api/n" + string(rune('1'+i))
		c.Eventually(10*time.Second, "the token works on "+m.ID, func() bool {
			code, _ := as(t, base, tok.Token, "PUT", m.URL(key), []byte("x"))
			return code == 200
		})
		if code, b := as(t, base, tok.Token, "PUT", m.URL("/v1/kv/other"), []byte("x")); code != 403 || !bytes.Contains(b, []byte("permission_denied")) {
			t.Fatalf("write outside the role via %s: %d %s", m.ID, code, b)
		}
		if code, b := as(t, base, tok.Token, "POST", m.URL("/v1/cluster/snapshot"), nil); code != 403 {
			t.Fatalf("an admin route answered a non-admin token on %s: %d %s", m.ID, code, b)
		}
	}
	// A member asking to join without an admin token is refused, and the
	// cluster keeps its three voters.
	intruder := c.Add()
	intruder.Env = nil
	intruder.Start("-join", leader.HTTP)
	c.Eventually(20*time.Second, "the join without a token refused", func() bool {
		return strings.Contains(intruder.Logs(), "join attempt failed") && strings.Contains(intruder.Logs(), "401")
	})
	intruder.Kill()
	if info := clusterView(t, c, leader); len(info.Members) != 3 {
		t.Fatalf("members after the refused join: %+v", info.Members)
	}

	// Deleting the token (through a follower) stops it on every member.
	if code, b := as(t, base, root, "DELETE", followers[0].URL("/v1/auth/tokens/"+tok.ID), nil); code != 200 {
		t.Fatalf("delete token: %d %s", code, b)
	}
	for _, m := range c.Running() {
		c.Eventually(10*time.Second, "the deleted token refused by "+m.ID, func() bool {
			code, b := as(t, base, tok.Token, "GET", m.URL("/v1/kv/services/api/n1?stale=true"), nil)
			return code == 401 && bytes.Contains(b, []byte("unauthenticated"))
		})
	}
	// The refused joiner changed nothing, and an audit line names the token
	// that made each change.
	if !strings.Contains(leader.Logs()+followers[0].Logs()+followers[1].Logs(), "audit: token created") {
		t.Error("no audit line for the token's creation")
	}

	// Stop everything gracefully (state files synced), then look for the
	// secrets in every file of every data directory and in every log.
	for _, m := range c.Running() {
		m.Stop()
	}
	secrets := map[string]string{"root token": root, "created token": tok.Token}
	for _, m := range c.Members {
		err := filepath.WalkDir(m.Dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for what, s := range secrets {
				if bytes.Contains(data, []byte(s)) {
					t.Errorf("the %s is in %s", what, path)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		// rosterd's own output; the harness's "==== run" lines show the
		// environment it passed (ROSTER_TOKEN), which is not rosterd's doing.
		var logs strings.Builder
		for _, line := range strings.Split(m.Logs(), "\n") {
			if !strings.HasPrefix(line, "==== ") {
				logs.WriteString(line + "\n")
			}
		}
		for what, s := range secrets {
			if strings.Contains(logs.String(), s) {
				t.Errorf("the %s is in the log of %s", what, m.ID)
			}
		}
	}
}
