package resp

import (
	"fmt"
	"math/rand"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestRedisDiff is differential: a real redis-server (7.0, skipped when
// not installed) and a real Roster node get the same seeded random
// commands, on two connections each (so that WATCH sees another client's
// writes), and must answer alike, command by command; every 200 commands
// and at the end, every key's value and TTL must agree too. Only what
// must differ is normalised (redisDiff.same and its callers name each
// normalisation and why). ROSTER_REDISDIFF_OPS sets the number of
// commands (default 5,000), ROSTER_REDISDIFF_SEED the seed (default 1):
//
//	ROSTER_REDISDIFF_OPS=100000 ROSTER_REDISDIFF_SEED=$RANDOM go test -run TestRedisDiff ./resp/
func TestRedisDiff(t *testing.T) {
	redisAddr := startRedis(t)
	e := newEnv(t)
	ops, seed := 5000, int64(1)
	if s := os.Getenv("ROSTER_REDISDIFF_OPS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("ROSTER_REDISDIFF_OPS=%q: want a positive number", s)
		}
		ops = n
	}
	if s := os.Getenv("ROSTER_REDISDIFF_SEED"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("ROSTER_REDISDIFF_SEED=%q: want a number", s)
		}
		seed = n
	}
	t.Logf("seed %d, %d commands", seed, ops)
	d := newRedisDiff(t, redisAddr, e.addr)
	defer d.close()
	d.reset()
	c := randChooser{rand.New(rand.NewSource(seed))}
	for i := range ops {
		d.step(c)
		if (i+1)%200 == 0 {
			d.compareKeyspace()
		}
	}
	d.compareKeyspace()
	d.logStats()
}

// FuzzRedisDiff drives the comparison of TestRedisDiff from the fuzz
// input: each byte is one choice of the same generator (up to 64
// commands), from an empty keyspace on both servers.
//
//	go test -run '^$' -fuzz FuzzRedisDiff -fuzztime 1m ./resp/
func FuzzRedisDiff(f *testing.F) {
	for _, s := range []string{
		"\x00\x04\x02\x00\x00\x00\x01\x13\x00\x00\x1a\x00\x00",
		"\x01\x20\x00\x01\x22\x03\x00\x01\x05\x00\x00\x04\x01\x20\x00\x00\x23\x01",
		"\x00\x1d\x00\x02\x00\x03\x01\x1c\x04",
		"\x00\x17\x05\x00\x03\x02\x01\x00\x17\x05\x00\x03\x03\x01\x19\x05\x00",
	} {
		f.Add([]byte(s))
	}
	redisAddr := startRedis(f)
	fz := newRESPFuzzEnv(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		d := newRedisDiff(t, redisAddr, fz.addr)
		defer d.close()
		d.reset()
		c := &byteChooser{b: in}
		for range 64 {
			if d.step(c); c.done {
				break
			}
		}
		d.compareKeyspace()
	})
}

// FuzzInlineDiff sends "ECHO " and the fuzz input (without CR, LF and
// NUL) as an inline command line to redis-server and to Roster: both must
// split it alike (docs/redis.md, inline commands), so answer the same
// bytes, the same wrong number of arguments, or the same protocol error
// and close the connection. Normalisation: a NUL byte is taken out, as
// Redis looks for a line's end with strchr and so never finds the end of
// a line holding one (it answers nothing until 64 KiB came), where Roster
// reads the line up to the NUL, as sdssplitargs would.
//
//	go test -run '^$' -fuzz FuzzInlineDiff -fuzztime 1m ./resp/
func FuzzInlineDiff(f *testing.F) {
	for _, s := range []string{`a`, `"a b"`, `'a\'b'`, `"\x41\n"`, `"a"b`, `"open`, `'x' 'y'`, "\ta\v", `"\xzz"`, `""`} {
		f.Add(s)
	}
	redisAddr := startRedis(f)
	fz := newRESPFuzzEnv(f)
	f.Fuzz(func(t *testing.T, in string) {
		line := "ECHO " + strings.NewReplacer("\r", "", "\n", "", "\x00", "").Replace(in)
		want, got := inlineExchange(t, redisAddr, line), inlineExchange(t, fz.addr, line)
		if want != got {
			t.Fatalf("inline %q: Redis answered %s, Roster %s", line, want, got)
		}
	})
}

