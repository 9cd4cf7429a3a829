package resp

import (
	"slices"
	"strconv"
	"testing"
)

// TestCommandTableMatchesRedis compares what COMMAND tells clients of each
// command Roster serves (arity, first key, last key, step, and the flags
// readonly and write: what go-redis and redis-cli read to route and check
// commands) with a real
// redis-server 7.0's COMMAND INFO (skipped when it is not installed).
// Roster's own commands (JOIN, LEAVE, SNAPSHOT) are not Redis's.
func TestCommandTableMatchesRedis(t *testing.T) {
	addr := startRedis(t)
	c, err := dialRESP(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		v, err := c.do("COMMAND", "INFO", n)
		if err != nil {
			t.Fatal(err)
		}
		if len(v.arr) != 1 || v.arr[0].null {
			t.Logf("%s: not a Redis command", n)
			continue
		}
		info := v.arr[0].arr
		sp := commands[n]
		want := []string{info[1].s, info[3].s, info[4].s, info[5].s}
		got := []string{strconv.Itoa(sp.arity), strconv.Itoa(sp.first), strconv.Itoa(sp.last), strconv.Itoa(sp.step)}
		if !slices.Equal(want, got) {
			t.Errorf("%s: arity, first, last, step %v, Redis 7 says %v", n, got, want)
		}
		// go-redis sends a command flagged readonly to a replica under
		// ReadOnly; write marks the others.
		for _, f := range []string{"readonly", "write"} {
			redisHas := slices.ContainsFunc(info[2].arr, func(v rval) bool { return v.s == f })
			if slices.Contains(sp.flags, f) != redisHas {
				t.Errorf("%s: flag %s %v, Redis 7 %v", n, f, !redisHas, redisHas)
			}
		}
	}
}
