package resp

import (
	"time"

	"github.com/rosterhq/roster/fsm"
	"github.com/rosterhq/roster/registry"
)

// Apply-time operations. A queued write whose answer or effect depends
// on what its key holds (INCR and kin, DEL's count, SET … NX|XX|GET,
// SETNX, GETSET, GETDEL) would make EXEC compare the key, so that a
// writer of a hot key made EXEC play again, and give up after
// execAttempts, where Redis's EXEC never fails. Instead EXEC carries such
// a command into its Txn as operations the state machine evaluates when
// the entry applies (an fsm.Incr; a put without a compare, its NX or XX
// as fsm.Put.Only; a delete without a compare), and answers it from
// their results, not from the dry run: the key is not compared.
//
// Only a key no other command of the transaction touches (read, written
// or watched) is carried so (dryRun.txn): an answer that depends on
// another command's effect on the key, or one a later command's answer
// depends on, comes from the dry run, compared as before. A command
// keeping a lease the key had (SET … KEEPTTL) is compared too, as
// EXPIRE, PERSIST and GETEX are.

// lateCmd is a queued write carried into the Txn: its operations (one
// per key, in the command's key order; for SET … EX first the grant of
// the key's lease, which dryRun.txn adds as it adds every grant) and its
// answer from one result per operation.
type lateCmd struct {
	ops    []fsm.Command
	answer func(rs []fsm.Result) reply
}

// lateOf is the apply-time form of a queued write, or nil when it has
// none (or its arguments are bad: it plays as before and answers that).
func (s *session) lateOf(c queuedCmd) *lateCmd {
	if c.sp.write == nil {
		return nil
	}
	switch c.name {
	case "incr", "decr", "incrby", "decrby", "getdel":
		op, err := c.sp.write(s, c.args)
		if err != nil {
			return nil
		}
		return &lateCmd{ops: []fsm.Command{op.cmd}, answer: func(rs []fsm.Result) reply {
			return op.done(registry.BatchResult{Result: rs[0], Err: rs[0].Err})
		}}
	case "del", "unlink":
		op, err := c.sp.write(s, c.args)
		if err != nil {
			return nil
		}
		return &lateCmd{ops: op.cmd.(fsm.Txn).Ops, answer: func(rs []fsm.Result) reply {
			return op.done(registry.BatchResult{Result: fsm.Result{Ops: rs}})
		}}
	case "set", "getset", "setnx":
		return lateSet(c.name, c.args)
	}
	return nil
}

// lateSet is SET, GETSET and SETNX at apply time, but for a SET that
// keeps the key's lease (KEEPTTL). With a TTL and NX or XX, the lease
// granted for a put not made goes in the same entry (fsm.Put.Only).
func lateSet(name string, args [][]byte) *lateCmd {
	var a setArgs
	switch name {
	case "set":
		var err error
		if a, err = parseSet(args, time.Now()); err != nil {
			return nil
		}
	case "getset", "setnx":
		key, err := rosterKey(args[1])
		if err != nil {
			return nil
		}
		a = setArgs{key: key, value: args[2], get: name == "getset", nx: name == "setnx"}
	}
	if !a.nx && !a.xx && !a.get {
		return nil // blind: dryRun overwrites it without a compare already
	}
	if a.keepTTL {
		return nil // it keeps the lease the key has: compared
	}
	only := fsm.PutAlways
	switch {
	case a.nx:
		only = fsm.PutIfAbsent
	case a.xx:
		only = fsm.PutIfPresent
	}
	var ops []fsm.Command
	switch c := a.command(false, 0, 0).(type) {
	case fsm.Put:
		c.Only = only
		ops = []fsm.Command{c}
	case fsm.Txn: // with a TTL: the grant, then the put on it
		put := c.Ops[1].(fsm.Put)
		put.Only = only
		ops = []fsm.Command{c.Ops[0], put}
	}
	return &lateCmd{ops: ops, answer: func(rs []fsm.Result) reply {
		r := rs[len(rs)-1] // the put's
		if r.Err != nil {
			return errReply(r.Err)
		}
		set := only.Holds(r.Prev)
		switch {
		case name == "setnx" && set:
			return integer(1)
		case name == "setnx":
			return integer(0)
		case a.get && r.Prev != nil:
			return bulk(r.Prev.Value)
		case a.get, !set:
			return nullReply
		}
		return okReply
	}}
}

// playLate plays a command carried into the Txn on the dry run (as one
// Txn of its operations, whose failures are each its own as when the
// entry applies) and answers from the dry run's results; exec answers
// again from the applied ones when the command's keys stay apply-time.
func (s *session) playLate(d *dryRun, l *lateCmd) reply {
	before := d.cur
	cmd := fsm.Txn{Ops: l.ops}
	res, err := d.apply(cmd, false)
	if err != nil {
		return errReply(err)
	}
	if perr := s.mayPlay(d, before, cmd); perr != nil {
		return errReply(perr)
	}
	d.carry(l, res.Ops)
	return l.answer(res.Ops)
}

// lateKey is the key of an operation of a carried command, unless it is
// a grant.
func lateKey(op fsm.Command) (string, bool) {
	switch op := op.(type) {
	case fsm.Put:
		return op.Key, true
	case fsm.Delete:
		return op.Key, true
	case fsm.Incr:
		return op.Key, true
	}
	return "", false
}
