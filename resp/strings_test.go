package resp

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rosterhq/roster/fsm"
)

// TestStringCommands drives the string commands with go-redis and checks
// both the replies and what the registry stored (K is /K).
func TestStringCommands(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client()
	if err := c.Set(ctx(), "services/api/n1", "10.0.0.1:80", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if v, ok := e.value("/services/api/n1"); !ok || v != "10.0.0.1:80" {
		t.Fatalf("stored %q %v", v, ok)
	}
	if v, err := c.Get(ctx(), "services/api/n1").Result(); err != nil || v != "10.0.0.1:80" {
		t.Fatalf("GET: %q %v", v, err)
	}
	if _, err := c.Get(ctx(), "absent").Result(); err != redis.Nil {
		t.Fatalf("GET absent: %v", err)
	}
	bin := string([]byte{0, 0xff, '\r', '\n', 1})
	c.Set(ctx(), "bin", bin, 0)
	if v, _ := c.Get(ctx(), "bin").Result(); v != bin {
		t.Fatalf("binary value %q", v)
	}

	if err := c.MSet(ctx(), "m1", "a", "m2", "b", "m1", "c").Err(); err != nil {
		t.Fatal(err)
	}
	vals, err := c.MGet(ctx(), "m1", "m2", "absent").Result()
	if err != nil || len(vals) != 3 || vals[0] != "c" || vals[1] != "b" || vals[2] != nil {
		t.Fatalf("MGET: %v %v", vals, err)
	}
	m1, _ := e.node.FSM().State().Get("/m1")
	m2, _ := e.node.FSM().State().Get("/m2")
	if m2.ModRevision != m1.ModRevision+1 {
		t.Fatalf("MSET is one entry of consecutive revisions: %d, %d", m1.ModRevision, m2.ModRevision)
	}
	if ok, err := c.SetNX(ctx(), "m1", "x", 0).Result(); err != nil || ok {
		t.Fatalf("SETNX existing: %v %v", ok, err)
	}
	if ok, err := c.SetNX(ctx(), "nx", "x", 0).Result(); err != nil || !ok {
		t.Fatalf("SETNX absent: %v %v", ok, err)
	}
	if n, err := c.Exists(ctx(), "m1", "m2", "absent", "m1").Result(); err != nil || n != 3 {
		t.Fatalf("EXISTS: %d %v", n, err)
	}
	rev := e.node.FSM().State().Revision()
	if n, err := c.Del(ctx(), "m1", "absent", "m1").Result(); err != nil || n != 1 {
		t.Fatalf("DEL: %d %v", n, err)
	}
	if n, err := c.Unlink(ctx(), "m2", "nx").Result(); err != nil || n != 2 {
		t.Fatalf("UNLINK: %d %v", n, err)
	}
	if got := e.node.FSM().State().Revision(); got != rev+3 {
		t.Fatalf("3 keys deleted moved the revision by %d", got-rev)
	}

	for _, step := range []struct {
		cmd  *redis.IntCmd
		want int64
	}{
		{c.Incr(ctx(), "n"), 1}, {c.IncrBy(ctx(), "n", 41), 42}, {c.Decr(ctx(), "n"), 41},
		{c.DecrBy(ctx(), "n", 50), -9}, {c.IncrBy(ctx(), "n", 0), -9},
	} {
		if v, err := step.cmd.Result(); err != nil || v != step.want {
			t.Fatalf("%v: %d %v, want %d", step.cmd.Args(), v, err, step.want)
		}
	}
	rev = e.node.FSM().State().Revision()
	wantErr(t, c.Incr(ctx(), "bin").Err(), "ERR value is not an integer or out of range")
	c.Set(ctx(), "max", "9223372036854775807", 0)
	wantErr(t, c.Incr(ctx(), "max").Err(), "ERR increment or decrement would overflow") // TestIncrOverflowText
	wantErr(t, c.Do(ctx(), "INCRBY", "n", "x").Err(), "ERR value is not an integer or out of range")
	// Redis 7's text: the decrement has no negation.
	wantErr(t, c.Do(ctx(), "DECRBY", "n", "-9223372036854775808").Err(), "ERR decrement would overflow")
	if got := e.node.FSM().State().Revision(); got != rev+1 { // the SET of max only
		t.Fatalf("refused increments moved the revision by %d", got-rev-1)
	}
}

// TestCommandErrors: unknown commands, wrong arity, syntax and bad keys
// are answered with Redis's errors and change nothing.
func TestCommandErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client()
	c.Set(ctx(), "k", "v", 0)
	rev := e.node.FSM().State().Revision()
	for _, tc := range []struct {
		args []any
		want string
	}{
		{[]any{"NOSUCH", "x"}, "ERR unknown command 'NOSUCH'"},
		{[]any{"hello", "3"}, "ERR unknown command 'hello'"},
		{[]any{"GET"}, "ERR wrong number of arguments for 'get' command"},
		{[]any{"get", "a", "b"}, "ERR wrong number of arguments for 'get' command"},
		{[]any{"SET", "k"}, "ERR wrong number of arguments for 'set' command"},
		{[]any{"MSET", "a", "1", "b"}, "ERR wrong number of arguments for 'mset' command"},
		{[]any{"SET", "k", "v", "NX", "XX"}, "ERR syntax error"},
		{[]any{"SET", "k", "v", "EX", "10", "PX", "100"}, "ERR syntax error"},
		{[]any{"SET", "k", "v", "EX"}, "ERR syntax error"},
		{[]any{"SET", "k", "v", "KEEPTTL", "PX", "5000"}, "ERR syntax error"},
		{[]any{"SET", "k", "v", "EX", "ten"}, "ERR value is not an integer or out of range"},
		{[]any{"SET", "k", "v", "EX", "1"}, "ERR invalid expire time"},
		{[]any{"SET", "k", "v", "EX", "0"}, "ERR invalid expire time"},
		{[]any{"SET", "k", "v", "PX", "1000"}, "ERR invalid expire time"},
		{[]any{"SET", "k", "v", "EX", "2592001"}, "ERR invalid expire time"},
		{[]any{"SET", "bad\x00key", "v"}, "ERR invalid argument: key contains a NUL byte"},
		{[]any{"MSET", "ok", "1", "bad\x00key", "2"}, "ERR invalid argument: key contains a NUL byte"},
		{[]any{"DEL", "ok", "bad\x00key"}, "ERR invalid argument: key contains a NUL byte"},
		{[]any{"SELECT", "1"}, "ERR DB index is out of range"},
		{[]any{"CLIENT", "NOPE"}, "ERR unknown subcommand 'NOPE'. Try CLIENT HELP."},
		{[]any{"CLIENT", "LIST"}, "ERR unknown subcommand 'LIST'. Try CLIENT HELP."},
		{[]any{"COMMAND", "GETKEYS", "get", "k"}, "ERR unknown subcommand 'GETKEYS'. Try COMMAND HELP."},
		{[]any{"AUTH", "secret"}, "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"},
		{[]any{"EXPIRE", "k", "1"}, "ERR invalid expire time"},
		{[]any{"PEXPIRE", "k", "999"}, "ERR invalid expire time"},
		{[]any{"SCAN", "x"}, "ERR invalid cursor"},
		{[]any{"SCAN", "12345"}, "ERR invalid cursor"},
		{[]any{"SCAN", "0", "COUNT", "0"}, "ERR syntax error"},
		{[]any{"SCAN", "0", "MATCH"}, "ERR syntax error"},
		// Integers are spelled as Redis reads them: no '+', no leading
		// zero, no "-0", no blank.
		{[]any{"INCRBY", "n", "+5"}, "ERR value is not an integer or out of range"},
		{[]any{"INCRBY", "n", "05"}, "ERR value is not an integer or out of range"},
		{[]any{"DECRBY", "n", "-0"}, "ERR value is not an integer or out of range"},
		{[]any{"INCRBY", "n", " 5"}, "ERR value is not an integer or out of range"},
		{[]any{"SET", "k", "v", "EX", "+10"}, "ERR value is not an integer or out of range"},
		{[]any{"EXPIRE", "k", "010"}, "ERR value is not an integer or out of range"},
		{[]any{"SCAN", "0", "COUNT", "+5"}, "ERR value is not an integer or out of range"},
		{[]any{"SELECT", "zero"}, "ERR value is not an integer or out of range"},
		{[]any{"SELECT", "00"}, "ERR value is not an integer or out of range"},
		// A member nobody could reach is refused, as by POST /join.
		{[]any{"JOIN", "n9", "garbage"}, `ERR invalid argument: raft address "garbage" is not host:port`},
		{[]any{"JOIN", "n9", "127.0.0.1:1", "not an address"}, `ERR invalid argument: http address "not an address" is not host:port or https://host:port`},
		{[]any{"JOIN", "n9", "127.0.0.1:1", "http://h:1/path"}, `ERR invalid argument: http address "http://h:1/path" is not host:port or https://host:port`},
	} {
		wantErr(t, c.Do(ctx(), tc.args...).Err(), tc.want)
	}
	if got := e.node.FSM().State().Revision(); got != rev {
		t.Fatalf("refused commands moved the revision by %d", got-rev)
	}
	if info, err := e.node.Cluster(ctx()); err != nil || len(info.Members) != 1 {
		t.Fatalf("members after refused JOINs: %+v %v", info.Members, err)
	}
	if _, ok := e.value("/ok"); ok {
		t.Fatal("a refused MSET wrote part of itself")
	}
	big := make([]byte, e.node.MaxValueBytes()-100)
	if err := c.Set(ctx(), "big", big, 0).Err(); err != nil {
		t.Fatalf("a value within the limit: %v", err)
	}
}

