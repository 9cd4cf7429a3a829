package resp

import (
	"strings"
	"testing"
)

// TestMultiOnAFormerSubscriber: a connection that subscribed and then
// left every subscription is an ordinary one again, in MULTI too:
// SUBSCRIBE inside the transaction is refused and dooms it, as on any
// connection, instead of subscribing with the transaction still open
// (then EXEC and DISCARD were refused in the subscriber's context).
func TestMultiOnAFormerSubscriber(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	got := exchange(t, e.dial(), wire("SUBSCRIBE __keyspace@0__:a", "UNSUBSCRIBE", "MULTI",
		"SUBSCRIBE __keyspace@0__:b", "SET b 1", "EXEC", "MULTI", "SET b 2", "EXEC", "PING"))
	want := transcript(
		"*3", "$9", "subscribe", "$16", "__keyspace@0__:a", ":1",
		"*3", "$11", "unsubscribe", "$16", "__keyspace@0__:a", ":0",
		"+OK", "-ERR Command not allowed inside a transaction", "+QUEUED",
		"-EXECABORT Transaction discarded because of previous errors.",
		"+OK", "+QUEUED", "*1", "+OK", "+PONG")
	if got != want {
		t.Fatalf("transcript\n%q\nwant\n%q", got, want)
	}
	if v, _ := e.value("/b"); v != "2" {
		t.Fatalf("b = %q, want 2 (the second transaction only)", v)
	}
}

// TestTxnControlRefusedDoomsTheTransaction: inside MULTI, a DISCARD,
// MULTI or WATCH refused as a command (a wrong number of arguments,
// NOPERM) dooms the transaction, as every refused command does in Redis 7
// (rejectCommand flags it): EXEC answers EXECABORT and writes nothing.
func TestTxnControlRefusedDoomsTheTransaction(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, bad := range []string{"DISCARD x", "MULTI x", "WATCH"} {
		got := exchange(t, e.dial(), wire("MULTI", "SET a 1", bad, "EXEC", "GET a"))
		name := strings.ToLower(strings.Fields(bad)[0])
		want := transcript("+OK", "+QUEUED", "-ERR wrong number of arguments for '"+name+"' command",
			"-EXECABORT Transaction discarded because of previous errors.", "$-1")
		if got != want {
			t.Fatalf("%s: transcript\n%q\nwant\n%q", bad, got, want)
		}
	}
}
