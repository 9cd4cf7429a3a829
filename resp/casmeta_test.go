package resp

import (
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/rosterhq/roster/fsm"
)

// TestWriteOnlyCASShowsNoRevision: the commands that compare-and-swap
// (SET NX, SETNX, SET XX, GETEX and EXPIRE's loops) answer a failed
// compare with a nil reply, 0 or another try, never with the key's mod
// revision, so a token that may write a key but not read it learns no
// more than Redis's ACLs let it; and a failed compare's error text, should
// one ever reach a client, does not say it either (as over HTTP,
// cas_failed without current_mod_revision).
func TestWriteOnlyCASShowsNoRevision(t *testing.T) {
	t.Parallel()
	if txt := errorText(&fsm.CASError{Current: 424242}); strings.Contains(txt, "424242") || !strings.HasPrefix(txt, "ERR ") {
		t.Fatalf("a failed compare's RESP error %q", txt)
	}
	auth := &testAuth{tokens: map[string]testIdentity{"drop": {write: []string{"/drop/"}}}}
	e := newEnvWith(t, func(c *Config) { c.Auth = auth })
	conn := e.client().Conn()
	defer conn.Close()
	if err := conn.Do(ctx(), "AUTH", "drop").Err(); err != nil {
		t.Fatal(err)
	}
	if err := conn.Set(ctx(), "drop/x", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := conn.SetNX(ctx(), "drop/x", "2", 0).Result(); err != nil || n {
		t.Fatalf("SETNX on a key that exists: %v %v", n, err)
	}
	if err := conn.Do(ctx(), "SET", "drop/x", "2", "NX").Err(); err != redis.Nil {
		t.Fatalf("SET NX on a key that exists: %v", err)
	}
	if err := conn.Do(ctx(), "SET", "drop/x", "3", "XX").Err(); err != nil {
		t.Fatalf("SET XX on a key that exists: %v", err)
	}
	wantErr(t, conn.Get(ctx(), "drop/x").Err(), "NOPERM this token has no permission to read /drop/x")
}
