package resp

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/rosterhq/roster/fsm"
	"github.com/rosterhq/roster/registry"
	"github.com/tidwall/redcon"
)

// Transactions: MULTI, EXEC, DISCARD, WATCH and UNWATCH, as Redis 7 has
// them. Between MULTI and EXEC a command is checked (known, arity, allowed
// in a transaction, permitted) and queued; one refused makes EXEC answer
// EXECABORT. EXEC plays the queue on the state machine itself, from one
// linearizable state, without proposing (a dry run, dryrun.go), and
// proposes every write as one Txn entry, compared on the mod revision of
// every key the transaction read, watched, or wrote in a way that depends
// on what the key held (not a key it first overwrote blindly, SET k v:
// Redis never fails EXEC for it; nor a key only one INCR, DEL, SET … NX
// and the like wrote, whose operation the state machine evaluates as the
// Txn applies, txnlate.go): all of it applies or none, and every answer
// holds of the state it applied to.

// txn is the transaction MULTI opened on a connection.
type txn struct {
	queued  []queuedCmd
	bytes   int  // of the queued arguments, each with its overhead (queuedBytes)
	aborted bool // a command was refused when queued: EXEC answers EXECABORT
}

// queuedCmd is one command waiting for EXEC.
type queuedCmd struct {
	name string
	sp   *spec
	args [][]byte
}

// txnControl are the commands that run at once inside MULTI instead of
// being queued, as in Redis (QUIT is run's).
var txnControl = map[string]bool{"exec": true, "discard": true, "multi": true, "watch": true}

var (
	errNestedMulti   = errors.New("MULTI calls can not be nested")
	errExecNoMulti   = errors.New("EXEC without MULTI")
	errDiscardNoMult = errors.New("DISCARD without MULTI")
	errWatchInMulti  = errors.New("WATCH inside MULTI is not allowed")
	errNotInTxn      = errors.New("Command not allowed inside a transaction")
	errExecAbort     = errors.New("Transaction discarded because of previous errors.")
	errTxnTooBig     = errors.New("transaction too large")
)

var (
	queuedReply reply = simple("QUEUED")
	// nilArray is EXEC's answer when a watched key changed.
	nilArray reply = func(w redcon.Conn) { w.WriteArray(-1) }
)

// queue answers a command sent inside MULTI: QUEUED, or the error that
// refuses it (and dooms the transaction).
func (s *session) queue(name string, args [][]byte) reply {
	t := s.multi
	sp, err := s.queueable(name, args)
	if err != nil {
		t.aborted = true
		return errReply(err)
	}
	// The arguments live in the connection's read buffer: keep a copy.
	cp := make([][]byte, len(args))
	for i, a := range args {
		cp[i] = append([]byte(nil), a...)
	}
	t.bytes += queuedBytes(args)
	t.queued = append(t.queued, queuedCmd{name: name, sp: sp, args: cp})
	return queuedReply
}

// queueable checks a command as Redis does before queueing it, plus the
// bounds of one Txn entry: a transaction can hold at most
// registry.MaxTxnOps commands and as many argument bytes as one Txn
// holds of keys and values.
func (s *session) queueable(name string, args [][]byte) (*spec, error) {
	sp, ok := commands[name]
	switch {
	case !ok:
		return nil, unknownCommand{string(args[0])}
	case (sp.arity > 0 && len(args) != sp.arity) || (sp.arity < 0 && len(args) < -sp.arity):
		return nil, wrongArity{name}
	}
	if err := s.allowed(name, sp, args); err != nil {
		return nil, err
	}
	if sp.read == nil && sp.write == nil && !sp.inTxn {
		return nil, errNotInTxn
	}
	t := s.multi
	if len(t.queued) >= registry.MaxTxnOps {
		return nil, fmt.Errorf("%w: at most %d commands", errTxnTooBig, registry.MaxTxnOps)
	}
	if limit := registry.TxnBytesFactor * s.srv.b.MaxValueBytes(); t.bytes+queuedBytes(args) > limit {
		return nil, fmt.Errorf("%w: over %d bytes of arguments", errTxnTooBig, limit)
	}
	return sp, nil
}

// execAborted is the answer to an EXEC refused as a command (NOAUTH once
// the connection's token went, NOPERM, a wrong number of arguments).
type execAborted struct{ cause error }

func (e execAborted) Error() string { return e.cause.Error() }
func (e execAborted) Unwrap() error { return e.cause }

