package resp

import (
	"slices"
	"strings"
	"testing"
)

// Differences TestRedisDiff found between Roster and Redis 7.0, each
// pinned here without needing redis-server: Redis's answers, as it gave
// them.

// says is one command and Redis 7.0's answer to it, spelled as
// rval.String spells it.
type says struct {
	cmd  []string
	want string
}

// redisExchange sends each command on one connection and checks the
// answers. onRedis: the server is redis-server, whose error texts API.md
// words otherwise are normalised first (redisErrorText).
func redisExchange(t *testing.T, addr string, onRedis bool, steps []says) {
	t.Helper()
	c, err := dialRESP(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	for _, s := range steps {
		v, err := c.do(s.cmd...)
		if err != nil {
			t.Fatalf("%q: %v", s.cmd, err)
		}
		if onRedis && v.isErr() {
			v.s = redisErrorText(v.s)
		}
		if strings.EqualFold(s.cmd[0], "keys") {
			// KEYS answers in no promised order: Redis's is its hash
			// table's.
			slices.SortFunc(v.arr, func(a, b rval) int { return strings.Compare(a.s, b.s) })
		}
		if v.String() != s.want {
			t.Fatalf("%q answered %s, want %s (Redis 7.0's answer)", s.cmd, v, s.want)
		}
	}
}

// TestSetReadsItsTimeAfterItsOptions: SET reads all of its options
// before the time of EX/PX/EXAT/PXAT, as Redis 7 does, so a syntax error
// anywhere is the answer, and of a repeated option only the last time
// counts.
func TestSetReadsItsTimeAfterItsOptions(t *testing.T) {
	t.Parallel()
	redisExchange(t, newEnv(t).addr, false, setTimeAfterOptions)
}

var setTimeAfterOptions = []says{
	{[]string{"SET", "k", "v", "EX", "abc", "BAD"}, "-ERR syntax error"},
	{[]string{"SET", "k", "v", "EX", "0", "NX", "XX"}, "-ERR syntax error"},
	{[]string{"SET", "k", "v", "PX", "-1", "EX", "10"}, "-ERR syntax error"},
	{[]string{"SET", "k", "v", "EX", "abc", "EX", "1000"}, "+OK"},
	{[]string{"TTL", "k"}, ":1000"},
	{[]string{"SET", "k", "v", "EX", "1000", "EX", "abc"}, "-ERR value is not an integer or out of range"},
	{[]string{"SETEX", "k", "abc", "v"}, "-ERR value is not an integer or out of range"},
}

// TestGetExOfAnAbsentKeyIgnoresTheTime: GETEX of an absent key answers
// null before it reads the time its option gives, as Redis 7 does (only
// a syntax error comes first); of a key that exists, the time is read.
func TestGetExOfAnAbsentKeyIgnoresTheTime(t *testing.T) {
	t.Parallel()
	redisExchange(t, newEnv(t).addr, false, getExAbsentKey)
}

var getExAbsentKey = []says{
	{[]string{"GETEX", "absent", "PXAT", "x"}, "$nil"},
	{[]string{"GETEX", "absent", "EX", "0"}, "$nil"},
	{[]string{"GETEX", "absent", "EX", "abc", "BAD"}, "-ERR syntax error"},
	{[]string{"GETEX", "absent", "EX", "abc", "EX", "1000"}, "$nil"},
	{[]string{"SET", "k", "v"}, "+OK"},
	{[]string{"GETEX", "k", "PXAT", "x"}, "-ERR value is not an integer or out of range"},
	{[]string{"GETEX", "k", "EX", "0"}, "-ERR invalid expire time"},
	{[]string{"GETEX", "k", "EX", "abc", "EX", "1000"}, `$"v"`},
	{[]string{"TTL", "k"}, ":1000"},
	{[]string{"MULTI"}, "+OK"},
	{[]string{"GETEX", "absent", "EX", "0"}, "+QUEUED"},
	{[]string{"GETEX", "k", "EX", "abc"}, "+QUEUED"},
	{[]string{"EXEC"}, `*[$nil -ERR value is not an integer or out of range]`},
}

// TestAuthWithoutAccessControl: without access control AUTH answers as
// Redis without a password: its default user takes any password, so a
// client configured with the user "default" connects; another user is a
// wrong password.
func TestAuthWithoutAccessControl(t *testing.T) {
	t.Parallel()
	redisExchange(t, newEnv(t).addr, false, authWithoutPassword)
}

var authWithoutPassword = []says{
	{[]string{"AUTH", "x"}, "-ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"},
	{[]string{"AUTH", "default", "x"}, "+OK"},
	{[]string{"AUTH", "Default", "x"}, "-WRONGPASS invalid username-password pair or user is disabled."},
	{[]string{"AUTH", "bob", "x"}, "-WRONGPASS invalid username-password pair or user is disabled."},
	{[]string{"AUTH", "a", "b", "c"}, "-ERR syntax error"},
	{[]string{"SET", "k", "v"}, "+OK"},
}

// TestGlobOfTheEmptyKey: Redis's glob matches the empty key only with
// the empty pattern, and KEYS * and SCAN MATCH * list it as every key.
func TestGlobOfTheEmptyKey(t *testing.T) {
	t.Parallel()
	redisExchange(t, newEnv(t).addr, false, globOfTheEmptyKey)
}

var globOfTheEmptyKey = []says{
	{[]string{"SET", "", "e"}, "+OK"},
	{[]string{"SET", "a", "1"}, "+OK"},
	{[]string{"KEYS", "**"}, `*[$"a"]`},
	{[]string{"KEYS", "*"}, `*[$"" $"a"]`},
	{[]string{"KEYS", ""}, `*[$""]`},
	{[]string{"KEYS", "*?"}, `*[$"a"]`},
	{[]string{"SCAN", "0", "MATCH", "**"}, `*[$"0" *[$"a"]]`},
	{[]string{"SCAN", "0", "MATCH", ""}, `*[$"0" *[$""]]`},
}

// TestPinnedAnswersAreRedis7s plays the exchanges above on a real
// redis-server (skipped when it is not installed): they are its answers.
func TestPinnedAnswersAreRedis7s(t *testing.T) {
	addr := startRedis(t)
	for _, steps := range [][]says{setTimeAfterOptions, getExAbsentKey, authWithoutPassword, globOfTheEmptyKey} {
		c, err := dialRESP(addr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.do("FLUSHALL"); err != nil {
			t.Fatal(err)
		}
		c.close()
		redisExchange(t, addr, true, steps)
	}
}
