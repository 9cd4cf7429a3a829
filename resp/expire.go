package resp

import (
	"fmt"
	"strings"
	"time"

	"github.com/rosterhq/roster/fsm"
	"github.com/rosterhq/roster/registry"
)

// EXPIRE key seconds [NX|XX|GT|LT], PEXPIRE key ms […]: 1 when the key now
// has a lease of that TTL, 0 when the key does not exist or the option
// did not hold (NX: the key has no TTL; XX: it has one; GT, LT: the new
// TTL is longer, shorter than the one left, no TTL counting as infinite). A Txn grants the new lease and
// puts the key again, attached to it, compared on the key's mod revision
// (so a write in between is never undone; the read is repeated instead).
// The key's old lease, if any, keeps its other keys; left without keys, a
// lease named after the key (one this port granted) goes in the same entry.
func writeExpire(_ *session, args [][]byte) (writeOp, error) {
	key, err := rosterKey(args[1])
	if err != nil {
		return writeOp{}, err
	}
	opt, err := parseExpireOptions(args[3:])
	if err != nil {
		return writeOp{}, err
	}
	n, err := parseInt(args[2])
	if err != nil {
		return writeOp{}, err
	}
	ttl, err := leaseTTL(n, strings.EqualFold(string(args[0]), "pexpire"))
	if err != nil {
		return writeOp{}, err
	}
	return rewrite(key, func(v view, kv *fsm.KV) (fsm.Command, bool) {
		if !opt.holds(v, kv, ttl*1000) {
			return nil, false
		}
		return leasedPut(key, kv, ttl), true
	}), nil
}

// leasedPut puts kv again on a new lease of ttl seconds, compared on its
// mod revision (one Txn).
func leasedPut(key string, kv *fsm.KV, ttl int64) fsm.Command {
	return fsm.Txn{Ops: []fsm.Command{
		fsm.Grant{TTL: ttl, Name: key},
		fsm.Put{Key: key, Value: kv.Value, Lease: registry.TxnLease(0), HasCAS: true, CAS: kv.ModRevision, DropOldLease: true},
	}}
}

// expireOptions are EXPIRE's NX, XX, GT and LT.
type expireOptions struct{ nx, xx, gt, lt bool }

// parseExpireOptions reads them as Redis 7 does, with its error texts.
func parseExpireOptions(args [][]byte) (expireOptions, error) {
	var o expireOptions
	for _, a := range args {
		switch strings.ToLower(string(a)) {
		case "nx":
			o.nx = true
		case "xx":
			o.xx = true
		case "gt":
			o.gt = true
		case "lt":
			o.lt = true
		default:
			return o, fmt.Errorf("%w %s", errExpireOption, oneLine(string(a)))
		}
	}
	switch {
	case o.nx && (o.xx || o.gt || o.lt):
		return o, fmt.Errorf("NX and XX, GT or LT %w", errExpireCombo)
	case o.gt && o.lt:
		return o, fmt.Errorf("GT and LT %w", errExpireCombo)
	}
	return o, nil
}

// holds says whether a key may take a TTL of ms milliseconds: a key
// without a lease has an infinite TTL.
func (o expireOptions) holds(st view, kv *fsm.KV, ms int64) bool {
	left, has := int64(0), false
	if kv.Lease != 0 {
		left, has = st.LeaseRemainingMs(kv.Lease)
	}
	switch {
	case o.nx && has, o.xx && !has:
		return false
	case o.gt && (!has || ms <= left), o.lt && has && ms >= left:
		return false
	}
	return true
}

// PERSIST key: 1 when the key had a lease and no longer has, else 0.
func writePersist(_ *session, args [][]byte) (writeOp, error) {
	key, err := rosterKey(args[1])
	if err != nil {
		return writeOp{}, err
	}
	return rewrite(key, func(_ view, kv *fsm.KV) (fsm.Command, bool) {
		if kv.Lease == 0 {
			return nil, false
		}
		return unleasedPut(key, kv), true
	}), nil
}

// unleasedPut puts kv again without a lease, compared on its mod revision.
func unleasedPut(key string, kv *fsm.KV) fsm.Command {
	return fsm.Put{Key: key, Value: kv.Value, HasCAS: true, CAS: kv.ModRevision, DropOldLease: true}
}

// rewrite is a checked write of key: what change makes of it, compared on
// its mod revision; 1 when written, 0 when the key is absent or change
// declines.
func rewrite(key string, change func(view, *fsm.KV) (fsm.Command, bool)) writeOp {
	return writeOp{decide: func(v view) step {
		kv, ok := v.Get(key)
		if !ok {
			return step{now: integer(0)}
		}
		cmd, ok := change(v, kv)
		if !ok {
			return step{now: integer(0)}
		}
		return step{cmd: cmd, done: func(fsm.Result) reply { return integer(1) }}
	}}
}

// TTL key, PTTL key: the time left on the key's lease, in seconds (rounded
// up) or milliseconds; -1 when the key has no lease, -2 when it does not
// exist. A key put on a lease over HTTP shows that lease's time too.
func readTTL(_ *session, args [][]byte) (func(view) reply, error) {
	key, err := rosterKey(args[1])
	if err != nil {
		return nil, err
	}
	ms := strings.EqualFold(string(args[0]), "pttl")
	return func(st view) reply {
		kv, ok := st.Get(key)
		switch {
		case !ok:
			return integer(-2)
		case kv.Lease == 0:
			return integer(-1)
		}
		if ms {
			left, ok := st.LeaseRemainingMs(kv.Lease)
			if !ok {
				return integer(-1)
			}
			return integer(left)
		}
		l, ok := st.Lease(kv.Lease)
		if !ok {
			return integer(-1)
		}
		return integer(l.Remaining)
	}, nil
}

// GETEX key [EX s|PX ms|EXAT t|PXAT t|PERSIST]: the key's value (null
// when absent), and with an option its new TTL, written as EXPIRE and
// PERSIST write theirs (compared on the key's mod revision).
func writeGetEx(_ *session, args [][]byte) (writeOp, error) {
	key, err := rosterKey(args[1])
	if err != nil {
		return writeOp{}, err
	}
	var ttlArg []byte
	unit := "" // "persist", or the TTL's
	for i := 2; i < len(args); i++ {
		switch opt := strings.ToLower(string(args[i])); opt {
		case "persist":
			if unit != "" && unit != opt {
				return writeOp{}, errSyntax
			}
			unit = opt
		case "ex", "px", "exat", "pxat":
			if (unit != "" && unit != opt) || i+1 >= len(args) {
				return writeOp{}, errSyntax
			}
			i++
			ttlArg, unit = args[i], opt
		default:
			return writeOp{}, errSyntax
		}
	}
	// As Redis 7 does, the time is looked at only once the key was found:
	// GETEX of an absent key is null whatever its time says.
	var ttl int64
	var ttlErr error
	if unit != "" && unit != "persist" {
		ttl, ttlErr = expireArg(unit, ttlArg, time.Now())
	}
	return writeOp{decide: func(v view) step {
		kv, ok := v.Get(key)
		switch {
		case !ok:
			return step{now: nullReply}
		case ttlErr != nil:
			return step{now: errReply(ttlErr)}
		case unit == "" || unit == "persist" && kv.Lease == 0:
			return step{now: bulk(kv.Value)}
		}
		cmd := unleasedPut(key, kv)
		if unit != "persist" {
			cmd = leasedPut(key, kv, ttl)
		}
		return step{cmd: cmd, done: func(fsm.Result) reply { return bulk(kv.Value) }}
	}}, nil
}