// TestSetOptions covers SET's EX, PX, NX, XX and GET, alone and combined.
func TestSetOptions(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client()
	st := func() *fsm.State { return e.node.FSM().State() }

	if err := c.Set(ctx(), "k", "v1", 10*time.Second).Err(); err != nil {
		t.Fatal(err)
	}
	kv, _ := st().Get("/k")
	l, ok := st().Lease(kv.Lease)
	if kv.Lease == 0 || !ok || l.TTL != 10 || l.Name != "/k" {
		t.Fatalf("SET EX 10: kv %+v, lease %+v", kv, l)
	}
	// PX rounds up to whole seconds.
	c.Set(ctx(), "px", "v", 1500*time.Millisecond)
	kv, _ = st().Get("/px")
	if l, _ := st().Lease(kv.Lease); l.TTL != 2 {
		t.Fatalf("PX 1500: lease ttl %d", l.TTL)
	}
	// A plain SET drops the lease, as Redis drops a TTL.
	c.Set(ctx(), "k", "v2", 0)
	if kv, _ := st().Get("/k"); kv.Lease != 0 {
		t.Fatal("SET without EX kept the lease")
	}
	if v, err := c.SetArgs(ctx(), "k", "v3", redis.SetArgs{Get: true}).Result(); err != nil || v != "v2" {
		t.Fatalf("SET GET: %q %v", v, err)
	}
	if _, err := c.SetArgs(ctx(), "new", "v", redis.SetArgs{Get: true}).Result(); err != redis.Nil {
		t.Fatalf("SET GET of a new key: %v", err)
	}
	if err := c.SetArgs(ctx(), "k", "nx", redis.SetArgs{Mode: "NX"}).Err(); err != redis.Nil {
		t.Fatalf("SET NX existing: %v", err)
	}
	if v, _ := e.value("/k"); v != "v3" {
		t.Fatalf("SET NX wrote %q", v)
	}
	if err := c.SetArgs(ctx(), "nx", "1", redis.SetArgs{Mode: "NX", TTL: 5 * time.Second}).Err(); err != nil {
		t.Fatalf("SET NX EX absent: %v", err)
	}
	if err := c.SetArgs(ctx(), "xx-absent", "1", redis.SetArgs{Mode: "XX"}).Err(); err != redis.Nil {
		t.Fatalf("SET XX absent: %v", err)
	}
	if _, ok := e.value("/xx-absent"); ok {
		t.Fatal("SET XX created a key")
	}
	if v, err := c.SetArgs(ctx(), "k", "v4", redis.SetArgs{Mode: "XX", Get: true, TTL: 3 * time.Second}).Result(); err != nil || v != "v3" {
		t.Fatalf("SET XX GET EX: %q %v", v, err)
	}
	if kv, _ := st().Get("/k"); string(kv.Value) != "v4" || kv.Lease == 0 {
		t.Fatalf("after SET XX EX: %+v", kv)
	}
	if v, err := c.SetArgs(ctx(), "k", "v5", redis.SetArgs{Mode: "NX", Get: true}).Result(); err != nil || v != "v4" {
		t.Fatalf("SET NX GET existing: %q %v", v, err)
	}
	if _, err := c.SetArgs(ctx(), "nxget", "v", redis.SetArgs{Mode: "NX", Get: true}).Result(); err != redis.Nil {
		t.Fatalf("SET NX GET absent: %v", err)
	}
	if v, _ := e.value("/nxget"); v != "v" {
		t.Fatalf("SET NX GET absent stored %q", v)
	}
	// An option given twice is taken, as Redis takes it (the last EX
	// wins); only options that exclude each other are a syntax error.
	for _, args := range [][]any{
		{"SET", "twice", "v", "XX", "XX", "GET", "GET"},
		{"SET", "twice", "v", "NX", "NX"},
		{"SET", "twice", "v2", "EX", "10", "EX", "20"},
	} {
		if err := c.Do(ctx(), args...).Err(); err != nil && err != redis.Nil {
			t.Fatalf("%v: %v", args, err)
		}
	}
	if kv, _ := st().Get("/twice"); kv == nil || string(kv.Value) != "v2" {
		t.Fatalf("after SET … EX 10 EX 20: %+v", kv)
	} else if l, _ := st().Lease(kv.Lease); l.TTL != 20 {
		t.Fatalf("SET … EX 10 EX 20: lease ttl %d, want 20", l.TTL)
	}
}

