package resp

import (
	"strings"
	"testing"
)

// TestInfoKeyspaceFollowsDBSizeRule: INFO's keyspace section tells the key
// count, which DBSIZE answers only to a token that may read "/". A token
// that may not gets INFO all the same (monitoring tools send it), with
// the section as Redis writes an empty keyspace's, which go-redis parses.
func TestInfoKeyspaceFollowsDBSizeRule(t *testing.T) {
	t.Parallel()
	auth := &testAuth{tokens: map[string]testIdentity{
		"narrow": {read: []string{"/services/"}, write: []string{"/services/"}},
		"root":   {read: []string{"/"}, write: []string{"/"}, admin: true},
	}}
	e := newEnvWith(t, func(c *Config) { c.Auth = auth })
	conn := e.client().Conn()
	defer conn.Close()
	if err := conn.Do(ctx(), "AUTH", "root").Err(); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"services/a", "private/b"} {
		if err := conn.Set(ctx(), k, "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]any{{"INFO"}, {"INFO", "keyspace"}} {
		text, err := conn.Do(ctx(), args...).Text()
		if err != nil || !strings.Contains(text, "# Keyspace\r\ndb0:keys=2,") {
			t.Fatalf("%v by a token that may read /: %q %v", args, text, err)
		}
	}

	if err := conn.Do(ctx(), "AUTH", "narrow").Err(); err != nil {
		t.Fatal(err)
	}
	wantErr(t, conn.DBSize(ctx()).Err(), "NOPERM this token has no permission to read /")
	for _, args := range [][]any{{"INFO"}, {"INFO", "keyspace"}, {"INFO", "all"}} {
		text, err := conn.Do(ctx(), args...).Text()
		if err != nil {
			t.Fatalf("%v by a token that may not read /: %v", args, err)
		}
		if !strings.Contains(text, "# Keyspace\r\n") || strings.Contains(text, "db0") || strings.Contains(text, "keys=") {
			t.Fatalf("%v by a token that may not read / tells the key count: %q", args, text)
		}
	}
	if text, _ := conn.Info(ctx()).Result(); !strings.Contains(text, "# Server") {
		t.Fatalf("INFO lost its other sections: %q", text)
	}
	m, err := conn.InfoMap(ctx(), "keyspace").Result()
	if err != nil {
		t.Fatalf("go-redis parsing the keyspace section: %v", err)
	}
	if ks, ok := m["Keyspace"]; !ok || len(ks) != 0 {
		t.Fatalf("go-redis sees the keyspace section as %v (present %v), want empty", ks, ok)
	}
}
