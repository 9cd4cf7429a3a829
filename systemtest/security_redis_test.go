package systemtest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rosterhq/roster/internal/cluster"
	"github.com/rosterhq/roster/internal/testcerts"
)

// TestRedisSecured: with -cert-file, -client-ca-file and -auth, the Redis
// port speaks TLS with client certificates and checks AUTH tokens with the
// HTTP port's rules; a token revoked over HTTP stops working on a RESP
// connection that is already open.
func TestRedisSecured(t *testing.T) {
	certs := testcerts.New(t)
	const root = "root-token-of-the-redis-test"
	redisAddr := cluster.FreePort(t)
	base := tlsClient(t, certs, &certs.Client)
	c := cluster.StartWith(t, 1, cluster.Options{Client: cluster.TokenClient(base, root)},
		append(tlsArgs(certs), "-auth", "-root-token-file", certs.TokenFile(t, root), "-redis", redisAddr)...)
	m := c.Leader(30 * time.Second)
	if code, b := as(t, base, root, "PUT", m.URL("/v1/auth/roles/api"), []byte(`{"rules":[{"prefix":"/services/api/","read":true,"write":true}]}`)); code != 200 {
		t.Fatalf("role: %d %s", code, b)
	}
	code, b := as(t, base, root, "POST", m.URL("/v1/auth/tokens"), []byte(`{"name":"redis-app","roles":["api"]}`))
	if code != 201 {
		t.Fatalf("token: %d %s", code, b)
	}
	id := strings.Split(strings.Split(string(b), `"id":"`)[1], `"`)[0]
	secret := strings.Split(strings.Split(string(b), `"token":"`)[1], `"`)[0]

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rc := redis.NewClient(&redis.Options{Addr: redisAddr, TLSConfig: certs.ClientTLS(t, &certs.Client), MaxRetries: -1, PoolSize: 1})
	defer rc.Close()
	conn := rc.Conn()
	defer conn.Close()
	if err := conn.Ping(ctx).Err(); err == nil || !strings.HasPrefix(err.Error(), "NOAUTH") {
		t.Fatalf("PING before AUTH: %v", err)
	}
	if err := conn.Do(ctx, "AUTH", "nope").Err(); err == nil {
		t.Fatal("AUTH with an unknown token succeeded")
	}
	if err := conn.Do(ctx, "AUTH", secret).Err(); err != nil {
		t.Fatalf("AUTH: %v", err)
	}
	if err := conn.Set(ctx, "services/api/r1", "x", 0).Err(); err != nil {
		t.Fatalf("SET in the role: %v", err)
	}
	if err := conn.Set(ctx, "other", "x", 0).Err(); err == nil || !strings.HasPrefix(err.Error(), "NOPERM") {
		t.Fatalf("SET outside the role: %v", err)
	}
	if err := conn.Get(ctx, "services/web/x").Err(); err == nil || !strings.HasPrefix(err.Error(), "NOPERM") {
		t.Fatalf("GET outside the role: %v", err)
	}
	// The write went through the same tables the HTTP port reads.
	if code, b := as(t, base, secret, "GET", m.URL("/v1/kv/services/api/r1"), nil); code != 200 || !strings.Contains(string(b), `"value":"x"`) {
		t.Fatalf("the key over HTTP: %d %s", code, b)
	}
	// Revoked over HTTP: the open RESP connection loses its rights.
	if code, b := as(t, base, root, "DELETE", m.URL("/v1/auth/tokens/"+id), nil); code != 200 {
		t.Fatalf("revoke: %d %s", code, b)
	}
	if err := conn.Set(ctx, "services/api/r2", "x", 0).Err(); err == nil {
		t.Fatal("a revoked token still writes on an open RESP connection")
	}
	// No client certificate: no connection at all.
	bare := redis.NewClient(&redis.Options{Addr: redisAddr, TLSConfig: certs.ClientTLS(t, nil), MaxRetries: -1})
	defer bare.Close()
	if err := bare.Ping(ctx).Err(); err == nil || strings.HasPrefix(err.Error(), "NOAUTH") {
		t.Fatalf("a client without a certificate reached the RESP port: %v", err)
	}
}
