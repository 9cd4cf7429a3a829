package registry_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/rosterhq/roster/api"
	"github.com/rosterhq/roster/httpapi"
	"github.com/rosterhq/roster/internal/logging/logtest"
	"github.com/rosterhq/roster/internal/testutil"
	"github.com/rosterhq/roster/registry"
	"github.com/rosterhq/roster/resp"
)

// The front ends on a follower held behind a token's creation
// (registry.StartHeldFollower): a request with the new token waits for the
// follower to apply it and succeeds, not before; an unknown token is
// still refused; without a leader the answer is the retryable one.

// serveHTTP serves the HTTP API of n, access control on.
func serveHTTP(t *testing.T, n *registry.Node) string {
	srv, err := httpapi.New(httpapi.Config{Auth: true}, n, logtest.ForTest(t).With("http", n.ID()), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return ts.URL
}

type httpAnswer struct {
	code int
	body []byte
}

func whoami(t *testing.T, url, token string) httpAnswer {
	req, err := http.NewRequest("GET", url+"/v1/auth/whoami", nil)
	if err != nil {
		t.Error(err)
		return httpAnswer{}
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return httpAnswer{}
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return httpAnswer{res.StatusCode, body}
}

func errCode(t *testing.T, a httpAnswer) string {
	var e api.ErrorResponse
	if err := json.Unmarshal(a.body, &e); err != nil {
		t.Fatalf("%d %s: %v", a.code, a.body, err)
	}
	return e.Error.Code
}

// TestHTTPNewTokenOnAHeldFollower: the HTTP API of the held follower
// answers a request with the new token once it has applied the token.
func TestHTTPNewTokenOnAHeldFollower(t *testing.T) {
	h := registry.StartHeldFollower(t)
	url := serveHTTP(t, h.Follower)
	done := make(chan httpAnswer, 1)
	go func() { done <- whoami(t, url, h.Secret) }()
	testutil.Eventually(t, 10*time.Second, "the request waits for the token", func() bool { return h.Waits() == 1 })
	select {
	case a := <-done:
		t.Fatalf("answered before the follower applied the token: %d %s", a.code, a.body)
	default:
	}
	h.Release()
	a := <-done
	var w api.WhoAmI
	if a.code != 200 || json.Unmarshal(a.body, &w) != nil || w.ID != h.Token.ID {
		t.Fatalf("whoami with the new token on the follower: %d %s", a.code, a.body)
	}
	if _, err := h.Follower.Authenticate(h.Secret); err != nil {
		t.Fatalf("answered before the follower applied the token: %v", err)
	}
	a = whoami(t, url, "roster_no-such-token")
	if a.code != 401 || errCode(t, a) != api.CodeUnauthenticated {
		t.Fatalf("an unknown token on the follower: %d %s, want 401 unauthenticated", a.code, a.body)
	}
}

// TestHTTPUnknownTokenWithoutLeader: a follower cut off from the others
// answers a token it does not know with 503 no_leader (the token may be
// valid; nothing changed; a client retries it elsewhere).
func TestHTTPUnknownTokenWithoutLeader(t *testing.T) {
	h := registry.StartHeldFollower(t)
	url := serveHTTP(t, h.Follower)
	h.Leader.Close()
	h.Other.Close()
	h.Release()
	a := whoami(t, url, "roster_no-such-token")
	if a.code != 503 || errCode(t, a) != api.CodeNoLeader {
		t.Fatalf("an unknown token on a member without a leader: %d %s, want 503 no_leader", a.code, a.body)
	}
	// A token it knows still works: no question to ask.
	if a := whoami(t, url, h.RootSecret); a.code != 200 {
		t.Fatalf("the root token on a member without a leader: %d %s", a.code, a.body)
	}
}

// nodeTokens is rosterd's Authenticator: the node's applied tokens.
type nodeTokens struct{ n *registry.Node }

func (a nodeTokens) Authenticate(_ context.Context, token string) (resp.Identity, error) {
	p, err := a.n.Authenticate(token)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// serveRedis serves the Redis port of n, access control on.
func serveRedis(t *testing.T, n *registry.Node) *redis.Conn {
	srv, err := resp.New(resp.Config{Auth: nodeTokens{n}}, n, logtest.ForTest(t).With("redis", n.ID()))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close(); <-served })
	conn := redis.NewClient(&redis.Options{Addr: ln.Addr().String(), MaxRetries: -1}).Conn()
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// TestRedisAuthNewTokenOnAHeldFollower: AUTH with the new token on the
// held follower succeeds once it has applied the token; an unknown token
// is still WRONGPASS.
func TestRedisAuthNewTokenOnAHeldFollower(t *testing.T) {
	h := registry.StartHeldFollower(t)
	conn := serveRedis(t, h.Follower)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- conn.Do(ctx, "AUTH", h.Secret).Err() }()
	testutil.Eventually(t, 10*time.Second, "AUTH waits for the token", func() bool { return h.Waits() == 1 })
	select {
	case err := <-done:
		t.Fatalf("AUTH answered before the follower applied the token: %v", err)
	default:
	}
	h.Release()
	if err := <-done; err != nil {
		t.Fatalf("AUTH with the new token on the follower: %v", err)
	}
	if _, err := h.Follower.Authenticate(h.Secret); err != nil {
		t.Fatalf("AUTH answered before the follower applied the token: %v", err)
	}
	if err := conn.Set(ctx, "services/a", "1", 0).Err(); err != nil {
		t.Fatalf("SET after AUTH: %v", err)
	}
	if err := conn.Do(ctx, "AUTH", "roster_no-such-token").Err(); err == nil || err.Error() != "WRONGPASS invalid username-password pair or user is disabled." {
		t.Fatalf("AUTH with an unknown token: %v, want WRONGPASS", err)
	}
}

// TestRedisAuthUnknownTokenWithoutLeader: AUTH with a token the member
// does not know, with no leader to ask, is TRYAGAIN.
func TestRedisAuthUnknownTokenWithoutLeader(t *testing.T) {
	h := registry.StartHeldFollower(t)
	conn := serveRedis(t, h.Follower)
	h.Leader.Close()
	h.Other.Close()
	h.Release()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err := conn.Do(ctx, "AUTH", "roster_no-such-token").Err()
	if err == nil || err.Error() != "TRYAGAIN no leader" {
		t.Fatalf("AUTH with an unknown token without a leader: %v, want TRYAGAIN", err)
	}
	if err := conn.Do(ctx, "AUTH", h.RootSecret).Err(); err != nil {
		t.Fatalf("AUTH with the root token without a leader: %v", err)
	}
}