// TestIncrKeepsLease: INCR of a key with a TTL keeps it, as in Redis.
func TestIncrKeepsLease(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client()
	c.Set(ctx(), "n", "1", 30*time.Second)
	kv, _ := e.node.FSM().State().Get("/n")
	if err := c.Incr(ctx(), "n").Err(); err != nil {
		t.Fatal(err)
	}
	after, _ := e.node.FSM().State().Get("/n")
	if after.Lease != kv.Lease || string(after.Value) != "2" {
		t.Fatalf("INCR: %+v (lease was %d)", after, kv.Lease)
	}
	if ttl, err := c.TTL(ctx(), "n").Result(); err != nil || ttl <= 25*time.Second {
		t.Fatalf("TTL after INCR: %v %v", ttl, err)
	}
}

// TestIncrTakesOnlyRedisIntegers: Redis reads a stored value as an
// integer only in its canonical spelling (string2ll); INCR here took
// "007", "+7" and "-0" (anything strconv.ParseInt takes) and rewrote them.
func TestIncrTakesOnlyRedisIntegers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client()
	for _, v := range []string{"007", "+7", "-0", "00", "-07", " 7", "7 ", "9223372036854775808", ""} {
		if err := c.Set(ctx(), "n", v, 0).Err(); err != nil {
			t.Fatal(err)
		}
		rev := e.node.FSM().State().Revision()
		for _, cmd := range []*redis.IntCmd{c.Incr(ctx(), "n"), c.IncrBy(ctx(), "n", 5), c.Decr(ctx(), "n"), c.DecrBy(ctx(), "n", 2)} {
			if err := cmd.Err(); err == nil || err.Error() != "ERR value is not an integer or out of range" {
				t.Errorf("%v on %q: %d %v", cmd.Args(), v, cmd.Val(), err)
			}
		}
		if got, _ := e.value("/n"); got != v || e.node.FSM().State().Revision() != rev {
			t.Errorf("refused INCRs on %q changed the state: %q", v, got)
		}
	}
	for v, want := range map[string]int64{"0": 1, "-7": -6, "9223372036854775806": 9223372036854775807} {
		c.Set(ctx(), "n", v, 0)
		if got, err := c.Incr(ctx(), "n").Result(); err != nil || got != want {
			t.Errorf("INCR on %q: %d %v, want %d", v, got, err, want)
		}
	}
}

