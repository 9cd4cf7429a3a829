package resp

import (
	"slices"
	"strings"
)

// The normalisations of TestRedisDiff: what must differ between Redis 7
// and Roster, each with its reason, and what the comparison skips.

// getExOfAbsent: cmd is GETEX of a key absent now, outside MULTI, which
// Redis and Roster answer with null before they look at its time.
func (d *redisDiff) getExOfAbsent(conn int, cmd []string) bool {
	return !d.multi[conn] && strings.EqualFold(cmd[0], "getex") && len(cmd) > 1 &&
		d.must(d.redisProbe, "EXISTS", cmd[1]).String() == ":0"
}

// timingTie: EXPIRE … GT or LT whose new TTL is within 10 s of the key's
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
	return left >= 0 && ms-left < 10_000 && left-ms < 10_000
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
		if (d.watched[0][k] || d.watched[1][k]) && d.must(d.redisProbe, "EXISTS", k).String() == ":1" {
			return true
		}
	}
	return false
}

// watchDeparture: conn's queued transaction writes a key that the other
// connection watched while it was absent.
func (d *redisDiff) watchDeparture(conn int) bool {
	other := d.watched[1-conn]
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
		// rounds up where Redis rounds to the nearest second; and a
		// lease's clock moves by the leader's ticks, which a loaded
		// machine delays. 5 s each way: every TTL the test sets is at
		// least 1,000 s and they are 10,007 s apart, so a wrong TTL is
		// still far out. -1 and -2 are exact.
		w, _ := want.int()
		g, _ := got.int()
		if w < 0 || g < 0 {
			return w == g
		}
		slack := int64(5)
		if name == "pttl" {
			slack = 5000
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

// incrByZero: INCRBY or DECRBY by 0.
func incrByZero(cmd []string) bool {
	name := strings.ToLower(cmd[0])
	return (name == "incrby" || name == "decrby") && len(cmd) == 3 && cmd[2] == "0"
}

// incrsWatched: cmd is INCRBY/DECRBY by 0 of a key a connection watches.
// Found and left (docs/testing.md): Roster's increment of 0 writes nothing
// (fsm.Incr, replicated so since the first version), where Redis counts
// it as a write of the key, so a WATCH of it fails the EXEC in Redis
// only.
func (d *redisDiff) incrsWatched(cmd []string) bool {
	if !incrByZero(cmd) {
		return false
	}
	_, w0 := d.watched[0][cmd[1]]
	_, w1 := d.watched[1][cmd[1]]
	return w0 || w1
}

// execIncrsWatched: conn's transaction holds such an increment of a key
// the other connection watches.
func (d *redisDiff) execIncrsWatched(conn int) bool {
	for _, q := range d.queue[conn] {
		if _, w := d.watched[1-conn][q[1%len(q)]]; w && incrByZero(q) {
			return true
		}
	}
	return false
}
