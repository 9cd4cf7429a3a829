package resp

import (
	"fmt"
	"math"
	"math/rand"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rosterhq/roster/fsm"
)

// The commands TestRedisDiff and FuzzRedisDiff send to Redis and to
// Roster: every command docs/redis.md lists for keys, over a small key
// space so that commands collide, with arguments right and wrong.

// chooser makes the generator's choices: a seeded math/rand for the test,
// the fuzz input's bytes for the fuzz target.
type chooser interface {
	intn(n int) int // in [0, n)
}

type randChooser struct{ r *rand.Rand }

func (c randChooser) intn(n int) int { return c.r.Intn(n) }

// byteChooser reads one byte per choice; once the input is used up it
// answers 0 and says so (done).
type byteChooser struct {
	b    []byte
	done bool
}

func (c *byteChooser) intn(n int) int {
	if len(c.b) == 0 {
		c.done = true
		return 0
	}
	v := int(c.b[0])
	c.b = c.b[1:]
	return v % n
}

func pick(c chooser, from []string) string { return from[c.intn(len(from))] }

func pick3(c chooser, from [][]string) []string { return slices.Clone(from[c.intn(len(from))]) }

var (
	// diffKeys: the empty key, prefixes with '/', and glob characters in
	// keys (h*o, x[1]) for KEYS and SCAN patterns to escape.
	diffKeys = []string{"a", "b", "c", "k:1", "k:2", "k:10", "s/x", "s/y/z", "h*o", "x[1]", "", "é"}
	// diffValues: integers at int64's ends, spellings Redis does not read
	// as integers, text.
	diffValues = []string{"1", "0", "-3", "10", "abc", "", "007", "+7", "-0", " 7", "x y",
		"9223372036854775807", "-9223372036854775808", "9223372036854775806", "99999999999999999999",
		"\x00\xff\r\n", "12\x00"}
	// diffInts: INCRBY's and DECRBY's argument.
	diffInts = []string{"1", "-1", "0", "7", "100", "-100", "abc", "", "+5", "05", "-0", "1.5", " 7",
		"9223372036854775807", "-9223372036854775808", "18446744073709551616"}
	diffPatterns = []string{"*", "k:*", "k:?", "k:[12]", "k:[^1]*", "*a*", "a", "s/*", "s/*/z", "h\\*o",
		"x\\[1]", "x[[]1]", "[a-c]", "[c-a]", "*[", "k:1*", "?", "\\", "k:\\1", "[^a]", "*1", "", "s/", "[]", "k:[!1]",
		"[a-", "k:[1-2", "\\*", "*\\", "[\\]]", "k?*", "**", "*?1", "x[1]", "?", "??", "\xc3?", "[\xc3]*"}
	// diffBadTTLs are refused by Redis too: zero or negative where Redis
	// wants a positive time, not integers, or overflowing its
	// milliseconds.
	diffBadTTLs = []string{"0", "-5", "abc", "1.5", "", "+100", "0100", "9223372036854775807",
		"-9223372036854775808", "9223372036854776"}
)

// genTTL is a relative TTL argument in seconds (ms false) or
// milliseconds. A good one is at least 1,000 s, so that no key expires
// during a run (expiry would race the two servers' clocks); some are
// refused by both; some are a TTL Redis takes but Roster does not (below
// 2 s, above 30 days, or negative for EXPIRE: see ttlDeparture).
func genTTL(c chooser, ms bool) string {
	switch c.intn(8) {
	case 0:
		return pick(c, diffBadTTLs)
	case 1:
		if ms {
			return pick(c, []string{"1", "999", "3000000000"})
		}
		return pick(c, []string{"1", "-1", "3000000", "100000000"})
	}
	s := int64(1000 + c.intn(250)*10007) // up to 2,492,743 s, under 30 days
	if ms {
		return strconv.FormatInt(s*1000+int64(c.intn(1000)), 10)
	}
	return strconv.FormatInt(s, 10)
}

