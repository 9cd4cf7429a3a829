package resp

import (
	"fmt"
	"maps"
	"math/rand"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rosterhq/roster/internal/logging/logtest"
	"github.com/rosterhq/roster/registry"
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
	runRedisDiff(t, redisAddr, [2]string{e.addr, e.addr}, 5000, false)
}

// TestRedisDiffAcrossMembers is TestRedisDiff against a two-member
// cluster: the first connection is a follower's (its writes and EXEC are
// forwarded to the leader, its reads linearizable), the second the
// leader's, so WATCH on one member sees writes made through the other.
// 1,500 commands by default (ROSTER_REDISDIFF_OPS sets both tests').
func TestRedisDiffAcrossMembers(t *testing.T) {
	redisAddr := startRedis(t)
	log := logtest.ForTest(t)
	nodes := openCluster(t, log, 2)
	var addrs [2]string
	for i, n := range []*registry.Node{nodes[1], nodes[0]} {
		srv, err := New(Config{}, n, log.With("redis", i))
		if err != nil {
			t.Fatal(err)
		}
		addrs[i] = serveTest(t, srv)
	}
	runRedisDiff(t, redisAddr, addrs, 1500, false)
}

// leaderLost: in TestRedisDiffAcrossMembers a loaded machine can cost the
// two members their leader for a moment; Roster then answers TRYAGAIN (or
// TIMEOUT) where Redis, one process, answers. That is no difference from
// Redis: the run is inconclusive and skips, saying so. (On one member, as
// in TestRedisDiff, it fails as any other difference.)
func (d *redisDiff) leaderLost(v rval) {
	d.t.Helper()
	if d.members > 1 && v.isErr() && (strings.HasPrefix(v.s, "TRYAGAIN") || strings.HasPrefix(v.s, "TIMEOUT")) {
		d.t.Skipf("Roster answered -%s: the cluster lost its leader (a loaded machine?); no difference from Redis, the run is inconclusive\nlast commands:\n%s",
			v.s, strings.Join(d.history, "\n"))
	}
}