// refused answers a command refused before it ran, as Redis 7 does
// (rejectCommand): an EXEC refused ends the transaction, if any, and the
// watches (-EXECABORT with the reason, inside MULTI or not; otherwise a
// connection whose token was deleted since MULTI would stay in it for
// good, AUTH being refused inside a transaction and EXEC and DISCARD
// answering NOAUTH); any other command refused inside MULTI (DISCARD,
// MULTI, WATCH: the ones not queued) dooms the transaction.
func (s *session) refused(name string, err error) reply {
	switch {
	case name == "exec":
		s.multi, s.watched = nil, nil
		return errReply(execAborted{err})
	case s.multi != nil:
		s.multi.aborted = true
	}
	return errReply(err)
}

// argOverhead is what queueing an argument costs besides its bytes: its
// slice header and the rounding of its copy. Counting it bounds the
// memory of a queue of many empty or tiny arguments too.
const argOverhead = 32

// queuedBytes is what queueing args counts against the transaction's
// bound.
func queuedBytes(args [][]byte) int {
	n := len(args) * argOverhead
	for _, a := range args {
		n += len(a)
	}
	return n
}

// MULTI
func doMulti(_ context.Context, s *session, _ [][]byte) reply {
	if s.multi != nil {
		return errReply(errNestedMulti)
	}
	s.multi = &txn{}
	return okReply
}

// DISCARD: the queue and the watches go.
func doDiscard(_ context.Context, s *session, _ [][]byte) reply {
	if s.multi == nil {
		return errReply(errDiscardNoMult)
	}
	s.multi, s.watched = nil, nil
	return okReply
}

// WATCH key…: each key's mod revision now (0: absent), from a
// linearizable read; EXEC compares them. A key watched twice keeps its
// first revision, as Redis keeps its first watch.
func doWatch(ctx context.Context, s *session, args [][]byte) reply {
	if s.multi != nil {
		return errReply(errWatchInMulti)
	}
	keys, err := keyArgs(args[1:])
	if err != nil {
		return errReply(err)
	}
	if err := s.mayAddWatches(keys); err != nil {
		return errReply(err)
	}
	st, err := s.srv.b.Read(ctx, false)
	if err != nil {
		return errReply(err)
	}
	if s.watched == nil {
		s.watched = make(map[string]int64, len(keys))
	}
	for _, k := range keys {
		if _, ok := s.watched[k]; !ok {
			s.watched[k] = modRevision(st, k)
		}
	}
	return okReply
}

// mayAddWatches refuses a WATCH that would take the connection over
// registry.MaxTxnOps watched keys: EXEC compares each in its one Txn, so
// more could never commit, and the watches would grow without bound.
func (s *session) mayAddWatches(keys []string) error {
	added := make(map[string]bool)
	for _, k := range keys {
		if _, ok := s.watched[k]; !ok {
			added[k] = true
		}
	}
	if len(s.watched)+len(added) > registry.MaxTxnOps {
		return fmt.Errorf("%w: at most %d keys watched", errTxnTooBig, registry.MaxTxnOps)
	}
	return nil
}

// modRevision is key's mod revision in st, 0 when absent.
func modRevision(st *fsm.State, key string) int64 {
	if kv, ok := st.Get(key); ok {
		return kv.ModRevision
	}
	return 0
}

// UNWATCH
func doUnwatch(_ context.Context, s *session, _ [][]byte) reply {
	s.watched = nil
	return okReply
}

// EXEC: the queued commands' answers, in order; a nil array when a
// watched key changed since WATCH (nothing written). The transaction and
// the watches end either way.
func doExec(ctx context.Context, s *session, _ [][]byte) reply {
	t, watched := s.multi, s.watched
	if t == nil {
		return errReply(errExecNoMulti)
	}
	s.multi, s.watched = nil, nil
	if t.aborted {
		return errReply(errExecAbort)
	}
	if err := s.mayWatch(watched); err != nil {
		return errReply(execAborted{err})
	}
	return s.exec(ctx, t.queued, watched)
}