// genAt is an absolute time for EXAT (ms false) or PXAT.
func genAt(c chooser, ms bool, now time.Time) string {
	var at int64
	switch c.intn(6) {
	case 0:
		return pick(c, []string{"0", "-1", "abc", "9223372036854775807"})
	case 1:
		at = now.Unix() - 100 // past: Redis deletes the key
	case 2:
		at = now.Unix() + 40*86400
	default:
		at = now.Unix() + int64(1000+c.intn(250)*10007)
	}
	if ms {
		return strconv.FormatInt(at*1000+int64(c.intn(1000)), 10)
	}
	return strconv.FormatInt(at, 10)
}

func genKeys(c chooser, max int) []string {
	ks := make([]string, 1+c.intn(max))
	for i := range ks {
		ks[i] = pick(c, diffKeys)
	}
	return ks
}

// genSetOptions is SET's or GETEX's options, valid or not.
func genSetOptions(c chooser, now time.Time, getex bool) []string {
	var out []string
	for range c.intn(4) {
		switch c.intn(11) {
		case 0:
			out = append(out, "NX")
		case 1:
			out = append(out, "XX")
		case 2:
			out = append(out, "GET")
		case 3:
			out = append(out, "KEEPTTL")
		case 4:
			out = append(out, "EX", genTTL(c, false))
		case 5:
			out = append(out, "PX", genTTL(c, true))
		case 6:
			out = append(out, "EXAT", genAt(c, false, now))
		case 7:
			out = append(out, "PXAT", genAt(c, true, now))
		case 8:
			out = append(out, pick(c, []string{"BAD", "EX", "PX", "exat", "nx"})) // perhaps without its value
		case 9:
			out = append(out, "PERSIST")
		case 10:
			if getex {
				out = append(out, "PERSIST")
			} else {
				out = append(out, "ex", genTTL(c, false))
			}
		}
	}
	return out
}

// txnRefused are commands Roster refuses inside MULTI where Redis queues
// them (docs/redis.md, a departure): never generated inside one.
var txnRefused = map[string]bool{"keys": true, "scan": true, "dbsize": true, "select": true,
	"auth": true, "client": true}

// genCommand is one command; inMulti says the connection is in a
// transaction.
func genCommand(c chooser, inMulti bool, now time.Time) []string {
	if inMulti && c.intn(5) == 0 { // transactions of a few commands
		return []string{pick(c, []string{"EXEC", "EXEC", "EXEC", "exec", "DISCARD"})}
	}
	k := pick(c, diffKeys)
	var cmd []string
	for {
		cmd = genOne(c, k, now)
		if !inMulti || !txnRefused[strings.ToLower(cmd[0])] {
			break
		}
	}
	// A wrong number of arguments, now and then.
	switch c.intn(25) {
	case 0:
		if len(cmd) > 1 {
			cmd = cmd[:len(cmd)-1]
		}
	case 1:
		cmd = append(cmd, "x")
	}
	// Names in any case.
	switch c.intn(5) {
	case 0:
		cmd[0] = strings.ToLower(cmd[0])
	case 1:
		cmd[0] = strings.ToUpper(cmd[0][:1]) + strings.ToLower(cmd[0][1:])
	}
	return cmd
}

