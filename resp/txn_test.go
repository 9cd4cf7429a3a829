package resp

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rosterhq/roster/internal/testutil"
)

// wire is the RESP2 request of each command (words split on spaces),
// followed by QUIT, so that exchange reads every answer.
func wire(cmds ...string) string {
	var b strings.Builder
	for _, c := range append(cmds, "QUIT") {
		words := strings.Split(c, " ")
		fmt.Fprintf(&b, "*%d\r\n", len(words))
		for _, w := range words {
			fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(w), w)
		}
	}
	return b.String()
}

// transcript is the answers wire's commands get, QUIT's +OK last.
func transcript(lines ...string) string { return strings.Join(append(lines, "+OK"), "\r\n") + "\r\n" }

// TestMultiExecReplies: after MULTI each command answers QUEUED, and EXEC
// the answers in order, computed as the commands applied one after the
// other (a read sees the writes queued before it, a runtime error is an
// error inside the array and the rest still apply).
func TestMultiExecReplies(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client()
	if err := c.Set(ctx(), "s", "text", 0).Err(); err != nil {
		t.Fatal(err)
	}
	before := e.proposals("txn")
	got := exchange(t, e.dial(), wire("MULTI", "SET a 1", "INCR a", "GET a", "INCR s", "SET b x EX 100", "TTL b",
		"MGET a b nope", "DEL s", "EXISTS s a", "PING", "SET c y XX", "SETNX a 9", "EXPIRE a 50", "PERSIST a", "EXEC", "GET a"))
	want := transcript("+OK", "+QUEUED", "+QUEUED", "+QUEUED", "+QUEUED", "+QUEUED", "+QUEUED", "+QUEUED",
		"+QUEUED", "+QUEUED", "+QUEUED", "+QUEUED", "+QUEUED", "+QUEUED", "+QUEUED",
		"*14", "+OK", ":2", "$1", "2", "-ERR value is not an integer or out of range", "+OK", ":100",
		"*3", "$1", "2", "$1", "x", "$-1", ":1", ":1", "+PONG", "$-1", ":0", ":1", ":1",
		"$1", "2")
	if got != want {
		t.Fatalf("transcript:\n%q\nwant\n%q", got, want)
	}
	// One entry.
	if n := e.proposals("txn") - before; n != 1 {
		t.Fatalf("EXEC proposed %d Txn entries, want 1", n)
	}
	st := e.node.FSM().State()
	if _, ok := st.Get("/s"); ok {
		t.Fatal("/s not deleted")
	}
	kv, ok := st.Get("/b")
	if !ok || string(kv.Value) != "x" || kv.Lease == 0 {
		t.Fatalf("/b: %+v", kv)
	}
	if l, ok := st.Lease(kv.Lease); !ok || l.TTL != 100 || l.Name != "/b" {
		t.Fatalf("/b's lease: %+v %v", l, ok)
	}
	if kv, ok := st.Get("/a"); !ok || kv.Lease != 0 {
		t.Fatalf("/a after EXPIRE then PERSIST: %+v", kv)
	}
	if n := st.LeaseCount(); n != 1 {
		t.Fatalf("%d leases, want 1 (a's lease granted and dropped in the transaction is never granted)", n)
	}

	// go-redis's TxPipelined. A key only read (/b) is compared, not
	// written: its mod revision stays.
	cmds, err := c.TxPipelined(ctx(), func(p redis.Pipeliner) error {
		p.Incr(ctx(), "n")
		p.IncrBy(ctx(), "n", 10)
		p.Get(ctx(), "n")
		p.Get(ctx(), "b")
		return nil
	})
	if err != nil || len(cmds) != 4 || cmds[1].(*redis.IntCmd).Val() != 11 || cmds[2].(*redis.StringCmd).Val() != "11" ||
		cmds[3].(*redis.StringCmd).Val() != "x" {
		t.Fatalf("TxPipelined: %v %v", cmds, err)
	}
	if b, _ := e.node.FSM().State().Get("/b"); b.ModRevision != kv.ModRevision {
		t.Fatalf("/b only read, but its mod revision moved from %d to %d", kv.ModRevision, b.ModRevision)
	}
	// A transaction of reads only proposes nothing.
	rev := e.node.FSM().State().Revision()
	if _, err := c.TxPipelined(ctx(), func(p redis.Pipeliner) error {
		p.Get(ctx(), "n")
		p.TTL(ctx(), "b")
		return nil
	}); err != nil || e.node.FSM().State().Revision() != rev {
		t.Fatalf("reads only: %v, revision %d → %d", err, rev, e.node.FSM().State().Revision())
	}
}

