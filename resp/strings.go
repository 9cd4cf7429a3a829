package resp

import (
	"errors"
	"math"
	"strings"
	"time"

	"github.com/rosterhq/roster/fsm"
	"github.com/rosterhq/roster/registry"
)

// rosterKey maps the RESP key K to the Roster key /K, checked.
func rosterKey(k []byte) (string, error) {
	key := "/" + string(k)
	return key, fsm.ValidateKey(key)
}

// redisKey maps a Roster key back: the leading / goes.
func redisKey(key string) string { return strings.TrimPrefix(key, "/") }

// rosterKeys maps every argument, checked; duplicates count once (the
// first one), since a Txn names each key once.
func rosterKeys(args [][]byte) ([]string, error) {
	keys, err := keyArgs(args)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(keys))
	seen := make(map[string]bool, len(keys))
	for _, k := range keys {
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out, nil
}

func isCAS(err error) bool { return errors.Is(err, fsm.ErrCASFailed) }

// GET key
func readGet(_ *session, args [][]byte) (func(view) reply, error) {
	key, err := rosterKey(args[1])
	if err != nil {
		return nil, err
	}
	return func(st view) reply {
		if kv, ok := st.Get(key); ok {
			return bulk(kv.Value)
		}
		return nullReply
	}, nil
}