func genOne(c chooser, k string, now time.Time) []string {
	switch c.intn(42) {
	case 0, 1, 2:
		return []string{"GET", k}
	case 3:
		return append([]string{"MGET"}, genKeys(c, 4)...)
	case 4, 5, 6, 7:
		return append([]string{"SET", k, pick(c, diffValues)}, genSetOptions(c, now, false)...)
	case 8:
		return []string{"SETNX", k, pick(c, diffValues)}
	case 9:
		return []string{"SETEX", k, genTTL(c, false), pick(c, diffValues)}
	case 10:
		return []string{"PSETEX", k, genTTL(c, true), pick(c, diffValues)}
	case 11:
		return []string{"GETSET", k, pick(c, diffValues)}
	case 12:
		return []string{"GETDEL", k}
	case 13, 14:
		opts := genSetOptions(c, now, true)
		return append([]string{"GETEX", k}, opts[:min(len(opts), 1+c.intn(3))]...)
	case 15:
		cmd := []string{"MSET"}
		for range 1 + c.intn(3) {
			cmd = append(cmd, pick(c, diffKeys), pick(c, diffValues))
		}
		if c.intn(6) == 0 {
			cmd = append(cmd, pick(c, diffKeys)) // a key without its value
		}
		return cmd
	case 16:
		return append([]string{pick(c, []string{"DEL", "UNLINK"})}, genKeys(c, 3)...)
	case 17:
		return append([]string{"EXISTS"}, genKeys(c, 4)...)
	case 18:
		return []string{pick(c, []string{"TYPE", "STRLEN"}), k}
	case 19, 20:
		return []string{pick(c, []string{"INCR", "DECR"}), k}
	case 21, 22:
		return []string{pick(c, []string{"INCRBY", "DECRBY"}), k, pick(c, diffInts)}
	case 23, 24:
		name := pick(c, []string{"EXPIRE", "PEXPIRE"})
		cmd := []string{name, k, genTTL(c, name == "PEXPIRE")}
		for range c.intn(3) {
			cmd = append(cmd, pick(c, []string{"NX", "XX", "GT", "LT", "gt", "BAD"}))
		}
		return cmd
	case 25, 26:
		return []string{pick(c, []string{"TTL", "PTTL"}), k}
	case 27:
		return []string{"PERSIST", k}
	case 28:
		return []string{"KEYS", pick(c, diffPatterns)}
	case 29, 30:
		cmd := []string{"SCAN", pick(c, []string{"0", "0", "0", "abc", "-"})}
		for range c.intn(4) {
			switch c.intn(5) {
			case 0, 1:
				cmd = append(cmd, "MATCH", pick(c, diffPatterns))
			case 2:
				cmd = append(cmd, "COUNT", pick(c, []string{"1", "2", "3", "10", "0", "-1", "abc"}))
			case 3:
				cmd = append(cmd, "TYPE", pick(c, []string{"string", "STRING", "hash", "list"}))
			case 4:
				cmd = append(cmd, pick(c, []string{"BAD", "MATCH", "COUNT"}))
			}
		}
		return cmd
	case 31:
		return []string{"DBSIZE"}
	case 32, 33:
		return []string{pick(c, []string{"MULTI", "MULTI", "EXEC", "EXEC", "DISCARD", "UNWATCH"})}
	case 34:
		return append([]string{"WATCH"}, genKeys(c, 3)...)
	case 35:
		return []string{"EXEC"}
	case 36:
		return append([]string{"PING"}, []string{"hi"}[:c.intn(2)]...)
	case 37:
		return []string{"ECHO", pick(c, diffValues)}
	case 38:
		return []string{"SELECT", pick(c, []string{"0", "0", "1", "16", "-1", "abc"})}
	case 39:
		// Without access control, as Redis without a password.
		return pick3(c, [][]string{{"AUTH", "x"}, {"AUTH", "default", "x"}, {"AUTH", "bob", "x"}, {"AUTH", "a", "b", "c"}})
	case 40:
		return pick3(c, [][]string{{"CLIENT", "SETNAME", "n1"}, {"CLIENT", "SETNAME", "a b"}, {"CLIENT", "SETNAME", ""},
			{"CLIENT", "GETNAME"}, {"CLIENT", "FOO"}, {"CLIENT", "SETNAME"}, {"client", "getname", "x"}})
	}
	return []string{pick(c, []string{"FOO", "GETT", "SETT", "ROSTER"}), k}
}

