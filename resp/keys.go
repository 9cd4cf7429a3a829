package resp

import (
	"strconv"
	"strings"
	"sync"

	"github.com/rosterhq/roster/fsm"
)

// KEYS and SCAN read prefixes: a glob that is a literal prefix and one
// trailing '*' is a plain prefix scan; any other glob filters a scan of
// its longest literal prefix. Keys are answered without the leading '/'.

// globPrefix returns a glob's literal prefix (escapes resolved) and whether
// the glob is exactly that prefix followed by one '*'.
func globPrefix(p string) (prefix string, plain bool) {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		switch c := p[i]; c {
		case '*':
			return b.String(), i == len(p)-1
		case '?', '[':
			return b.String(), false
		case '\\':
			if i+1 < len(p) {
				i++
			}
			b.WriteByte(p[i])
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), false // no wildcard: the pattern names one key
}

// globMatch is Redis's glob matching (stringmatchlen) over bytes: '*', '?',
// '[abc]', '[^a-z]' and '\' escapes. As there, the empty string matches
// only the empty pattern, not even "*" or "**" (KEYS * and SCAN MATCH *
// list it all the same: they scan their prefix without matching, as
// Redis lists every key for them).
func globMatch(p, s string) bool {
	if s == "" {
		return p == ""
	}
	var skipLonger bool
	return globMatchAt(p, s, &skipLonger, 0)
}

// maxGlobNesting bounds the stars matched within one another, as Redis
// does: a deeper pattern matches nothing.
const maxGlobNesting = 1000

// globMatchAt matches p against s at nesting stars deep. Once the rest of
// the pattern after a star matched s at no position, no earlier star can
// help by matching more (that would only start the rest later), so every
// enclosing star gives up at once (skipLonger): without it, a pattern of
// many stars against a long almost-matching key took exponential time
// (Redis's CVE-2022-36021).
func globMatchAt(p, s string, skipLonger *bool, nesting int) bool {
	if nesting > maxGlobNesting {
		return false
	}
	for len(p) > 0 {
		switch p[0] {
		case '*':
			for len(p) > 1 && p[1] == '*' {
				p = p[1:]
			}
			if len(p) == 1 {
				return true
			}
			for i := 0; i <= len(s); i++ {
				if globMatchAt(p[1:], s[i:], skipLonger, nesting+1) {
					return true
				}
				if *skipLonger {
					return false
				}
			}
			*skipLonger = true
			return false
		case '?':
			if len(s) == 0 {
				return false
			}
			s = s[1:]
		case '[':
			if len(s) == 0 {
				return false
			}
			n, ok := matchClass(p, s[0])
			if !ok {
				return false
			}
			p, s = p[n-1:], s[1:]
		case '\\':
			if len(p) >= 2 {
				p = p[1:]
			}
			fallthrough
		default:
			if len(s) == 0 || p[0] != s[0] {
				return false
			}
			s = s[1:]
		}
		p = p[1:]
	}
	return len(s) == 0
}

// matchClass matches c against the class that starts p ("[...]") and
// returns the length of the class; an unclosed class runs to the end.
func matchClass(p string, c byte) (int, bool) {
	i := 1
	not := i < len(p) && p[i] == '^'
	if not {
		i++
	}
	match := false
	for ; i < len(p) && p[i] != ']'; i++ {
		switch {
		case p[i] == '\\' && i+1 < len(p):
			i++
			match = match || p[i] == c
		case i+2 < len(p) && p[i+1] == '-' && p[i+2] != ']':
			lo, hi := p[i], p[i+2]
			if lo > hi {
				lo, hi = hi, lo
			}
			match = match || (c >= lo && c <= hi)
			i += 2
		default:
			match = match || p[i] == c
		}
	}
	if i >= len(p) { // unclosed: the class takes the rest of the pattern
		i = len(p) - 1
	}
	return i + 1, match != not
}

// scanGlob calls fn for each key matching the glob, in key order, after
// the Roster key after ("" from the start), until fn returns false.
func scanGlob(st *fsm.State, glob, after string, fn func(kv *fsm.KV, match bool) bool) {
	prefix, plain := globPrefix(glob)
	st.Range("/"+prefix, after, func(kv *fsm.KV) bool {
		return fn(kv, plain || globMatch(glob, redisKey(kv.Key)))
	})
}

