package resp

import (
	"bufio"
	"testing"
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
	send("EXEC extra", "-EXECABORT Transaction discarded because of: ERR wrong number of arguments for 'exec' command")
	send("EXEC", "-ERR EXEC without MULTI")
	send("GET a", "$-1")
	if _, ok := e.value("/a"); ok {
		t.Fatal("a refused EXEC wrote")
	}
}