// keyArgs maps every argument, checked, duplicates kept.
func keyArgs(args [][]byte) ([]string, error) {
	keys := make([]string, 0, len(args))
	for _, a := range args {
		k, err := rosterKey(a)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// MGET key…: a null for each absent key.
func readMGet(_ *session, args [][]byte) (func(view) reply, error) {
	keys, err := keyArgs(args[1:])
	if err != nil {
		return nil, err
	}
	return func(st view) reply {
		items := make([]reply, len(keys))
		for i, k := range keys {
			items[i] = nullReply
			if kv, ok := st.Get(k); ok {
				items[i] = bulk(kv.Value)
			}
		}
		return array(items)
	}, nil
}

// EXISTS key…: how many of them exist, a key named twice counting twice.
func readExists(_ *session, args [][]byte) (func(view) reply, error) {
	keys, err := keyArgs(args[1:])
	if err != nil {
		return nil, err
	}
	return func(st view) reply {
		var n int64
		for _, k := range keys {
			if _, ok := st.Get(k); ok {
				n++
			}
		}
		return integer(n)
	}, nil
}

// setArgs are SET's options.
type setArgs struct {
	key     string
	value   []byte
	ttl     int64 // seconds; 0: no lease (SET drops any lease, like Redis)
	nx, xx  bool
	get     bool
	unit    string // "ex", "px", "exat" or "pxat" when a TTL was given
	keepTTL bool   // KEEPTTL: the key keeps its lease
}

// parseSet reads SET's arguments; now is the time EXAT and PXAT count
// from.
func parseSet(args [][]byte, now time.Time) (setArgs, error) {
	var a setArgs
	var err error
	if a.key, err = rosterKey(args[1]); err != nil {
		return a, err
	}
	a.value = args[2]
	// An option may be repeated (the last TTL wins), as Redis allows;
	// only options that exclude each other are a syntax error.
	var ttlArg []byte
	for i := 3; i < len(args); i++ {
		switch opt := strings.ToLower(string(args[i])); opt {
		case "nx", "xx":
			if (opt == "nx" && a.xx) || (opt == "xx" && a.nx) {
				return a, errSyntax
			}
			a.nx, a.xx = opt == "nx", opt == "xx"
		case "get":
			a.get = true
		case "keepttl":
			if a.unit != "" {
				return a, errSyntax
			}
			a.keepTTL = true
		case "ex", "px", "exat", "pxat":
			if (a.unit != "" && a.unit != opt) || a.keepTTL || i+1 >= len(args) {
				return a, errSyntax
			}
			i++
			ttlArg, a.unit = args[i], opt
		default:
			return a, errSyntax
		}
	}
	// The time is read once every option is, as Redis 7 reads it: a
	// syntax error anywhere is the answer, and only the last time given
	// counts.
	if a.unit != "" {
		a.ttl, err = expireArg(a.unit, ttlArg, now)
	}
	return a, err
}

// expireArg is the lease TTL of the time arg given to the option unit
// (EX, PX, EXAT or PXAT).
func expireArg(unit string, arg []byte, now time.Time) (int64, error) {
	n, err := parseInt(arg)
	if err != nil {
		return 0, err
	}
	return setTTL(unit, n, now)
}

// setTTL is the lease TTL of SET's EX, PX, EXAT or PXAT n: an absolute
// time (a Unix time in seconds or milliseconds) counts from now.
func setTTL(unit string, n int64, now time.Time) (int64, error) {
	switch unit {
	case "ex":
		return leaseTTL(n, false)
	case "px":
		return leaseTTL(n, true)
	}
	if n <= 0 || (unit == "exat" && n > math.MaxInt64/1000) {
		return 0, errExpireTime
	}
	if unit == "exat" {
		n *= 1000
	}
	return leaseTTL(n-now.UnixMilli(), true)
}

// leaseTTL turns an expire time into a lease TTL in whole seconds:
// milliseconds round up; below the shortest lease (2 s) or above the
// longest is an invalid expire time.
func leaseTTL(n int64, ms bool) (int64, error) {
	if ms {
		if n > 0 {
			n = (n-1)/1000 + 1
		} else {
			n = 0
		}
	}
	if fsm.ValidateTTL(n) != nil {
		return 0, errExpireTime
	}
	return n, nil
}

// command is the write of a SET: a put (on lease, the key's own with
// KEEPTTL), or with a TTL a Txn granting a lease (named after the key)
// and putting the key on it. casRev applies when hasCAS. The lease the
// key leaves goes when it has no keys left (fsm.Put.DropOldLease), as
// every write of this port asks.
func (a setArgs) command(hasCAS bool, casRev, lease int64) fsm.Command {
	put := fsm.Put{Key: a.key, Value: a.value, Lease: lease, HasCAS: hasCAS, CAS: casRev, DropOldLease: true}
	if a.unit == "" {
		return put
	}
	put.Lease = registry.TxnLease(0)
	return fsm.Txn{Ops: []fsm.Command{fsm.Grant{TTL: a.ttl, Name: a.key}, put}}
}

// prevOf is the key's value before a SET's write.
func prevOf(r fsm.Result) *fsm.KV {
	if len(r.Ops) == 2 {
		return r.Ops[1].Prev
	}
	return r.Prev
}

// setGets: SET … GET answers the old value, a read.
func setGets(args [][]byte) bool {
	a, err := parseSet(args, time.Now())
	return err == nil && a.get
}

// SET key value [EX s|PX ms|EXAT t|PXAT ms-t|KEEPTTL] [NX|XX] [GET]
func writeSet(_ *session, args [][]byte) (writeOp, error) {
	a, err := parseSet(args, time.Now())
	if err != nil {
		return writeOp{}, err
	}
	if a.xx || (a.nx && a.get) || (a.keepTTL && !a.nx) {
		// The condition, or the lease to keep, needs the key's current
		// state: read, then write comparing its mod revision, again if it
		// changed meanwhile.
		return writeOp{decide: a.decide}, nil
	}
	return writeOp{cmd: a.command(a.nx, 0, 0), done: func(r registry.BatchResult) reply {
		switch {
		case a.nx && isCAS(r.Err):
			return nullReply // the key exists: not set
		case r.Err != nil:
			return errReply(r.Err)
		case a.get:
			if prev := prevOf(r.Result); prev != nil {
				return bulk(prev.Value)
			}
			return nullReply
		}
		return okReply
	}}, nil
}

// casAttempts bounds the read-and-compare loops of SET XX, EXPIRE,
// PERSIST and EXEC against keys that keep changing.
const casAttempts = 10

// decide is SET … XX, SET … NX GET and SET … KEEPTTL on the state v.
func (a setArgs) decide(v view) step {
	kv, exists := v.Get(a.key)
	switch {
	case a.xx && !exists:
		return step{now: nullReply}
	case a.nx && exists: // NX GET: not set; the old value
		return step{now: bulk(kv.Value)}
	}
	var rev, lease int64
	if exists {
		rev = kv.ModRevision
		if a.keepTTL {
			lease = kv.Lease
		}
	}
	return step{cmd: a.command(true, rev, lease), leaseMayGo: lease != 0, done: func(fsm.Result) reply {
		switch {
		case a.get && exists:
			return bulk(kv.Value)
		case a.get:
			return nullReply
		}
		return okReply
	}}
}

// SETNX key value: 1 when set, 0 when the key existed.
func writeSetNX(_ *session, args [][]byte) (writeOp, error) {
	key, err := rosterKey(args[1])
	if err != nil {
		return writeOp{}, err
	}
	return writeOp{cmd: fsm.Put{Key: key, Value: args[2], HasCAS: true}, done: func(r registry.BatchResult) reply {
		switch {
		case isCAS(r.Err):
			return integer(0)
		case r.Err != nil:
			return errReply(r.Err)
		}
		return integer(1)
	}}, nil
}

// MSET key value [key value…]: one Txn, all or nothing. A key given twice
// takes its last value.
func writeMSet(_ *session, args [][]byte) (writeOp, error) {
	if len(args)%2 != 1 {
		return writeOp{}, wrongArity{"mset"}
	}
	at := make(map[string]int, len(args)/2)
	var ops []fsm.Command
	for i := 1; i < len(args); i += 2 {
		key, err := rosterKey(args[i])
		if err != nil {
			return writeOp{}, err
		}
		put := fsm.Put{Key: key, Value: args[i+1], DropOldLease: true}
		if j, dup := at[key]; dup {
			ops[j] = put
			continue
		}
		at[key] = len(ops)
		ops = append(ops, put)
	}
	return writeOp{cmd: fsm.Txn{Ops: ops}, done: func(r registry.BatchResult) reply {
		if r.Err != nil {
			return errReply(r.Err)
		}
		return okReply
	}}, nil
}

// DEL key… and UNLINK key…: how many existed (one Txn).
func writeDel(_ *session, args [][]byte) (writeOp, error) {
	keys, err := rosterKeys(args[1:])
	if err != nil {
		return writeOp{}, err
	}
	ops := make([]fsm.Command, len(keys))
	for i, k := range keys {
		ops[i] = fsm.Delete{Key: k, DropOldLease: true}
	}
	return writeOp{cmd: fsm.Txn{Ops: ops}, done: func(r registry.BatchResult) reply {
		if r.Err != nil {
			return errReply(r.Err)
		}
		var n int64
		for _, op := range r.Result.Ops {
			n += op.Deleted
		}
		return integer(n)
	}}, nil
}

// INCR, DECR, INCRBY, DECRBY: the new value; a key that holds anything but
// an integer as Redis spells one (fsm.Incr.Canonical) is an error, and so
// is a result out of int64's range (fsm.ErrOverflow, Redis 7's own text). A key's lease is kept, as Redis keeps a key's TTL.
func writeIncr(_ *session, args [][]byte) (writeOp, error) {
	key, err := rosterKey(args[1])
	if err != nil {
		return writeOp{}, err
	}
	by := int64(1)
	if len(args) == 3 {
		if by, err = parseInt(args[2]); err != nil {
			return writeOp{}, err
		}
	}
	if name := strings.ToLower(string(args[0])); strings.HasPrefix(name, "decr") {
		if by == -by && by != 0 { // MinInt64 has no negation
			return writeOp{}, errDecrOverflow
		}
		by = -by
	}
	return writeOp{cmd: fsm.Incr{Key: key, By: by, Canonical: true}, done: func(r registry.BatchResult) reply {
		switch {
		case errors.Is(r.Err, fsm.ErrInvalidArgument) && !errors.Is(r.Err, fsm.ErrOverflow):
			return errReply(errNotInteger)
		case r.Err != nil:
			return errReply(r.Err)
		}
		return integer(r.Result.Value)
	}}, nil
}

// SETEX key seconds value, PSETEX key ms value: SET key value EX|PX n.
func writeSetEx(s *session, args [][]byte) (writeOp, error) {
	unit := "ex"
	if strings.EqualFold(string(args[0]), "psetex") {
		unit = "px"
	}
	return writeSet(s, [][]byte{[]byte("set"), args[1], args[3], []byte(unit), args[2]})
}

// GETSET key value: SET key value GET.
func writeGetSet(s *session, args [][]byte) (writeOp, error) {
	return writeSet(s, [][]byte{[]byte("set"), args[1], args[2], []byte("get")})
}

// GETDEL key: the value, or null, and the key is gone.
func writeGetDel(_ *session, args [][]byte) (writeOp, error) {
	key, err := rosterKey(args[1])
	if err != nil {
		return writeOp{}, err
	}
	return writeOp{cmd: fsm.Delete{Key: key, DropOldLease: true}, done: func(r registry.BatchResult) reply {
		switch {
		case r.Err != nil:
			return errReply(r.Err)
		case r.Result.Prev == nil:
			return nullReply
		}
		return bulk(r.Result.Prev.Value)
	}}, nil
}

// TYPE key: string, or none when absent (every value is a string).
func readType(_ *session, args [][]byte) (func(view) reply, error) {
	key, err := rosterKey(args[1])
	if err != nil {
		return nil, err
	}
	return func(st view) reply {
		if _, ok := st.Get(key); ok {
			return simple("string")
		}
		return simple("none")
	}, nil
}

// STRLEN key: the value's length in bytes, 0 when absent.
func readStrlen(_ *session, args [][]byte) (func(view) reply, error) {
	key, err := rosterKey(args[1])
	if err != nil {
		return nil, err
	}
	return func(st view) reply {
		if kv, ok := st.Get(key); ok {
			return integer(int64(len(kv.Value)))
		}
		return integer(0)
	}, nil
}
