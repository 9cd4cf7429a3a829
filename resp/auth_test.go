package resp

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"
)

// testIdentity grants read and write under its prefixes; admin when set.
type testIdentity struct {
	read, write []string
	admin       bool
}

func covered(prefixes []string, k string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(k, p) {
			return true
		}
	}
	return false
}

func (i testIdentity) CanRead(k string) bool  { return covered(i.read, k) }
func (i testIdentity) CanWrite(k string) bool { return covered(i.write, k) }
func (i testIdentity) Admin() bool            { return i.admin }

// testAuth knows a set of tokens: the hook's contract, not storage.
type testAuth struct {
	mu     sync.Mutex
	tokens map[string]testIdentity
}

func (a *testAuth) Authenticate(_ context.Context, token string) (Identity, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	id, ok := a.tokens[token]
	if !ok {
		return nil, errors.New("unknown token")
	}
	return id, nil
}

// TestAuthHook: with an Authenticator, only AUTH, HELLO and QUIT work
// before AUTH; a bad token is WRONGPASS; then every key a command names is
// checked, a refused command changes nothing, and the token is checked
// again for every pipeline.
func TestAuthHook(t *testing.T) {
	t.Parallel()
	auth := &testAuth{tokens: map[string]testIdentity{
		"api":  {read: []string{"/services/"}, write: []string{"/services/api/"}},
		"root": {read: []string{"/"}, write: []string{"/"}, admin: true},
	}}
	e := newEnvWith(t, func(c *Config) { c.Auth = auth })
	c := e.client()
	conn := c.Conn()
	defer conn.Close()
	wantErr(t, conn.Ping(ctx()).Err(), "NOAUTH Authentication required.")
	wantErr(t, conn.Get(ctx(), "services/api/a").Err(), "NOAUTH Authentication required.")
	wantErr(t, conn.Do(ctx(), "HELLO", "3").Err(), "ERR unknown command 'HELLO'")
	wantErr(t, conn.Do(ctx(), "AUTH", "nope").Err(), "WRONGPASS invalid username-password pair or user is disabled.")
	if err := conn.Do(ctx(), "AUTH", "default", "api").Err(); err != nil {
		t.Fatalf("AUTH user token: %v", err)
	}
	if err := conn.Set(ctx(), "services/api/a", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []any
		want string
	}{
		{[]any{"SET", "services/db/a", "1"}, "NOPERM this token has no permission to write /services/db/a"},
		{[]any{"MSET", "services/api/b", "1", "other", "2"}, "NOPERM this token has no permission to write /other"},
		{[]any{"GET", "other"}, "NOPERM this token has no permission to read /other"},
		{[]any{"KEYS", "*"}, "NOPERM this token has no permission to read /"},
		{[]any{"SCAN", "0"}, "NOPERM this token has no permission to read /"},
		{[]any{"DBSIZE"}, "NOPERM this token has no permission to read /"},
		{[]any{"SNAPSHOT"}, "NOPERM this token has no permission to run 'snapshot' (admin only)"},
		{[]any{"PSUBSCRIBE", "*"}, "NOPERM this token has no permission to read /"},
	} {
		wantErr(t, conn.Do(ctx(), tc.args...).Err(), tc.want)
	}
	if _, ok := e.value("/services/api/b"); ok {
		t.Fatal("a refused MSET wrote")
	}
	if keys, err := conn.Keys(ctx(), "services/*").Result(); err != nil || len(keys) != 1 {
		t.Fatalf("KEYS services/*: %v %v", keys, err)
	}
	if err := conn.Get(ctx(), "services/db/x").Err(); err != redis.Nil {
		t.Fatalf("GET a readable absent key: %v", err)
	}
	if err := conn.Do(ctx(), "AUTH", "root").Err(); err != nil {
		t.Fatal(err)
	}
	if err := conn.Do(ctx(), "SNAPSHOT").Err(); err != nil {
		t.Fatalf("SNAPSHOT as admin: %v", err)
	}
	// A token deleted after AUTH stops working at the next command.
	auth.mu.Lock()
	delete(auth.tokens, "root")
	auth.mu.Unlock()
	wantErr(t, conn.Get(ctx(), "services/api/a").Err(), "NOAUTH Authentication required.")
}
