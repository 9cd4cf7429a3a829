package resp

import (
	"bufio"
	"testing"

	"github.com/rosterhq/roster/fsm"
)

// TestExecRefusedEndsTheTransaction: an EXEC refused as a command (the
// connection's token deleted since MULTI: NOAUTH; a wrong number of
// arguments) ends the transaction, as Redis 7 does, answering
// -EXECABORT with the reason: the connection can AUTH again and work,
// instead of being held in MULTI, where AUTH is refused and EXEC and
// DISCARD answer NOAUTH. Nothing queued is written.
func TestExecRefusedEndsTheTransaction(t *testing.T) {
	t.Parallel()
	auth := &testAuth{tokens: map[string]testIdentity{
		"gone": {read: []string{"/"}, write: []string{"/"}},
		"kept": {read: []string{"/"}, write: []string{"/"}},
	}}
	e := newEnvWith(t, func(c *Config) { c.Auth = auth })
	conn := e.dial()
	defer conn.Close()
	r := bufio.NewReader(conn)
	send := func(cmd string, want ...string) {
		t.Helper()
		w := wire(cmd)
		w = w[:len(w)-len("*1\r\n$4\r\nQUIT\r\n")]
		if _, err := conn.Write([]byte(w)); err != nil {
			t.Fatal(err)
		}
		for _, line := range want {
			got, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("%s: reading %q: %v", cmd, line, err)
			}
			if got != line+"\r\n" {
				t.Fatalf("%s answered %q, want %q", cmd, got, line)
			}
		}
	}
	send("AUTH gone", "+OK")
	send("WATCH w", "+OK")
	send("MULTI", "+OK")
	send("SET a 1", "+QUEUED")
	auth.mu.Lock()
	delete(auth.tokens, "gone")
	auth.mu.Unlock()
	send("EXEC", "-EXECABORT Transaction discarded because of: NOAUTH Authentication required.")
	send("DISCARD", "-NOAUTH Authentication required.")
	send("AUTH kept", "+OK")
	send("DISCARD", "-ERR DISCARD without MULTI")
	send("GET a", "$-1")
	send("MULTI", "+OK")
	send("SET a 2", "+QUEUED")
	send("EXEC extra", "-EXECABORT Transaction discarded because of: wrong number of arguments for 'exec' command")
	send("EXEC", "-ERR EXEC without MULTI")
	// Outside MULTI too, as Redis 7: the watches end.
	send("WATCH a", "+OK")
	send("EXEC extra", "-EXECABORT Transaction discarded because of: wrong number of arguments for 'exec' command")
	other := e.dial()
	defer other.Close()
	if got := exchange(t, other, wire("AUTH kept", "SET a 3")); got != transcript("+OK", "+OK") {
		t.Fatalf("SET a 3 on another connection: %q", got)
	}
	send("MULTI", "+OK")
	send("SET a 4", "+QUEUED")
	send("EXEC", "*1", "+OK") // the watch on a ended with the refused EXEC
	send("DEL a", ":1")
	send("GET a", "$-1")
	if _, ok := e.value("/a"); ok {
		t.Fatal("a write survived its DEL")
	}
}

// TestExecWatchedKeyNoLongerReadable: a key watched while the connection
// could read it, and no longer readable at EXEC (another token after
// AUTH, or the roles narrowed), ends the transaction with -EXECABORT
// NOPERM, writing nothing: EXEC answering the nil array or not would tell
// the token whether the key changed. (On a follower the leader refused
// such a transaction anyway, its compare needing read on the key.)
func TestExecWatchedKeyNoLongerReadable(t *testing.T) {
	t.Parallel()
	auth := &testAuth{tokens: map[string]testIdentity{
		"all":  {read: []string{"/"}, write: []string{"/"}},
		"mine": {read: []string{"/mine/"}, write: []string{"/mine/"}},
	}}
	e := newEnvWith(t, func(c *Config) { c.Auth = auth })
	for _, changed := range []bool{false, true} {
		got := exchange(t, e.dial(), wire("AUTH all", "WATCH secret", "AUTH mine", "MULTI", "SET mine/x 1", "EXEC", "GET mine/x"))
		want := transcript("+OK", "+OK", "+OK", "+OK", "+QUEUED",
			"-EXECABORT Transaction discarded because of: NOPERM this token has no permission to read /secret", "$-1")
		if got != want {
			t.Fatalf("secret changed %v: transcript\n%q\nwant\n%q", changed, got, want)
		}
		if _, err := e.node.Put(ctx(), fsm.Put{Key: "/secret", Value: []byte("s")}); err != nil {
			t.Fatal(err)
		}
	}
	// Still readable: the watch holds.
	got := exchange(t, e.dial(), wire("AUTH all", "WATCH mine/w", "AUTH mine", "MULTI", "SET mine/x 1", "EXEC"))
	if want := transcript("+OK", "+OK", "+OK", "+OK", "+QUEUED", "*1", "+OK"); got != want {
		t.Fatalf("transcript\n%q\nwant\n%q", got, want)
	}
}