// TestSetKeepTTLAndAbsoluteExpiry: Redis 7's SET … KEEPTTL (go-redis's
// redis.KeepTTL), EXAT and PXAT were refused as syntax errors.
func TestSetKeepTTLAndAbsoluteExpiry(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client()
	st := func() *fsm.State { return e.node.FSM().State() }
	c.Set(ctx(), "k", "v1", 100*time.Second)
	before, _ := st().Get("/k")
	if err := c.Set(ctx(), "k", "v2", redis.KeepTTL).Err(); err != nil {
		t.Fatalf("SET KEEPTTL: %v", err)
	}
	if kv, _ := st().Get("/k"); string(kv.Value) != "v2" || kv.Lease != before.Lease {
		t.Fatalf("SET KEEPTTL: %+v (lease was %d)", kv, before.Lease)
	}
	if v, err := c.Do(ctx(), "SET", "k", "v3", "KEEPTTL", "XX", "GET").Text(); err != nil || v != "v2" {
		t.Fatalf("SET KEEPTTL XX GET: %q %v", v, err)
	}
	if kv, _ := st().Get("/k"); string(kv.Value) != "v3" || kv.Lease != before.Lease {
		t.Fatalf("SET KEEPTTL XX GET: %+v", kv)
	}
	if err := c.Set(ctx(), "plain", "v", redis.KeepTTL).Err(); err != nil {
		t.Fatal(err)
	}
	if ttl, _ := c.TTL(ctx(), "plain").Result(); ttl != -1 {
		t.Fatalf("SET KEEPTTL of a new key: TTL %v", ttl)
	}
	if err := c.Do(ctx(), "SET", "k", "nx", "KEEPTTL", "NX").Err(); err != redis.Nil {
		t.Fatalf("SET KEEPTTL NX of an existing key: %v", err)
	}

	now := time.Now()
	for _, args := range [][]any{
		{"SET", "at", "v", "EXAT", itoa(now.Add(100 * time.Second).Unix())},
		{"SET", "pat", "v", "PXAT", itoa(now.Add(100 * time.Second).UnixMilli())},
	} {
		if err := c.Do(ctx(), args...).Err(); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if ttl, err := c.TTL(ctx(), args[1].(string)).Result(); err != nil || ttl < 97*time.Second || ttl > 100*time.Second {
			t.Fatalf("%v: TTL %v %v", args, ttl, err)
		}
	}
	rev := st().Revision()
	for _, tc := range []struct {
		args []any
		want string
	}{
		{[]any{"SET", "k", "v", "KEEPTTL", "EX", "10"}, "ERR syntax error"},
		{[]any{"SET", "k", "v", "EX", "10", "KEEPTTL"}, "ERR syntax error"},
		{[]any{"SET", "k", "v", "EX", "10", "EXAT", "1"}, "ERR syntax error"},
		{[]any{"SET", "k", "v", "EXAT", itoa(now.Unix() + 100), "PXAT", "1"}, "ERR syntax error"},
		{[]any{"SET", "k", "v", "EXAT", "0"}, "ERR invalid expire time"},
		{[]any{"SET", "k", "v", "EXAT", itoa(now.Unix() - 10)}, "ERR invalid expire time"},
		{[]any{"SET", "k", "v", "PXAT", "-5"}, "ERR invalid expire time"},
		{[]any{"SET", "k", "v", "EXAT", "9223372036854775807"}, "ERR invalid expire time"},
		{[]any{"SET", "k", "v", "PXAT", "soon"}, "ERR value is not an integer or out of range"},
	} {
		wantErr(t, c.Do(ctx(), tc.args...).Err(), tc.want)
	}
	if got := st().Revision(); got != rev {
		t.Fatalf("refused SETs moved the revision by %d", got-rev)
	}
}