// ttlDeparture says cmd gives a TTL (relative or absolute) that Redis 7
// takes but Roster refuses, a documented departure (docs/redis.md, Keys,
// values and TTLs): a lease lives 2 s to 30 days, where Redis takes any
// positive time (and for EXPIRE a negative one, deleting the key; for
// EXAT a past time, the same). Such a command goes to Roster alone,
// which must refuse it.
func ttlDeparture(cmd []string, now time.Time) bool {
	name := strings.ToLower(cmd[0])
	type ttlArg struct{ unit, arg string }
	var args []ttlArg
	switch name {
	case "setex", "psetex", "expire", "pexpire":
		if len(cmd) > 2 {
			unit := "ex"
			if name[0] == 'p' {
				unit = "px"
			}
			if name == "expire" || name == "pexpire" {
				unit = "expire-" + unit
			}
			args = append(args, ttlArg{unit, cmd[2]})
		}
	case "set", "getex":
		// Of a repeated option, the last time counts, on both.
		for i := 2; i+1 < len(cmd); i++ {
			switch u := strings.ToLower(cmd[i]); u {
			case "ex", "px", "exat", "pxat":
				args = []ttlArg{{u, cmd[i+1]}}
				i++
			}
		}
	}
	nowMs := now.UnixMilli()
	for _, a := range args {
		n, err := parseInt([]byte(a.arg))
		if err != nil {
			continue // refused as not an integer by both
		}
		var redisOK bool
		var ms int64 // the TTL Roster would take, in ms
		switch a.unit {
		case "ex":
			redisOK = n > 0 && n <= math.MaxInt64/1000 && n*1000 <= math.MaxInt64-nowMs
			ms = n * 1000
		case "px":
			redisOK = n > 0 && n <= math.MaxInt64-nowMs
			ms = n
		case "exat":
			redisOK = n > 0 && n <= math.MaxInt64/1000
			ms = n*1000 - nowMs
		case "pxat":
			redisOK = n > 0
			ms = n - nowMs
		case "expire-ex":
			redisOK = n <= math.MaxInt64/1000 && n >= math.MinInt64/1000 && n*1000 <= math.MaxInt64-nowMs
			ms = n * 1000
		case "expire-px":
			redisOK = n <= math.MaxInt64-nowMs
			ms = n
		}
		if !redisOK {
			continue
		}
		// Roster's lease: milliseconds rounded up to whole seconds, 2 s to
		// 30 days. An absolute time's TTL is a little shorter by the time
		// Roster reads its clock: absolute times are never near a bound.
		secs := int64(0)
		if ms > 0 {
			secs = (ms-1)/1000 + 1
		}
		if secs < fsm.MinTTL || secs > fsm.MaxTTL {
			return true
		}
	}
	return false
}

// inlineLine spells cmd as an inline command line, each argument bare
// when it can be, else in double or single quotes, as redis-cli's user
// would type it (Redis splits it with sdssplitargs).
func inlineLine(c chooser, cmd []string) string {
	parts := make([]string, len(cmd))
	for i, a := range cmd {
		bare := a != ""
		for j := 0; j < len(a); j++ {
			if b := a[j]; b <= ' ' || b >= 0x7f || b == '"' || b == '\'' {
				bare = false
			}
		}
		switch {
		case bare && c.intn(3) > 0:
			parts[i] = a
		case !strings.ContainsAny(a, "'\\\x00\r\n") && c.intn(2) == 0:
			parts[i] = "'" + a + "'"
		default:
			var b strings.Builder
			b.WriteByte('"')
			for j := 0; j < len(a); j++ {
				switch ch := a[j]; {
				case ch == '"' || ch == '\\':
					b.WriteByte('\\')
					b.WriteByte(ch)
				case ch == '\n':
					b.WriteString(`\n`)
				case ch < ' ' || ch >= 0x7f:
					fmt.Fprintf(&b, `\x%02x`, ch)
				default:
					b.WriteByte(ch)
				}
			}
			b.WriteByte('"')
			parts[i] = b.String()
		}
	}
	return strings.Join(parts, strings.Repeat(" ", 1+c.intn(2)))
}
