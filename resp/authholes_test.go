package resp

import (
	"testing"
)

// TestAuthSetGetNeedsRead: SET … GET answers the key's old value, which is
// a read: a token that may write a key but not read it gets NOPERM, and
// the refused SET writes nothing.
func TestAuthSetGetNeedsRead(t *testing.T) {
	t.Parallel()
	auth := &testAuth{tokens: map[string]testIdentity{
		"writer": {write: []string{"/drop/"}},
		"root":   {read: []string{"/"}, write: []string{"/"}, admin: true},
	}}
	e := newEnvWith(t, func(c *Config) { c.Auth = auth })
	conn := e.client().Conn()
	defer conn.Close()
	if err := conn.Do(ctx(), "AUTH", "root").Err(); err != nil {
		t.Fatal(err)
	}
	if err := conn.Set(ctx(), "drop/x", "secret", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := conn.Do(ctx(), "AUTH", "writer").Err(); err != nil {
		t.Fatal(err)
	}
	wantErr(t, conn.Get(ctx(), "drop/x").Err(), "NOPERM this token has no permission to read /drop/x")
	for _, args := range [][]any{
		{"SET", "drop/x", "mine", "GET"},
		{"SET", "drop/x", "mine", "get", "EX", "10"},
		{"SET", "drop/x", "mine", "NX", "GET"},
		{"SET", "drop/x", "mine", "XX", "GET"},
	} {
		v, err := conn.Do(ctx(), args...).Result()
		if err == nil {
			t.Fatalf("%v by a write-only token: %v, want NOPERM", args, v)
		}
		wantErr(t, err, "NOPERM this token has no permission to read /drop/x")
	}
	if v, _ := e.value("/drop/x"); v != "secret" {
		t.Fatalf("a refused SET wrote: %q", v)
	}
	// Without GET the write is allowed.
	if err := conn.Set(ctx(), "drop/x", "mine", 0).Err(); err != nil {
		t.Fatal(err)
	}
}
