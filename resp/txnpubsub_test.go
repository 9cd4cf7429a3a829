package resp

import "testing"

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