// TestSetExGetSetGetDel: SETEX, PSETEX, GETSET and GETDEL (go-redis's
// SetEx, GetSet, GetDel) answered unknown command.
func TestSetExGetSetGetDel(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client()
	if err := c.SetEx(ctx(), "k", "v1", 30*time.Second).Err(); err != nil {
		t.Fatalf("SETEX: %v", err)
	}
	if ttl, _ := c.TTL(ctx(), "k").Result(); !about(ttl, 30*time.Second) {
		t.Fatalf("TTL after SETEX: %v", ttl)
	}
	if err := c.Do(ctx(), "PSETEX", "p", "2500", "v").Err(); err != nil {
		t.Fatalf("PSETEX: %v", err)
	}
	if ttl, _ := c.TTL(ctx(), "p").Result(); !about(ttl, 3*time.Second) {
		t.Fatalf("TTL after PSETEX 2500: %v", ttl)
	}
	if v, err := c.GetSet(ctx(), "k", "v2").Result(); err != nil || v != "v1" {
		t.Fatalf("GETSET: %q %v", v, err)
	}
	if ttl, _ := c.TTL(ctx(), "k").Result(); ttl != -1 {
		t.Fatalf("TTL after GETSET: %v (GETSET drops the TTL, as SET does)", ttl)
	}
	if _, err := c.GetSet(ctx(), "new", "v").Result(); err != redis.Nil {
		t.Fatalf("GETSET of a new key: %v", err)
	}
	c.SetEx(ctx(), "d", "gone", 30*time.Second)
	if v, err := c.GetDel(ctx(), "d").Result(); err != nil || v != "gone" {
		t.Fatalf("GETDEL: %q %v", v, err)
	}
	if _, ok := e.value("/d"); ok {
		t.Fatal("GETDEL left the key")
	}
	if _, err := c.GetDel(ctx(), "d").Result(); err != redis.Nil {
		t.Fatalf("GETDEL of an absent key: %v", err)
	}
	rev := e.node.FSM().State().Revision()
	for _, tc := range []struct {
		args []any
		want string
	}{
		{[]any{"SETEX", "k", "0", "v"}, "ERR invalid expire time"},
		{[]any{"SETEX", "k", "ten", "v"}, "ERR value is not an integer or out of range"},
		{[]any{"PSETEX", "k", "999", "v"}, "ERR invalid expire time"},
		{[]any{"SETEX", "k", "10"}, "ERR wrong number of arguments for 'setex' command"},
		{[]any{"GETSET", "k"}, "ERR wrong number of arguments for 'getset' command"},
		{[]any{"GETDEL", "k", "x"}, "ERR wrong number of arguments for 'getdel' command"},
	} {
		wantErr(t, c.Do(ctx(), tc.args...).Err(), tc.want)
	}
	if got := e.node.FSM().State().Revision(); got != rev {
		t.Fatalf("refused commands moved the revision by %d", got-rev)
	}
	if n := e.node.FSM().State().LeaseCount(); n != 1 { // p's
		t.Fatalf("%d leases left, want 1", n)
	}
}

// TestTypeAndStrlen: TYPE and STRLEN (what redis-cli --bigkeys asks of
// every key it scans) answered unknown command.
func TestTypeAndStrlen(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client()
	c.Set(ctx(), "k", "hello", 0)
	for _, tc := range []struct {
		cmd  *redis.StatusCmd
		want string
	}{{c.Type(ctx(), "k"), "string"}, {c.Type(ctx(), "absent"), "none"}} {
		if v, err := tc.cmd.Result(); err != nil || v != tc.want {
			t.Fatalf("%v: %q %v", tc.cmd.Args(), v, err)
		}
	}
	if n, err := c.StrLen(ctx(), "k").Result(); err != nil || n != 5 {
		t.Fatalf("STRLEN: %d %v", n, err)
	}
	if n, err := c.StrLen(ctx(), "absent").Result(); err != nil || n != 0 {
		t.Fatalf("STRLEN absent: %d %v", n, err)
	}
}