// mayWatch checks that the connection may still read its watched keys,
// as WATCH checked (its token may have changed since, by AUTH or its
// roles): EXEC's answer tells whether they changed.
func (s *session) mayWatch(watched map[string]int64) error {
	if len(watched) == 0 {
		return nil
	}
	keys := make([]string, 0, len(watched))
	for k := range watched {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	args := make([][]byte, 0, 1+len(keys))
	args = append(args, []byte("watch"))
	for _, k := range keys {
		args = append(args, []byte(redisKey(k)))
	}
	return s.allowed("watch", commands["watch"], args)
}

// execAttempts bounds EXEC's reads and proposals while other writers
// keep changing the keys it read (then errContended). Each failed attempt
// means another write committed, so the cluster progresses; the bound is
// higher than casAttempts as a transaction's keys are more, and more
// contended (counters), than one key's.
const execAttempts = 100

// exec plays cmds on a dry run of a linearizable state (dryRun) and
// proposes their writes as one Txn compared on every key they read,
// every watched key and every key they wrote in a way that depends on
// what it held (dryRun.txn; casLoop), having previewed that Txn on
// the state read. When the Txn finds a key changed since the read, or a
// lease kept gone, the state is read again: a watched key changed answers
// the nil array, anything else plays the commands again (bounded:
// execAttempts, then errContended).
//
// A write whose answer depends on its key and that has an apply-time form
// (txnlate.go) is carried into the Txn as operations evaluated when it
// applies, and answered from their results, when no other command touches
// its key: that key is not compared, so other writers of it never make
// EXEC play again. A leader too old to decode those operations wrote
// nothing (registry.ErrLeaderTooOld): EXEC plays again with every key
// compared, as before them.
func (s *session) exec(ctx context.Context, cmds []queuedCmd, watched map[string]int64) reply {
	applyTime := true
	return s.casLoop(ctx, execAttempts, func(st *fsm.State) step {
		s.wrote = false
		s.reauthenticate(ctx) // as flushReads: the state may hold access changes
		d := newDryRun(st, s.srv.b.MaxValueBytes(), applyTime)
		for k, rev := range watched {
			if modRevision(st, k) != rev {
				return step{now: nilArray}
			}
			d.watch(k)
		}
		replies := make([]reply, len(cmds))
		for i, c := range cmds {
			d.at = i
			r, again := s.play(ctx, d, c)
			if again {
				return step{again: true}
			}
			replies[i] = r
		}
		propose, preview, wrote := d.txn()
		if !wrote {
			// Every answer came from one linearizable state: nothing to
			// propose.
			return step{now: array(replies)}
		}
		// The Txn applies on the state read as the queue played on it,
		// unless a lease a key keeps is past its deadline (an INCR keeps
		// the key's lease, which the put proposed names): then read again,
		// as when the leader refuses it so.
		if r, _ := st.Preview(fsm.StrictDeadlines(preview)); r.Err != nil {
			if errors.Is(r.Err, fsm.ErrLeaseNotFound) {
				return step{again: true}
			}
			return step{now: errReply(r.Err)}
		}
		return step{
			cmd: propose,
			done: func(res fsm.Result) reply {
				d.answerLate(res, replies)
				return array(replies)
			},
			leaseMayGo: true,
			retry: func(err error) bool {
				if applyTime && len(d.proposedAt) > 0 && errors.Is(err, registry.ErrLeaderTooOld) {
					applyTime = false
					return true
				}
				return false
			},
		}
	})
}

// play runs one queued command on the dry run and answers it; again
// reports that a lease the command keeps is past its deadline (the key
// is expiring): the state is to be read again. Permission is checked
// again, as a pipeline's reads are after their read index: a command no
// longer permitted answers NOPERM and does nothing, the others still run
// (as Redis checks ACLs again at EXEC).
func (s *session) play(ctx context.Context, d *dryRun, c queuedCmd) (r reply, again bool) {
	if err := s.allowed(c.name, c.sp, c.args); err != nil {
		return errReply(err), false
	}
	if d.applyTime {
		if l := s.lateOf(c); l != nil {
			return s.playLate(d, l), false
		}
	}
	switch {
	case c.sp.read != nil:
		fn, err := c.sp.read(s, c.args)
		if err != nil {
			return errReply(err), false
		}
		return fn(d), false
	case c.sp.write != nil:
		op, err := c.sp.write(s, c.args)
		if err != nil {
			return errReply(err), false
		}
		if op.decide == nil {
			// Its answer shows nothing of its keys unless it answers their
			// values (alsoReads) or its command compares them.
			blind := c.sp.alsoReads == nil || !c.sp.alsoReads(c.args)
			before := d.cur
			res, err := d.apply(op.cmd, blind)
			if err == nil {
				if perr := s.mayPlay(d, before, op.cmd); perr != nil {
					return errReply(perr), false
				}
			}
			return op.done(registry.BatchResult{Result: res, Err: err}), false
		}
		st := op.decide(d)
		if st.cmd == nil {
			return st.now, false
		}
		before := d.cur
		res, err := d.apply(st.cmd, false)
		switch {
		case st.leaseMayGo && errors.Is(err, fsm.ErrLeaseNotFound):
			return nil, true
		case err != nil:
			return errReply(err), false
		}
		if perr := s.mayPlay(d, before, st.cmd); perr != nil {
			return errReply(perr), false
		}
		return st.done(res), false
	}
	return c.sp.do(ctx, s, c.args), false // PING, ECHO, UNWATCH
}