// patternKeys: a glob argument needs read on its literal prefix.
func patternKeys(i int) func([][]byte) []string {
	return func(args [][]byte) []string {
		prefix, _ := globPrefix(string(args[i]))
		return []string{"/" + prefix}
	}
}

// KEYS pattern
func readKeys(_ *session, args [][]byte) (func(*fsm.State) reply, error) {
	glob := string(args[1])
	return func(st *fsm.State) reply {
		keys := []string{}
		scanGlob(st, glob, "", func(kv *fsm.KV, match bool) bool {
			if match {
				keys = append(keys, redisKey(kv.Key))
			}
			return true
		})
		return bulkStrings(keys)
	}, nil
}

// DBSIZE
func readDBSize(*session, [][]byte) (func(*fsm.State) reply, error) {
	return func(st *fsm.State) reply { return integer(int64(st.KeyCount())) }, nil
}

// scanArgs are SCAN's arguments.
type scanArgs struct {
	cursor uint64
	glob   string
	count  int
	other  bool // TYPE other than string: no key matches
}

func parseScan(args [][]byte) (scanArgs, error) {
	a := scanArgs{glob: "*", count: 10}
	c, err := strconv.ParseUint(string(args[1]), 10, 64)
	if err != nil {
		return a, errBadCursor
	}
	a.cursor = c
	for i := 2; i < len(args); i += 2 {
		if i+1 >= len(args) {
			return a, errSyntax
		}
		v := string(args[i+1])
		switch strings.ToLower(string(args[i])) {
		case "match":
			a.glob = v
		case "count":
			n, err := parseInt(args[i+1])
			if err != nil {
				return a, err
			}
			if n < 1 {
				return a, errSyntax
			}
			a.count = int(min(n, 100_000))
		case "type":
			a.other = !strings.EqualFold(v, "string")
		default:
			return a, errSyntax
		}
	}
	return a, nil
}

// scanKeys: SCAN needs read on its pattern's literal prefix.
func scanKeys(args [][]byte) []string {
	a, _ := parseScan(args)
	prefix, _ := globPrefix(a.glob)
	return []string{"/" + prefix}
}

// SCAN cursor [MATCH pattern] [COUNT n] [TYPE t]: looks at up to COUNT
// keys in key order and answers the matching ones with the next cursor (0
// when done). A cursor names the last key looked at, kept by the server, so
// a key present for the whole scan is answered exactly once whatever
// changes meanwhile.
func readScan(s *session, args [][]byte) (func(*fsm.State) reply, error) {
	a, err := parseScan(args)
	if err != nil {
		return nil, err
	}
	var after string
	if a.cursor != 0 {
		var ok bool
		if after, ok = s.srv.cursors.get(a.cursor); !ok {
			return nil, errBadCursor
		}
	}
	return func(st *fsm.State) reply {
		keys := []string{}
		var last string
		seen, more := 0, false
		scanGlob(st, a.glob, after, func(kv *fsm.KV, match bool) bool {
			if seen == a.count {
				more = true
				return false
			}
			seen++
			last = kv.Key
			if match && !a.other {
				keys = append(keys, redisKey(kv.Key))
			}
			return true
		})
		next := uint64(0)
		if more {
			next = s.srv.cursors.put(last)
		}
		return array([]reply{bulkString(strconv.FormatUint(next, 10)), bulkStrings(keys)})
	}, nil
}

// maxCursors bounds the SCAN cursors a server remembers; the oldest are
// forgotten first (a client resuming one then gets "invalid cursor").
const maxCursors = 16384

// cursorTable maps SCAN cursors to the last key they looked at.
type cursorTable struct {
	mu    sync.Mutex
	next  uint64
	after map[uint64]string
	ring  []uint64
}

func (c *cursorTable) put(after string) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.after == nil {
		c.after = make(map[uint64]string)
	}
	c.next++
	id := c.next
	if len(c.ring) == maxCursors {
		delete(c.after, c.ring[0])
		c.ring = c.ring[1:]
	}
	c.after[id] = after
	c.ring = append(c.ring, id)
	return id
}

func (c *cursorTable) get(id uint64) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	after, ok := c.after[id]
	return after, ok
}
