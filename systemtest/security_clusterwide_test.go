package systemtest

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rosterhq/roster/internal/cluster"
)

// enforcingWithoutAuth is the start of the warning a member started
// without -auth logs once it enforces access control all the same.
const enforcingWithoutAuth = "this member enforces it on every port although it was started without -auth"

// TestAccessControlIsClusterWide: in a cluster made with -auth and a root
// token, a member started without -auth still needs a token for every
// request but the open ones (HTTP, seed routes and the console's API
// included), its Redis port needs AUTH, it says so once in its log, and
// after a restart, still without -auth, it enforces access control from
// its first answer on.
func TestAccessControlIsClusterWide(t *testing.T) {
	const root = "root-token-of-the-cluster-wide-test"
	file := filepath.Join(t.TempDir(), "root-token")
	if err := os.WriteFile(file, []byte(root), 0o600); err != nil {
		t.Fatal(err)
	}
	redisAddr := cluster.FreePort(t)
	plain := &http.Client{Timeout: 15 * time.Second}
	c := cluster.New(t)
	c.Client = cluster.TokenClient(plain, root)
	c.Env = []string{"ROSTER_TOKEN=" + root} // to join: an admin token
	m1, m2, m3 := c.Add(), c.Add(), c.Add()
	m1.Args = append(m1.Args, "-auth", "-root-token-file", file)
	m2.Args = append(m2.Args, "-auth")
	m3.Args = append(m3.Args, "-redis", redisAddr) // no -auth
	c.Boot(m1, m2, m3)

	c.Eventually(10*time.Second, "n3 applied the root token", func() bool {
		code, _ := as(t, plain, root, "GET", m3.URL("/v1/auth/whoami"), nil)
		return code == 200
	})
	refused := func(when string) {
		t.Helper()
		for _, tc := range []struct{ method, path, body string }{
			{"GET", "/v1/kv/services/a?stale=true", ""},
			{"PUT", "/v1/kv/services/a", "planted"},
			{"GET", "/v1/cluster/status", ""},
			{"POST", "/v1/auth/tokens", `{"name":"mine","roles":["root"]}`},
			{"PUT", "/key/services/b", "planted"},
			{"POST", "/put", `{"key":"services/c","value":"planted"}`},
		} {
			if code, b := send(t, plain, tc.method, m3.URL(tc.path), []byte(tc.body)); code != 401 {
				t.Errorf("%s: %s %s without a token on the member without -auth: %d %s", when, tc.method, tc.path, code, b)
			}
		}
		if code, b := send(t, plain, "GET", m3.URL("/healthz"), nil); code != 200 {
			t.Errorf("%s: /healthz: %d %s", when, code, b)
		}
	}
	refused("running")
	if code, b := as(t, plain, root, "PUT", m3.URL("/v1/kv/services/a"), []byte("1")); code != 200 {
		t.Fatalf("a write with the root token through n3: %d %s", code, b)
	}
	if code, b := as(t, plain, root, "GET", m1.URL("/v1/kv/services/c"), nil); code != 404 {
		t.Fatalf("a refused seed write went through: %d %s", code, b)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rc := redis.NewClient(&redis.Options{Addr: redisAddr, MaxRetries: -1, PoolSize: 1})
	defer rc.Close()
	conn := rc.Conn()
	if err := conn.Ping(ctx).Err(); err == nil || !strings.HasPrefix(err.Error(), "NOAUTH") {
		t.Fatalf("PING without AUTH on the member without -auth: %v", err)
	}
	if err := conn.Set(ctx, "services/r", "planted", 0).Err(); err == nil || !strings.HasPrefix(err.Error(), "NOAUTH") {
		t.Fatalf("SET without AUTH on the member without -auth: %v", err)
	}
	if err := conn.Do(ctx, "AUTH", root).Err(); err != nil {
		t.Fatalf("AUTH: %v", err)
	}
	if v, err := conn.Get(ctx, "services/a").Result(); err != nil || v != "1" {
		t.Fatalf("GET after AUTH: %q %v", v, err)
	}
	conn.Close()

	c.Eventually(10*time.Second, "n3 warned", func() bool { return strings.Contains(m3.Logs(), enforcingWithoutAuth) })
	if n := strings.Count(m3.Logs(), enforcingWithoutAuth); n != 1 {
		t.Fatalf("n3 warned %d times", n)
	}
	for _, m := range []*cluster.Member{m1, m2} {
		if strings.Contains(m.Logs(), enforcingWithoutAuth) {
			t.Fatalf("%s, started with -auth, warned that it was not", m.ID)
		}
	}

	// Restarted, still without -auth: in force from the first answer on.
	m3.Stop()
	m3.Start()
	c.WaitServing(30*time.Second, m3)
	refused("restarted")
	c.Eventually(10*time.Second, "n3 warned again", func() bool { return strings.Count(m3.Logs(), enforcingWithoutAuth) == 2 })
}