// TestMultiQueueErrors: a command refused when queued (unknown, wrong
// arity, not allowed in a transaction) answers its error and EXEC answers
// EXECABORT, writing nothing; the control commands misused answer Redis's
// errors; DISCARD drops the queue.
func TestMultiQueueErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	before := e.node.FSM().State().Revision()
	for _, tc := range []struct{ bad, answer string }{
		{"NOSUCH x", "-ERR unknown command 'NOSUCH'"},
		{"GET", "-ERR wrong number of arguments for 'get' command"},
		{"KEYS *", "-ERR Command not allowed inside a transaction"},
		{"SELECT 0", "-ERR Command not allowed inside a transaction"},
		{"SUBSCRIBE __keyspace@0__:a", "-ERR Command not allowed inside a transaction"},
	} {
		got := exchange(t, e.dial(), wire("MULTI", "SET a 1", tc.bad, "SET b 2", "EXEC", "EXISTS a b"))
		want := transcript("+OK", "+QUEUED", tc.answer, "+QUEUED",
			"-EXECABORT Transaction discarded because of previous errors.", ":0")
		if got != want {
			t.Fatalf("%s:\n%q\nwant\n%q", tc.bad, got, want)
		}
	}
	got := exchange(t, e.dial(), wire("EXEC", "DISCARD", "MULTI", "MULTI", "WATCH a", "SET a 1", "DISCARD",
		"EXEC", "MULTI", "SET k v x", "EXEC", "GET k"))
	want := transcript("-ERR EXEC without MULTI", "-ERR DISCARD without MULTI", "+OK",
		"-ERR MULTI calls can not be nested", "-ERR WATCH inside MULTI is not allowed", "+QUEUED", "+OK",
		"-ERR EXEC without MULTI", "+OK", "+QUEUED", "*1", "-ERR syntax error", "$-1")
	if got != want {
		t.Fatalf("control commands:\n%q\nwant\n%q", got, want)
	}
	// The connection closing (QUIT inside MULTI) ends the transaction.
	if got := exchange(t, e.dial(), wire("WATCH q", "MULTI", "SET q 1")); got != transcript("+OK", "+OK", "+QUEUED") {
		t.Fatalf("QUIT inside MULTI: %q", got)
	}
	if after := e.node.FSM().State().Revision(); after != before {
		t.Fatalf("revision %d → %d: a refused or abandoned transaction wrote", before, after)
	}
}

// TestWatchConflict: EXEC answers a nil array and writes nothing when a
// watched key was written, deleted or expired since WATCH (by another
// connection or this one); an unchanged watch lets it through; EXEC,
// DISCARD and UNWATCH end the watches.
func TestWatchConflict(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client()
	other := e.client()
	for _, tc := range []struct {
		name   string
		change func() error
	}{
		{"written", func() error { return other.Set(ctx(), "w", "changed", 0).Err() }},
		{"deleted", func() error { return other.Del(ctx(), "w").Err() }},
		{"rewritten with the same value", func() error { return other.Set(ctx(), "w", "0", 0).Err() }},
		{"created", func() error { return other.Set(ctx(), "absent", "now", 0).Err() }},
	} {
		if err := c.Set(ctx(), "w", "0", 0).Err(); err != nil {
			t.Fatal(err)
		}
		other.Del(ctx(), "absent")
		if err := c.Watch(ctx(), func(tx *redis.Tx) error {
			if err := tx.Get(ctx(), "w").Err(); err != nil {
				return err
			}
			if err := tc.change(); err != nil {
				return err
			}
			_, err := tx.TxPipelined(ctx(), func(p redis.Pipeliner) error {
				p.Set(ctx(), "w", "mine", 0)
				p.Set(ctx(), "side", tc.name, 0)
				return nil
			})
			return err
		}, "w", "absent"); !errors.Is(err, redis.TxFailedErr) {
			t.Fatalf("%s: %v, want the transaction failed", tc.name, err)
		}
		if v, _ := e.value("/side"); v == tc.name {
			t.Fatalf("%s: the transaction wrote", tc.name)
		}
	}
	// Unchanged: it goes through. Then EXEC ended the watch.
	got := exchange(t, e.dial(), wire("WATCH w", "MULTI", "SET w mine", "EXEC", "SET w again", "MULTI", "GET w", "EXEC",
		"WATCH w", "UNWATCH", "SET w 3", "MULTI", "GET w", "EXEC",
		"WATCH w", "MULTI", "DISCARD", "SET w 4", "MULTI", "GET w", "EXEC",
		"WATCH w", "SET w 5", "MULTI", "GET w", "EXEC"))
	want := transcript("+OK", "+OK", "+QUEUED", "*1", "+OK", "+OK", "+OK", "+QUEUED", "*1", "$5", "again",
		"+OK", "+OK", "+OK", "+OK", "+QUEUED", "*1", "$1", "3",
		"+OK", "+OK", "+OK", "+OK", "+OK", "+QUEUED", "*1", "$1", "4",
		"+OK", "+OK", "+OK", "+QUEUED", "*-1")
	if got != want {
		t.Fatalf("watch lifetimes:\n%q\nwant\n%q", got, want)
	}
}