// inlineExchange sends line and then PING, and says what came back: the
// line's answer, and PONG or that the connection was closed.
func inlineExchange(t *testing.T, addr, line string) string {
	t.Helper()
	c, err := dialRESP(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	v, err := c.inline(line)
	if err != nil {
		t.Fatalf("inline %q: %v", line, err)
	}
	if v.isErr() {
		v.s = redisErrorText(v.s)
	}
	after, err := c.do("PING")
	if err != nil {
		return v.String() + ", then the connection closed"
	}
	return v.String() + ", then " + after.String()
}

// redisDiff holds the two servers' connections and what the comparison
// tracks of each connection's transaction.
type redisDiff struct {
	t testing.TB
	// redis and roster: two connections to each; probes: one more to
	// each, to read keys and TTLs outside the compared sequence.
	redis, roster                [2]*rconn
	redisProbe, rosterProbe      *rconn
	redisAddr, rosterAddr        string
	multi                        [2]bool
	queue                        [2][][]string
	absentWatched                [2]map[string]bool // keys absent when WATCHed
	history                      []string
	compared, skipped, departure map[string]int
}

func newRedisDiff(t testing.TB, redisAddr, rosterAddr string) *redisDiff {
	d := &redisDiff{t: t, redisAddr: redisAddr, rosterAddr: rosterAddr,
		compared: map[string]int{}, skipped: map[string]int{}, departure: map[string]int{}}
	for i := range 2 {
		d.redis[i], d.roster[i] = d.dial(redisAddr), d.dial(rosterAddr)
	}
	d.redisProbe, d.rosterProbe = d.dial(redisAddr), d.dial(rosterAddr)
	return d
}

func (d *redisDiff) dial(addr string) *rconn {
	d.t.Helper()
	c, err := dialRESP(addr)
	if err != nil {
		d.t.Fatal(err)
	}
	return c
}

func (d *redisDiff) close() {
	for _, c := range append(d.redis[:], append(d.roster[:], d.redisProbe, d.rosterProbe)...) {
		c.close()
	}
}

// reset empties both keyspaces (Roster has no FLUSHALL: every key the
// generator names is deleted, and with it the leases named after them).
func (d *redisDiff) reset() {
	d.t.Helper()
	d.must(d.redisProbe, "FLUSHALL")
	d.must(d.rosterProbe, append([]string{"DEL"}, diffKeys...)...)
	if v := d.must(d.rosterProbe, "DBSIZE"); v.String() != ":0" {
		d.t.Fatalf("Roster's DBSIZE after the reset: %s", v)
	}
}

func (d *redisDiff) must(c *rconn, args ...string) rval {
	d.t.Helper()
	v, err := c.do(args...)
	if err != nil {
		d.t.Fatalf("%q: %v", args, err)
	}
	if v.isErr() {
		d.t.Fatalf("%q: %s", args, v)
	}
	return v
}

// step generates one command for one of the two connections, runs it on
// both servers and compares the answers.
func (d *redisDiff) step(c chooser) {
	d.t.Helper()
	conn := c.intn(3)
	if conn == 2 { // now and then a connection closes: its MULTI and WATCH go
		if c.intn(8) == 0 {
			d.reconnect(c.intn(2))
			return
		}
		conn = c.intn(2)
	}
	now := time.Now()
	if !d.multi[conn] && c.intn(8) == 0 {
		d.pipelined(c, conn, now)
		return
	}
	cmd := genCommand(c, d.multi[conn], now)
	line := ""
	if c.intn(10) == 0 && !strings.EqualFold(cmd[0], "scan") {
		line = inlineLine(c, cmd) // as typed into redis-cli or telnet
	}
	d.run(conn, cmd, line, now)
}

// pipelined sends 2 to 8 commands in one write on connection conn of
// both servers, as a client pipelines them: Roster runs a pipeline's
// writes as one batch and its reads on one state (docs/redis.md), which
// must answer as Redis answers them one by one. Only commands whose
// comparison needs nothing looked at before they run are pipelined (no
// transaction, no TTL departure, no EXPIRE GT/LT, no SCAN, no delete
// while a key watched absent exists).
func (d *redisDiff) pipelined(c chooser, conn int, now time.Time) {
	d.t.Helper()
	var cmds [][]string
	for range 2 + c.intn(7) {
		cmd := genCommand(c, false, now)
		if d.pipelinable(cmd, now) {
			cmds = append(cmds, cmd)
		}
	}
	if len(cmds) == 0 {
		return
	}
	want, err := d.redis[conn].pipeline(cmds)
	if err != nil {
		d.t.Fatalf("pipeline %q on Redis: %v", cmds, err)
	}
	got, err := d.roster[conn].pipeline(cmds)
	if err != nil {
		d.t.Fatalf("pipeline %q on Roster: %v", cmds, err)
	}
	for i, cmd := range cmds {
		d.note(fmt.Sprintf("conn %d: pipelined %q → Redis %s, Roster %s", conn, cmd, want[i], got[i]))
	}
	for i, cmd := range cmds {
		if !d.same(cmd, nil, want[i], got[i]) {
			d.fail(conn, cmd, want[i], got[i])
		}
		d.compared["pipelined "+strings.ToLower(cmd[0])]++
	}
}

func (d *redisDiff) pipelinable(cmd []string, now time.Time) bool {
	switch name := strings.ToLower(cmd[0]); {
	case name == "multi", name == "exec", name == "discard", name == "watch", name == "unwatch", name == "scan":
		return false
	case ttlDeparture(cmd, now), comparesTTL(cmd):
		return false
	case name == "del" || name == "unlink" || name == "getdel":
		return len(d.absentWatched[0]) == 0 && len(d.absentWatched[1]) == 0
	}
	return true
}

func (d *redisDiff) reconnect(conn int) {
	d.t.Helper()
	d.redis[conn].close()
	d.roster[conn].close()
	d.redis[conn], d.roster[conn] = d.dial(d.redisAddr), d.dial(d.rosterAddr)
	d.multi[conn], d.queue[conn], d.absentWatched[conn] = false, nil, nil
	d.note(fmt.Sprintf("conn %d: reconnect", conn))
}

func (d *redisDiff) note(s string) {
	d.history = append(d.history, s)
	if len(d.history) > 40 {
		d.history = d.history[1:]
	}
}

// run sends cmd on connection conn of both servers and compares; as the
// inline command line when line is not empty.
func (d *redisDiff) run(conn int, cmd []string, line string, now time.Time) {
	d.t.Helper()
	name := strings.ToLower(cmd[0])
	if ttlDeparture(cmd, now) && !d.getExOfAbsent(conn, cmd) {
		// Normalisation: a TTL outside a lease's 2 s to 30 days, which
		// Redis takes (docs/redis.md, Keys, values and TTLs). Roster must
		// refuse it; Redis does not see it. Inside MULTI it is not sent at
		// all (Roster would answer the error inside EXEC's answer).
		if d.multi[conn] {
			d.skipped["TTL departure inside MULTI"]++
			return
		}
		got := d.send(d.roster[conn], cmd, line)
		d.note(fmt.Sprintf("conn %d: %q → Roster alone %s", conn, cmd, got))
		if !got.isErr() {
			d.fail(conn, cmd, rval{kind: '-', s: "(not sent: a TTL Redis takes, Roster must refuse)"}, got)
		}
		d.departure[name]++
		return
	}
	if name == "exec" && len(cmd) > 1 {
		// Found and left (docs/testing.md): Redis 7 answers an EXEC with
		// arguments "-EXECABORT Transaction discarded because of: wrong
		// number of arguments for 'exec' command" and ends the watches
		// also outside MULTI, where Roster answers "-ERR wrong number of
		// arguments …" and keeps them (resp/txn.go, another session's).
		d.skipped["EXEC with arguments (found and left)"]++
		return
	}
	if why := d.timingTie(conn, cmd); why != "" {
		d.skipped[why]++
		return
	}
	if name == "exec" && d.multi[conn] {
		if why := d.execTimingTie(conn); why != "" {
			d.skipped[why]++
			cmd, line, name = []string{"DISCARD"}, "", "discard"
		} else if d.watchDeparture(conn) {
			// Normalisation: docs/redis.md (Transactions, differences): a
			// key absent at WATCH, created and deleted again before EXEC,
			// counts as unchanged, where Redis fails the EXEC. The other
			// connection's transaction would do that, so it is discarded
			// instead.
			d.skipped["EXEC that would recreate-and-delete a key watched while absent"]++
			cmd, line, name = []string{"DISCARD"}, "", "discard"
		}
	} else if !d.multi[conn] && d.deletesAbsentWatched(cmd) {
		// The same departure, by a plain delete of a key another (or the
		// same) connection watched while it was absent.
		d.skipped["delete of a key watched while absent"]++
		return
	}
	if name == "watch" && !d.multi[conn] {
		for _, k := range cmd[1:] {
			if d.must(d.redisProbe, "EXISTS", k).String() == ":0" {
				if d.absentWatched[conn] == nil {
					d.absentWatched[conn] = map[string]bool{}
				}
				d.absentWatched[conn][k] = true
			}
		}
	}
	var want, got rval
	if name == "scan" {
		want, got = d.scanAll(d.redis[conn], cmd, false), d.scanAll(d.roster[conn], cmd, true)
	} else {
		want, got = d.send(d.redis[conn], cmd, line), d.send(d.roster[conn], cmd, line)
	}
	if line != "" {
		d.note(fmt.Sprintf("conn %d: inline %q → Redis %s, Roster %s", conn, line, want, got))
		d.compared["inline"]++
	} else {
		d.note(fmt.Sprintf("conn %d: %q → Redis %s, Roster %s", conn, cmd, want, got))
	}
	queue := d.queue[conn]
	d.track(conn, name, cmd, want)
	if !d.same(cmd, queue, want, got) {
		d.fail(conn, cmd, want, got)
	}
	d.compared[name]++
	if name == "exec" && queue != nil { // how transactions ended, for the log
		switch {
		case want.null:
			d.compared["exec: nil (a watched key changed)"]++
		case want.isErr():
			d.compared["exec: "+strings.Fields(want.s)[0]]++
		default:
			d.compared["exec: ran"]++
		}
	}
}

// getExOfAbsent: cmd is GETEX of a key absent now, outside MULTI, which
// Redis and Roster answer with null before they look at its time.
func (d *redisDiff) getExOfAbsent(conn int, cmd []string) bool {
	return !d.multi[conn] && strings.EqualFold(cmd[0], "getex") && len(cmd) > 1 &&
		d.must(d.redisProbe, "EXISTS", cmd[1]).String() == ":0"
}

// send sends cmd, or line when not empty (cmd as an inline command).
func (d *redisDiff) send(c *rconn, cmd []string, line string) rval {
	d.t.Helper()
	if line == "" {
		return d.do(c, cmd)
	}
	v, err := c.inline(line)
	if err != nil {
		d.t.Fatalf("inline %q: %v\nlast commands:\n%s", line, err, strings.Join(d.history, "\n"))
	}
	return v
}

func (d *redisDiff) do(c *rconn, cmd []string) rval {
	d.t.Helper()
	v, err := c.do(cmd...)
	if err != nil {
		d.t.Fatalf("%q: %v\nlast commands:\n%s", cmd, err, strings.Join(d.history, "\n"))
	}
	return v
}

func (d *redisDiff) fail(conn int, cmd []string, want, got rval) {
	d.t.Helper()
	d.t.Fatalf("conn %d: %q\nRedis  answered %s\nRoster answered %s\nlast commands:\n%s",
		conn, cmd, want, got, strings.Join(d.history, "\n"))
}

// track follows each connection's transaction from Redis's answers.
func (d *redisDiff) track(conn int, name string, cmd []string, reply rval) {
	switch {
	case name == "multi" && !d.multi[conn] && reply.String() == "+OK":
		d.multi[conn], d.queue[conn] = true, nil
	case d.multi[conn] && reply.String() == "+QUEUED":
		d.queue[conn] = append(d.queue[conn], cmd)
	case name == "exec" && d.multi[conn], name == "discard" && d.multi[conn] && reply.String() == "+OK":
		// EXEC ends the transaction and the watches even when refused (a
		// wrong number of arguments: EXECABORT), as in Redis 7.
		d.multi[conn], d.queue[conn], d.absentWatched[conn] = false, nil, nil
	case name == "unwatch" && !d.multi[conn]:
		d.absentWatched[conn] = nil
	}
}

// timingTie: EXPIRE … GT or LT whose new TTL is within 5 s of the key's
// TTL. Normalisation: Redis compares times in milliseconds, Roster a
// lease's remaining time (whole-second TTLs, milliseconds rounded up), and
// the two servers run the command a moment apart, so a near tie may go
// either way; such a command is not sent. Inside MULTI the command is not
// queued when a command queued before it names the key (its TTL would be
// decided inside EXEC).
func (d *redisDiff) timingTie(conn int, cmd []string) string {
	if !comparesTTL(cmd) {
		return ""
	}
	if d.multi[conn] {
		for _, q := range d.queue[conn] {
			if slices.Contains(q[1:], cmd[1]) {
				return "EXPIRE GT/LT after a queued command on its key"
			}
		}
	}
	if d.nearTTL(cmd) {
		return "EXPIRE GT/LT near the key's TTL"
	}
	return ""
}

// execTimingTie: the same near tie for a queued EXPIRE … GT/LT, looked at
// again just before EXEC (the other connection may have changed the TTL).
func (d *redisDiff) execTimingTie(conn int) string {
	for _, q := range d.queue[conn] {
		if comparesTTL(q) && d.nearTTL(q) {
			return "EXEC of an EXPIRE GT/LT near the key's TTL"
		}
	}
	return ""
}

func comparesTTL(cmd []string) bool {
	name := strings.ToLower(cmd[0])
	if (name != "expire" && name != "pexpire") || len(cmd) < 4 {
		return false
	}
	for _, o := range cmd[3:] {
		if o := strings.ToLower(o); o == "gt" || o == "lt" {
			return true
		}
	}
	return false
}

func (d *redisDiff) nearTTL(cmd []string) bool {
	n, err := parseInt([]byte(cmd[2]))
	if err != nil {
		return false
	}
	ms := n
	if strings.EqualFold(cmd[0], "expire") {
		ms = n * 1000
	}
	left, _ := d.must(d.redisProbe, "PTTL", cmd[1]).int()
	return left >= 0 && ms-left < 5000 && left-ms < 5000
}

// deletesAbsentWatched: cmd may delete a key that some connection
// watched while it was absent and that exists now.
func (d *redisDiff) deletesAbsentWatched(cmd []string) bool {
	switch strings.ToLower(cmd[0]) {
	case "del", "unlink", "getdel":
	default:
		return false
	}
	for _, k := range cmd[1:] {
		if (d.absentWatched[0][k] || d.absentWatched[1][k]) && d.must(d.redisProbe, "EXISTS", k).String() == ":1" {
			return true
		}
	}
	return false
}

// watchDeparture: conn's queued transaction writes a key that the other
// connection watched while it was absent.
func (d *redisDiff) watchDeparture(conn int) bool {
	other := d.absentWatched[1-conn]
	for _, q := range d.queue[conn] {
		if readOnlyDiff[strings.ToLower(q[0])] {
			continue
		}
		for _, k := range q[1:] {
			if other[k] {
				return true
			}
		}
	}
	return false
}

var readOnlyDiff = map[string]bool{"get": true, "mget": true, "exists": true, "type": true, "strlen": true,
	"ttl": true, "pttl": true, "ping": true, "echo": true, "unwatch": true}

// scanAll runs a whole SCAN from cmd's cursor, following the cursors, and
// answers its first error, or the keys it returned, sorted. Normalisation:
// the cursors and how keys fall into calls differ by design (Redis walks
// its hash table, Roster the keys in order, its cursors kept by the
// member: docs/redis.md, Commands); only the keys of a whole scan compare.
// Redis may return a key twice (a rehash during the scan): its list is
// deduplicated; Roster must return each key once.
func (d *redisDiff) scanAll(c *rconn, cmd []string, once bool) rval {
	d.t.Helper()
	cmd = slices.Clone(cmd)
	var keys []string
	for range 10000 {
		v := d.do(c, cmd)
		if v.kind != '*' || len(v.arr) != 2 || v.arr[1].kind != '*' {
			if keys == nil {
				return v
			}
			d.t.Fatalf("%q answered %s in the middle of a scan", cmd, v)
		}
		for _, k := range v.arr[1].arr {
			keys = append(keys, k.s)
		}
		if v.arr[0].s == "0" {
			slices.Sort(keys)
			n := len(keys)
			keys = slices.Compact(keys)
			if once && n != len(keys) {
				d.t.Fatalf("%q returned a key twice: %q", cmd, keys)
			}
			return bulkArray(keys)
		}
		cmd[1] = v.arr[0].s
	}
	d.t.Fatalf("%q: no end after 10,000 calls", cmd)
	return rval{}
}

func bulkArray(keys []string) rval {
	v := rval{kind: '*', arr: []rval{}}
	for _, k := range keys {
		v.arr = append(v.arr, rval{kind: '$', s: k})
	}
	return v
}

// same says whether Roster's answer got to cmd matches Redis's want,
// after the normalisations that must be. queue is the connection's
// transaction before cmd ran (EXEC's answers are compared one by one).
func (d *redisDiff) same(cmd []string, queue [][]string, want, got rval) bool {
	if want.isErr() || got.isErr() {
		return want.kind == got.kind && redisErrorText(want.s) == got.s
	}
	switch name := strings.ToLower(cmd[0]); {
	case (name == "ttl" || name == "pttl") && want.kind == ':' && got.kind == ':':
		// Normalisation: a TTL is a lease of whole seconds (milliseconds
		// rounded up), and Roster reads it a moment after Redis; TTL also
		// rounds up where Redis rounds to the nearest second. -1 and -2
		// are exact.
		w, _ := want.int()
		g, _ := got.int()
		if w < 0 || g < 0 {
			return w == g
		}
		slack := int64(2)
		if name == "pttl" {
			slack = 3000
		}
		return g-w <= slack && w-g <= slack
	case name == "keys" && want.kind == '*' && got.kind == '*':
		// Normalisation: KEYS answers in no promised order (Redis's hash
		// order, Roster's key order).
		return sortedKeys(want) == sortedKeys(got)
	case name == "exec" && len(queue) > 0 && want.kind == '*' && got.kind == '*' && !want.null && !got.null:
		if len(want.arr) != len(queue) || len(got.arr) != len(queue) {
			return false
		}
		for i, q := range queue {
			if !d.same(q, nil, want.arr[i], got.arr[i]) {
				return false
			}
		}
		return true
	}
	return want.String() == got.String()
}

func sortedKeys(v rval) string {
	keys := make([]string, len(v.arr))
	for i, e := range v.arr {
		keys[i] = e.String()
	}
	slices.Sort(keys)
	return strings.Join(keys, " ")
}

// compareKeyspace compares every key's value and TTL on the two servers.
func (d *redisDiff) compareKeyspace() {
	d.t.Helper()
	for _, k := range diffKeys {
		want, got := d.must(d.redisProbe, "GET", k), d.must(d.rosterProbe, "GET", k)
		if want.String() != got.String() {
			d.t.Fatalf("key %q: Redis holds %s, Roster %s\nlast commands:\n%s", k, want, got, strings.Join(d.history, "\n"))
		}
		want, got = d.must(d.redisProbe, "PTTL", k), d.must(d.rosterProbe, "PTTL", k)
		if !d.same([]string{"PTTL", k}, nil, want, got) {
			d.t.Fatalf("key %q: PTTL %s on Redis, %s on Roster\nlast commands:\n%s", k, want, got, strings.Join(d.history, "\n"))
		}
	}
	want, got := d.must(d.redisProbe, "DBSIZE"), d.must(d.rosterProbe, "DBSIZE")
	if want.String() != got.String() {
		d.t.Fatalf("DBSIZE %s on Redis, %s on Roster", want, got)
	}
}

func (d *redisDiff) logStats() {
	d.t.Logf("compared: %v", d.compared)
	d.t.Logf("sent to Roster alone (TTL departures): %v", d.departure)
	d.t.Logf("not sent (normalisations): %v", d.skipped)
}