// runRedisDiff runs ops commands (ROSTER_REDISDIFF_OPS) of the seed
// ROSTER_REDISDIFF_SEED (1) against redis-server and Roster, whose two
// connections go to rosterAddrs; with events, comparing after each step
// which keys had keyspace notifications (redisdiffnotify_test.go).
func runRedisDiff(t *testing.T, redisAddr string, rosterAddrs [2]string, ops int, events bool) {
	seed := int64(1)
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
	d := newRedisDiff(t, redisAddr, rosterAddrs)
	defer d.close()
	if rosterAddrs[0] != rosterAddrs[1] {
		d.members = 2
	}
	d.reset()
	if events {
		d.subscribe()
	}
	c := randChooser{rand.New(rand.NewSource(seed))}
	for i := range ops {
		var before map[string]bool
		if events {
			before = d.present()
		}
		d.step(c)
		if events {
			d.compareEvents(before)
		}
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
		d := newRedisDiff(t, redisAddr, [2]string{fz.addr, fz.addr})
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
	redis, roster           [2]*rconn
	redisProbe, rosterProbe *rconn
	redisAddr               string
	rosterAddrs             [2]string // each connection's member
	members                 int       // Roster members behind rosterAddrs
	// redisSub, rosterSub: PSUBSCRIBEd to every key's keyspace channel
	// (nil unless events are compared); stepCmds: what the step sent.
	redisSub, rosterSub *rconn
	stepCmds            [][]string
	multi               [2]bool
	queue               [2][][]string
	// watched: each connection's WATCHed keys, true for a key absent
	// when watched.
	watched                      [2]map[string]bool
	history                      []string
	compared, skipped, departure map[string]int
}

func newRedisDiff(t testing.TB, redisAddr string, rosterAddrs [2]string) *redisDiff {
	d := &redisDiff{t: t, redisAddr: redisAddr, rosterAddrs: rosterAddrs,
		compared: map[string]int{}, skipped: map[string]int{}, departure: map[string]int{}}
	for i := range 2 {
		d.redis[i], d.roster[i] = d.dial(redisAddr), d.dial(rosterAddrs[i])
	}
	d.redisProbe, d.rosterProbe = d.dial(redisAddr), d.dial(rosterAddrs[0])
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
	for _, c := range append(d.redis[:], append(d.roster[:], d.redisProbe, d.rosterProbe, d.redisSub, d.rosterSub)...) {
		if c != nil {
			c.close()
		}
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
	d.leaderLost(v)
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
	if !d.multi[conn] && c.intn(16) == 0 {
		d.pipelinedTxn(c, conn, now)
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
	want, got := d.pipelineBoth(conn, cmds)
	for i, cmd := range cmds {
		d.note(fmt.Sprintf("conn %d: pipelined %q → Redis %s, Roster %s", conn, cmd, want[i], got[i]))
	}
	for i, cmd := range cmds {
		if !d.same(cmd, nil, want[i], got[i]) {
			d.fail(conn, cmd, want[i], got[i])
		}
		d.compared["pipelined "+strings.ToLower(cmd[0])]++
		d.stepCmds = append(d.stepCmds, cmd)
	}
}

// pipelineBoth sends cmds in one write on connection conn of both
// servers and returns Redis's answers and Roster's.
func (d *redisDiff) pipelineBoth(conn int, cmds [][]string) (want, got []rval) {
	d.t.Helper()
	want, err := d.redis[conn].pipeline(cmds)
	if err != nil {
		d.t.Fatalf("pipeline %q on Redis: %v", cmds, err)
	}
	got, err = d.roster[conn].pipeline(cmds)
	if err != nil {
		d.t.Fatalf("pipeline %q on Roster: %v", cmds, err)
	}
	for _, v := range got {
		d.leaderLost(v)
	}
	return want, got
}

// pipelinedTxn sends MULTI, up to six commands and EXEC in one write, as
// go-redis's TxPipelined does, on connection conn of both servers. The
// commands are those the transaction may hold whose comparison needs
// nothing looked at while they are queued (see txnPipelinable).
func (d *redisDiff) pipelinedTxn(c chooser, conn int, now time.Time) {
	d.t.Helper()
	cmds := [][]string{{"MULTI"}}
	for range 1 + c.intn(6) {
		cmd := genCommand(c, true, now)
		if d.txnPipelinable(conn, cmds[1:], cmd, now) {
			cmds = append(cmds, cmd)
		}
	}
	cmds = append(cmds, []string{"EXEC"})
	want, got := d.pipelineBoth(conn, cmds)
	var queue [][]string
	for i, cmd := range cmds {
		d.note(fmt.Sprintf("conn %d: pipelined %q → Redis %s, Roster %s", conn, cmd, want[i], got[i]))
		if i > 0 && i < len(cmds)-1 && want[i].String() == "+QUEUED" {
			queue = append(queue, cmd)
		}
	}
	for i, cmd := range cmds {
		if !d.same(cmd, queue, want[i], got[i]) {
			d.fail(conn, cmd, want[i], got[i])
		}
	}
	d.compared["pipelined MULTI … EXEC"]++
	d.stepCmds = append(d.stepCmds, cmds...)
	d.watched[conn] = nil // EXEC ends the watches
}

// txnPipelinable: cmd may follow queued in a pipelined transaction of
// conn: no transaction command, no TTL departure, an EXPIRE GT/LT only
// first on its key and far from its TTL, no write of a key the other
// connection watched while absent, no INCRBY 0 of a key it watches (the
// normalisations of run, decided before the pipeline is sent).
func (d *redisDiff) txnPipelinable(conn int, queued [][]string, cmd []string, now time.Time) bool {
	switch name := strings.ToLower(cmd[0]); {
	case name == "multi", name == "exec", name == "discard", name == "watch", ttlDeparture(cmd, now):
		return false
	case comparesTTL(cmd):
		for _, q := range queued {
			if slices.Contains(q[1:], cmd[1]) {
				return false
			}
		}
		if d.nearTTL(cmd) {
			return false
		}
	case incrByZero(cmd):
		if _, w := d.watched[1-conn][cmd[1]]; w {
			return false
		}
	case !readOnlyDiff[name]:
		for _, k := range cmd[1:] {
			if d.watched[1-conn][k] {
				return false
			}
		}
	}
	return true
}

func (d *redisDiff) pipelinable(cmd []string, now time.Time) bool {
	switch name := strings.ToLower(cmd[0]); {
	case name == "multi", name == "exec", name == "discard", name == "watch", name == "unwatch", name == "scan":
		return false
	case ttlDeparture(cmd, now), comparesTTL(cmd):
		return false
	case name == "del" || name == "unlink" || name == "getdel":
		return !slices.Contains(slices.Collect(maps.Values(d.watched[0])), true) &&
			!slices.Contains(slices.Collect(maps.Values(d.watched[1])), true)
	case incrByZero(cmd):
		return len(d.watched[0]) == 0 && len(d.watched[1]) == 0
	}
	return true
}

func (d *redisDiff) reconnect(conn int) {
	d.t.Helper()
	d.redis[conn].close()
	d.roster[conn].close()
	d.redis[conn], d.roster[conn] = d.dial(d.redisAddr), d.dial(d.rosterAddrs[conn])
	d.multi[conn], d.queue[conn], d.watched[conn] = false, nil, nil
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
		} else if d.execIncrsWatched(conn) {
			d.skipped["EXEC of an INCRBY 0 of a key watched (found and left)"]++
			cmd, line, name = []string{"DISCARD"}, "", "discard"
		}
	} else if !d.multi[conn] && d.deletesAbsentWatched(cmd) {
		// The same departure, by a plain delete of a key another (or the
		// same) connection watched while it was absent.
		d.skipped["delete of a key watched while absent"]++
		return
	} else if !d.multi[conn] && d.incrsWatched(cmd) {
		d.skipped["INCRBY 0 of a key watched (found and left)"]++
		return
	}
	if name == "watch" && !d.multi[conn] {
		if d.watched[conn] == nil {
			d.watched[conn] = map[string]bool{}
		}
		for _, k := range cmd[1:] {
			if _, again := d.watched[conn][k]; !again { // the first WATCH of a key counts
				d.watched[conn][k] = d.must(d.redisProbe, "EXISTS", k).String() == ":0"
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
	d.stepCmds = append(d.stepCmds, cmd)
	if name == "exec" {
		d.stepCmds = append(d.stepCmds, queue...) // what it ran
	}
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
	d.leaderLost(v)
	return v
}

func (d *redisDiff) do(c *rconn, cmd []string) rval {
	d.t.Helper()
	v, err := c.do(cmd...)
	if err != nil {
		d.t.Fatalf("%q: %v\nlast commands:\n%s", cmd, err, strings.Join(d.history, "\n"))
	}
	d.leaderLost(v)
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
	case name == "exec" && (d.multi[conn] || len(cmd) > 1), name == "discard" && d.multi[conn] && reply.String() == "+OK":
		// EXEC ends the transaction and the watches even when refused (a
		// wrong number of arguments: EXECABORT, also outside MULTI), as
		// in Redis 7.
		d.multi[conn], d.queue[conn], d.watched[conn] = false, nil, nil
	case name == "unwatch" && !d.multi[conn]:
		d.watched[conn] = nil
	}
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