// TestWatchExpired: a watched key whose lease expires makes EXEC answer
// the nil array.
func TestWatchExpired(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client()
	if err := c.Set(ctx(), "e", "v", 2*time.Second).Err(); err != nil {
		t.Fatal(err)
	}
	conn := c.Conn()
	defer conn.Close()
	if err := conn.Do(ctx(), "WATCH", "e").Err(); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "/e expired", func() bool { _, ok := e.value("/e"); return !ok })
	res, err := conn.Do(ctx(), "MULTI").Result()
	if err != nil || res != "OK" {
		t.Fatalf("MULTI: %v %v", res, err)
	}
	conn.Do(ctx(), "SET", "e", "again")
	if _, err := conn.Do(ctx(), "EXEC").Result(); err != redis.Nil {
		t.Fatalf("EXEC after the watched key expired: %v, want nil", err)
	}
	if _, ok := e.value("/e"); ok {
		t.Fatal("the failed transaction wrote /e")
	}
}

// TestMultiAccessControl: with access control on, a command the token may
// not run is refused when queued (NOPERM) and EXEC answers EXECABORT,
// writing nothing; WATCH needs read on its keys; a token that lost a
// permission between queueing and EXEC gets NOPERM for that command
// inside EXEC's answer, the others still apply (as Redis checks ACLs
// again at EXEC).
func TestMultiAccessControl(t *testing.T) {
	t.Parallel()
	auth := &testAuth{tokens: map[string]testIdentity{
		"api": {read: []string{"/services/"}, write: []string{"/services/api/"}},
	}}
	e := newEnvWith(t, func(c *Config) { c.Auth = auth })
	got := exchange(t, e.dial(), wire("MULTI", "AUTH api", "MULTI", "SET services/api/a 1", "SET services/db/a 1",
		"GET other", "EXEC", "WATCH other", "WATCH services/db/a", "EXISTS services/api/a"))
	want := transcript("-NOAUTH Authentication required.", "+OK", "+OK", "+QUEUED",
		"-NOPERM this token has no permission to write /services/db/a",
		"-NOPERM this token has no permission to read /other",
		"-EXECABORT Transaction discarded because of previous errors.",
		"-NOPERM this token has no permission to read /other", "+OK", ":0")
	if got != want {
		t.Fatalf("transcript:\n%q\nwant\n%q", got, want)
	}
	// Permission lost between MULTI and EXEC.
	c := e.dial()
	first := wire("AUTH api", "MULTI", "SET services/api/b 1", "SET services/api/x/c 2")
	if _, err := c.Write([]byte(strings.TrimSuffix(first, wire()))); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	for range 4 {
		if line, err := r.ReadString('\n'); err != nil || line[0] != '+' {
			t.Fatalf("before EXEC: %q %v", line, err)
		}
	}
	auth.mu.Lock()
	auth.tokens["api"] = testIdentity{read: []string{"/services/"}, write: []string{"/services/api/x/"}}
	auth.mu.Unlock()
	if _, err := c.Write([]byte(wire("EXEC"))); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(r)
	if want := transcript("*2", "-NOPERM this token has no permission to write /services/api/b", "+OK"); err != nil || string(rest) != want {
		t.Fatalf("EXEC: %q %v, want %q", rest, err, want)
	}
	if _, ok := e.value("/services/api/b"); ok {
		t.Fatal("a command no longer permitted wrote")
	}
	if v, _ := e.value("/services/api/x/c"); v != "2" {
		t.Fatalf("/services/api/x/c = %q", v)
	}
}

// TestExecNotifications: a transaction's writes reach keyspace
// subscribers together, one message per key written; a key it only read
// is compared, not written, and announces nothing.
func TestExecNotifications(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client()
	if err := c.Set(ctx(), "r", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	sub := c.PSubscribe(ctx(), "__keyspace@0__:*")
	defer sub.Close()
	if _, err := sub.Receive(ctx()); err != nil {
		t.Fatal(err)
	}
	msgs := sub.Channel()
	if _, err := c.TxPipelined(ctx(), func(p redis.Pipeliner) error {
		p.Get(ctx(), "r")
		p.Set(ctx(), "b", "2", 0)
		p.Set(ctx(), "a", "1", 0)
		p.Del(ctx(), "absent")
		p.Exists(ctx(), "other")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := c.Set(ctx(), "z", "after", 0).Err(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for len(got) < 3 {
		m := next(t, msgs)
		got = append(got, strings.TrimPrefix(m.Channel, "__keyspace@0__:")+" "+m.Payload)
	}
	if want := "a set,b set,z set"; strings.Join(got, ",") != want {
		t.Fatalf("messages %q, want %q", got, want)
	}
}
