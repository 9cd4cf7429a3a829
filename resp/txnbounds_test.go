package resp

import (
	"bufio"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/rosterhq/roster/registry"
)

// TestQueueBounded: a transaction's queue is bounded as documented, in
// commands (registry.MaxTxnOps) and in bytes, each argument counting its
// own bookkeeping too: commands of many empty arguments, which would
// count nothing, are refused once the queue holds 4 × max-value-size of
// them (not 10,000 of them, gigabytes of memory), dooming the EXEC.
func TestQueueBounded(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	exchangeLines := func(raw string, n int) []string {
		t.Helper()
		conn := e.dial()
		defer conn.Close()
		go func() { _, _ = conn.Write([]byte(raw)) }()
		r := bufio.NewReader(conn)
		out := make([]string, 0, n)
		for range n {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("after %d answers: %v", len(out), err)
			}
			out = append(out, strings.TrimSuffix(line, "\r\n"))
		}
		return out
	}

	// Commands of 60,000 empty arguments: about 2 MB of bookkeeping each.
	var b strings.Builder
	b.WriteString("*1\r\n$5\r\nMULTI\r\n")
	const args = 60_000
	for range 4 {
		fmt.Fprintf(&b, "*%d\r\n$6\r\nEXISTS\r\n", args)
		for range args - 1 {
			b.WriteString("$0\r\n\r\n")
		}
	}
	b.WriteString("*1\r\n$4\r\nEXEC\r\n")
	got := exchangeLines(b.String(), 6)
	limit := registry.TxnBytesFactor * e.node.MaxValueBytes()
	tooBig := fmt.Sprintf("-ERR transaction too large: over %d bytes of arguments", limit)
	want := []string{"+OK", "+QUEUED", "+QUEUED", tooBig, tooBig, "-EXECABORT Transaction discarded because of previous errors."}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("answers\n%q\nwant\n%q", got, want)
	}

	// At most MaxTxnOps commands.
	b.Reset()
	b.WriteString("*1\r\n$5\r\nMULTI\r\n")
	for range registry.MaxTxnOps + 1 {
		b.WriteString("*1\r\n$4\r\nPING\r\n")
	}
	b.WriteString("*1\r\n$4\r\nEXEC\r\n")
	got = exchangeLines(b.String(), registry.MaxTxnOps+3)
	if g, w := got[registry.MaxTxnOps], "+QUEUED"; g != w {
		t.Fatalf("command %d answered %q, want %q", registry.MaxTxnOps, g, w)
	}
	tail := got[registry.MaxTxnOps+1:]
	want = []string{fmt.Sprintf("-ERR transaction too large: at most %d commands", registry.MaxTxnOps), "-EXECABORT Transaction discarded because of previous errors."}
	if strings.Join(tail, "\n") != strings.Join(want, "\n") {
		t.Fatalf("answers\n%q\nwant\n%q", tail, want)
	}
}

// TestWatchBounded: a connection watches at most registry.MaxTxnOps keys
// (an EXEC compares every one in its single Txn entry, so more could never
// commit): a WATCH that would go over answers an error and adds none,
// instead of the connection's watches growing without bound.
func TestWatchBounded(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client().Conn()
	defer c.Close()
	const chunk = 1000
	watch := func(from, n int) error {
		args := []any{"WATCH"}
		for i := range n {
			args = append(args, fmt.Sprintf("w%d", from+i))
		}
		return c.Do(ctx(), args...).Err()
	}
	for i := 0; i < registry.MaxTxnOps; i += chunk {
		if err := watch(i, chunk); err != nil {
			t.Fatalf("WATCH of keys %d…: %v", i, err)
		}
	}
	if err := watch(0, 10); err != nil { // watched already: nothing added
		t.Fatalf("WATCH of keys watched already: %v", err)
	}
	wantErr(t, watch(registry.MaxTxnOps, 2), fmt.Sprintf("ERR transaction too large: at most %d keys watched", registry.MaxTxnOps))
	// The watches before still hold: a write to one fails the EXEC.
	if err := e.client().Set(ctx(), "w5", "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Do(ctx(), "MULTI").Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Do(ctx(), "EXEC").Err(); !errors.Is(err, redis.Nil) {
		t.Fatalf("EXEC after a watched key changed: %v, want the nil array", err)
	}
	if err := watch(registry.MaxTxnOps, 2); err != nil {
		t.Fatalf("WATCH after EXEC ended the watches: %v", err)
	}
}

// TestExecReadKeysCountNoValueBytes: EXEC compares a key it only read or
// watched with a compare-only operation (fsm.Check) that carries no
// value, so the values read do not count toward the Txn's bound of
// 4 × max-value-size: a transaction reading (and watching) five values
// of nearly the limit each, then writing a small key, applies. It used
// to answer -ERR too large (a key read was compared by a put of its own
// value).
func TestExecReadKeysCountNoValueBytes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client()
	big := strings.Repeat("v", e.node.MaxValueBytes()-16)
	keys := make([]string, registry.TxnBytesFactor+1)
	for i := range keys {
		keys[i] = fmt.Sprintf("big%d", i)
		if err := c.Set(ctx(), keys[i], big, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	err := c.Watch(ctx(), func(tx *redis.Tx) error {
		cmds, err := tx.TxPipelined(ctx(), func(p redis.Pipeliner) error {
			p.MGet(ctx(), keys...)
			p.Set(ctx(), "small", "s", 0)
			return nil
		})
		if err != nil {
			return err
		}
		if vals := cmds[0].(*redis.SliceCmd).Val(); len(vals) != len(keys) || vals[0] != big {
			return fmt.Errorf("MGET inside EXEC answered %d values", len(vals))
		}
		return nil
	}, keys[0], keys[1])
	if err != nil {
		t.Fatalf("EXEC reading %d values of %d bytes: %v", len(keys), len(big), err)
	}
	if v, ok := e.value("/small"); !ok || v != "s" {
		t.Fatalf("/small = %q, %v", v, ok)
	}
}

// TestExecBoundCountsTTLs: a key a transaction leaves on a TTL it set
// costs its Txn two operations (the lease's grant and the put), so the
// bound of one Txn, registry.MaxTxnOps operations, is reached at half as
// many such keys: 5,000 SETEX apply; 5,001 answer -ERR invalid argument
// and write nothing (docs/redis.md said 10,000 keys).
func TestExecBoundCountsTTLs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, n := range []int{registry.MaxTxnOps / 2, registry.MaxTxnOps/2 + 1} {
		cmds := []string{"MULTI"}
		for i := range n {
			cmds = append(cmds, fmt.Sprintf("SETEX k%d:%d 100 v", n, i))
		}
		got := exchange(t, e.dial(), wire(append(cmds, "EXEC")...))
		answer := got[len("+OK\r\n")+n*len("+QUEUED\r\n"):]
		if n == registry.MaxTxnOps/2 {
			if want := fmt.Sprintf("*%d\r\n%s", n, strings.Repeat("+OK\r\n", n+1)); answer != want {
				t.Fatalf("EXEC of %d SETEX answered %.200q", n, answer)
			}
			continue
		}
		if want := fmt.Sprintf("-ERR invalid argument: a txn holds 1 to %d operations, not %d\r\n+OK\r\n", registry.MaxTxnOps, 2*n); answer != want {
			t.Fatalf("EXEC of %d SETEX answered %q, want %q", n, answer, want)
		}
		if _, ok := e.value(fmt.Sprintf("/k%d:0", n)); ok {
			t.Fatal("a refused EXEC wrote")
		}
	}
}
