package resp

import (
	"testing"
)

// TestIncrOverflowText: an increment of an integer whose result leaves
// int64 answers Redis 7's "ERR increment or decrement would overflow",
// a value that is no integer still "ERR value is not an integer or out of
// range"; on the leader, through a follower (the leader's refusal crosses
// the peer wire) and inside MULTI/EXEC; and neither writes.
func TestIncrOverflowText(t *testing.T) {
	t.Parallel()
	nodes, addrs := serveCluster(t)
	const overflow = "ERR increment or decrement would overflow"
	const notInt = "ERR value is not an integer or out of range"
	seed := clientOf(t, addrs[0])
	for k, v := range map[string]string{"max": "9223372036854775807", "min": "-9223372036854775808", "bin": "x1", "plus": "+1"} {
		if err := seed.Set(ctx(), k, v, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	rev := nodes[0].FSM().State().Revision()
	for i, addr := range addrs {
		c := clientOf(t, addr)
		wantErr(t, c.Incr(ctx(), "max").Err(), overflow)
		wantErr(t, c.IncrBy(ctx(), "max", 5).Err(), overflow)
		wantErr(t, c.Decr(ctx(), "min").Err(), overflow)
		wantErr(t, c.DecrBy(ctx(), "min", 7).Err(), overflow)
		wantErr(t, c.IncrBy(ctx(), "min", -1).Err(), overflow)
		wantErr(t, c.DecrBy(ctx(), "max", -1).Err(), overflow)
		wantErr(t, c.Incr(ctx(), "bin").Err(), notInt)
		wantErr(t, c.Incr(ctx(), "plus").Err(), notInt)
		wantErr(t, c.Do(ctx(), "INCRBY", "max", "x").Err(), notInt)

		conn := c.Conn()
		for _, args := range [][]any{{"MULTI"}, {"INCR", "max"}, {"DECRBY", "min", "2"}, {"INCR", "bin"}, {"INCR", "fresh"}} {
			if err := conn.Do(ctx(), args...).Err(); err != nil {
				t.Fatalf("member %d %v: %v", i+1, args, err)
			}
		}
		res, err := conn.Do(ctx(), "EXEC").Slice()
		conn.Close()
		if err != nil || len(res) != 4 {
			t.Fatalf("member %d EXEC: %v %v", i+1, res, err)
		}
		for j, want := range []string{overflow, overflow, notInt} {
			if e, ok := res[j].(error); !ok || e.Error() != want {
				t.Fatalf("member %d EXEC reply %d: %v, want %q", i+1, j+1, res[j], want)
			}
		}
		if res[3] != int64(i+1) {
			t.Fatalf("member %d EXEC's INCR fresh: %v", i+1, res[3])
		}
	}
	// Only the three INCR fresh (one EXEC each) wrote.
	if got := nodes[0].FSM().State().Revision(); got != rev+3 {
		t.Fatalf("refused increments moved the revision by %d", got-rev-3)
	}
}
