package resp

import (
	"context"
	"errors"
	"strings"

	"github.com/rosterhq/roster/fsm"
	"github.com/rosterhq/roster/registry"
	"github.com/tidwall/redcon"
)

// session is the state of one connection.
type session struct {
	srv      *Server
	id       int64
	name     string
	readonly bool       // READONLY: reads come from the local replica
	token    string     // the token of the last good AUTH
	ident    Identity   // what the token may do; nil until AUTH
	detached bool       // handed over to pub/sub (pubsub.go)
	guard    *guardConn // the connection's framing guard (nil in some tests)
	// wrote: a write reached the leader since the last linearizable read.
	// A READONLY read then reads linearizably once, since this member may
	// not have applied yet what the leader already answered (a read sees
	// every write of its connection before it).
	wrote bool
	// multi: the transaction MULTI opened (nil outside one); watched: the
	// keys of WATCH with the mod revision each had then (txn.go).
	multi   *txn
	watched map[string]int64
}

// writeOp is a write that can join a Batch: the command to propose and how
// to answer its result. A write that must read first (SET … XX, EXPIRE)
// sets decide instead: it runs by itself, after the commands before it
// (checkedWrite), or inside EXEC on the transaction's dry run.
type writeOp struct {
	cmd    fsm.Command
	done   func(registry.BatchResult) reply
	decide func(view) step
}

// step is what a checked write makes of the state it read: a command to
// write, compared on the mod revision of what it read, and how to answer
// once it applied; or, when cmd is nil, the answer now.
type step struct {
	cmd  fsm.Command
	done func(fsm.Result) reply
	now  reply
	// leaseMayGo: the command keeps a lease the key had, so lease not
	// found means the key is expiring: read again.
	leaseMayGo bool
	// again: read again at once, proposing nothing (EXEC's dry run found
	// a lease a key keeps past its deadline).
	again bool
	// retry: an error of the write (which wrote nothing) on which to read
	// and decide again (EXEC: a leader too old for its apply-time
	// operations).
	retry func(error) bool
}

// checkedWrite runs a write that decides from the state: read, decide,
// write compared on what was read, again while other writes get in
// between (bounded: then errContended).
func (s *session) checkedWrite(ctx context.Context, decide func(view) step) reply {
	return s.casLoop(ctx, casAttempts, func(st *fsm.State) step { return decide(st) })
}

// casLoop is the loop of every write that decides from what it read (a
// checked write, EXEC): read a linearizable state, let decide make a step
// of it, write the step's command, compared on what was read; while other
// writes get in between (a failed compare, or a lease the step keeps gone)
// read again, at most attempts times, then errContended.
func (s *session) casLoop(ctx context.Context, attempts int, decide func(*fsm.State) step) reply {
	for range attempts {
		st, err := s.srv.b.Read(ctx, false)
		if err != nil {
			return errReply(err)
		}
		d := decide(st)
		if d.again {
			continue
		}
		if d.cmd == nil {
			return d.now
		}
		if err := s.mayPropose(st, d.cmd); err != nil {
			return errReply(err)
		}
		res, err := s.writeOne(ctx, d.cmd)
		switch {
		case isCAS(err), d.leaseMayGo && errors.Is(err, fsm.ErrLeaseNotFound):
			continue
		case err != nil && d.retry != nil && d.retry(err):
			continue
		case err != nil:
			return errReply(err)
		}
		return d.done(res)
	}
	return errReply(errContended)
}

// pipeline collects a run of commands of one kind so that they execute
// together: writes as one Batch, reads on one state.
type pipeline struct {
	s       *session
	ctx     context.Context
	replies []reply
	writes  []int // positions of pending writes
	ops     []writeOp
	reads   []int // positions of pending reads
	readFns []func(*fsm.State) reply
	readCmd []pendingRead // what each pending read is, to check it again
}

// pendingRead is a read command waiting for its pipeline's state.
type pendingRead struct {
	name string
	sp   *spec
	args [][]byte
}

// run executes cmds in order and writes their replies in order. It stops
// early when a command hands the connection over to pub/sub (rest holds
// that command and the ones after it) or asks to quit.
func (s *session) run(ctx context.Context, w redcon.Conn, cmds []redcon.Command) (rest []redcon.Command, quit bool) {
	p := &pipeline{s: s, ctx: ctx, replies: make([]reply, 0, len(cmds))}
	s.reauthenticate(ctx)
	p.ctx = s.callerCtx(ctx)
	for i, cmd := range cmds {
		name := strings.ToLower(string(cmd.Args[0]))
		if (name == "subscribe" || name == "psubscribe") && s.multi == nil {
			if len(cmd.Args) < 2 { // refused: the connection stays as it is
				p.answer(errReply(wrongArity{name}))
				continue
			}
			rest = cmds[i:]
			break
		}
		if name == "quit" {
			p.answer(okReply)
			quit = true
			break
		}
		p.add(name, cmd.Args)
		if name == "auth" {
			p.ctx = s.callerCtx(ctx) // AUTH ran alone: nothing is pending
		}
	}
	p.flush()
	for _, r := range p.replies {
		r(w)
	}
	return rest, quit
}

// answer records the reply of the next command right away.
func (p *pipeline) answer(r reply) { p.replies = append(p.replies, r) }

// add classifies one command and either answers it at once, queues it
// with the writes or reads before it, or runs it alone after them.
func (p *pipeline) add(name string, args [][]byte) {
	if p.s.multi != nil && !txnControl[name] {
		p.answer(p.s.queue(name, args))
		return
	}
	sp, ok := commands[name]
	if !ok {
		p.answer(errReply(unknownCommand{string(args[0])}))
		return
	}
	if (sp.arity > 0 && len(args) != sp.arity) || (sp.arity < 0 && len(args) < -sp.arity) {
		p.answer(p.s.refused(name, wrongArity{name}))
		return
	}
	if err := p.s.allowed(name, sp, args); err != nil {
		p.answer(p.s.refused(name, err))
		return
	}
	switch {
	case sp.write != nil:
		op, err := sp.write(p.s, args)
		if err != nil {
			p.answer(errReply(err))
			return
		}
		if op.decide != nil {
			p.flush()
			p.answer(p.s.checkedWrite(p.ctx, op.decide))
			return
		}
		p.flushReads()
		p.writes = append(p.writes, len(p.replies))
		p.ops = append(p.ops, op)
		p.answer(nil)
	case sp.read != nil:
		fn, err := sp.read(p.s, args)
		if err != nil {
			p.answer(errReply(err))
			return
		}
		p.addRead(name, sp, args, func(st *fsm.State) reply { return fn(st) })
	case sp.scan != nil:
		fn, err := sp.scan(p.s, args)
		if err != nil {
			p.answer(errReply(err))
			return
		}
		p.addRead(name, sp, args, fn)
	default:
		p.flush()
		p.answer(sp.do(p.ctx, p.s, args))
	}
}

// addRead queues a read for the pipeline's next state.
func (p *pipeline) addRead(name string, sp *spec, args [][]byte, fn func(*fsm.State) reply) {
	p.flushWrites()
	p.reads = append(p.reads, len(p.replies))
	p.readFns = append(p.readFns, fn)
	p.readCmd = append(p.readCmd, pendingRead{name, sp, args})
	p.answer(nil)
}

func (p *pipeline) flush() {
	p.flushWrites()
	p.flushReads()
}

// flushWrites proposes the pending writes as one Batch: one group commit,
// in order, on the leader or (forwarded as one request) from a follower.
func (p *pipeline) flushWrites() {
	if len(p.ops) == 0 {
		return
	}
	var st *fsm.State // this member's replica: the leases' keys as applied here
	if p.s.ident != nil && !p.s.ident.Admin() && p.s.srv.enforced() {
		var err error
		if st, err = p.s.srv.b.Read(p.ctx, true); err != nil {
			for i := range p.ops {
				p.replies[p.writes[i]] = errReply(err)
			}
			p.writes, p.ops = p.writes[:0], p.ops[:0]
			return
		}
	}
	cmds := make([]fsm.Command, 0, len(p.ops))
	idx := make([]int, 0, len(p.ops)) // the ops proposed
	for i, op := range p.ops {
		if err := p.s.mayPropose(st, op.cmd); err != nil {
			p.replies[p.writes[i]] = errReply(err)
			continue
		}
		cmds, idx = append(cmds, op.cmd), append(idx, i)
	}
	if len(cmds) > 0 {
		res := p.s.srv.b.Batch(p.ctx, cmds)
		for j, i := range idx {
			p.s.sent(res[j].Err)
			p.replies[p.writes[i]] = p.ops[i].done(res[j])
		}
	}
	p.writes, p.ops = p.writes[:0], p.ops[:0]
}

// writeOne sends one write through the single methods of the backend.
func (s *session) writeOne(ctx context.Context, c fsm.Command) (res fsm.Result, err error) {
	defer func() { s.sent(err) }()
	b := s.srv.b
	switch c := c.(type) {
	case fsm.Put:
		return b.Put(ctx, c)
	case fsm.Delete:
		return b.Delete(ctx, c)
	case fsm.Incr: // through Batch, which carries the whole command (Canonical too)
		r := b.Batch(ctx, []fsm.Command{c})[0]
		return r.Result, r.Err
	case fsm.Txn:
		return b.Txn(ctx, c.Ops)
	}
	return fsm.Result{}, errSyntax // unreachable: commands build only these
}

// sent notes a write's outcome: unless it never reached a leader (no
// leader: nothing was proposed, and the answer said nothing of the
// leader's state), the next READONLY read must see it (session.wrote).
func (s *session) sent(err error) {
	if !errors.Is(err, registry.ErrNoLeader) && !errors.Is(err, registry.ErrClosed) {
		s.wrote = true
	}
}

// flushReads serves the pending reads from one state: this member's
// replica after READONLY, unless the connection wrote since its last
// linearizable read (see session.wrote). A linearizable read answers from
// a state that may hold access control changes this member had not
// applied when the commands were checked (it waited for a read index):
// the token is resolved again, now that the replica holds them, and each
// read checked again.
func (p *pipeline) flushReads() {
	if len(p.readFns) == 0 {
		return
	}
	stale := p.s.readonly && !p.s.wrote
	st, err := p.s.srv.b.Read(p.ctx, stale)
	if err == nil && !stale {
		p.s.wrote = false
		p.s.reauthenticate(p.ctx)
	}
	for i, fn := range p.readFns {
		ferr := err
		if ferr == nil && !stale {
			rc := p.readCmd[i]
			ferr = p.s.allowed(rc.name, rc.sp, rc.args)
		}
		if ferr != nil {
			p.replies[p.reads[i]] = errReply(ferr)
			continue
		}
		p.replies[p.reads[i]] = fn(st)
	}
	p.reads, p.readFns, p.readCmd = p.reads[:0], p.readFns[:0], p.readCmd[:0]
}

// allowed checks authentication and permissions when access control is on.
func (s *session) allowed(name string, sp *spec, args [][]byte) error {
	if sp.access == accessOpen || !s.srv.enforced() {
		return nil
	}
	if s.ident == nil {
		return errNoAuth
	}
	switch sp.access {
	case accessAdmin:
		if !s.ident.Admin() {
			return noPerm{"run '" + name + "' (admin only)"}
		}
	case accessRead:
		for _, k := range sp.keysOf(args) {
			if !s.ident.CanRead(k) {
				return noPerm{"read " + k}
			}
		}
	case accessWrite:
		// Before the arguments are parsed, as Redis checks ACLs before a
		// command's syntax: what the rules of writes ask of any write of
		// each key it names (a put of the key alone), and read where the
		// answer shows the keys' values. The command itself is checked
		// whole before it is proposed (mayPropose).
		a := registry.AnswerOutcome
		if sp.alsoReads != nil && sp.alsoReads(args) {
			a = registry.AnswerPrev
		}
		for _, k := range sp.keysOf(args) {
			if err := s.srv.b.MayApply(s.ident, nil, fsm.Put{Key: k}, a); err != nil {
				return err
			}
		}
	}
	return nil
}

// mayPropose checks the write c, about to be proposed, with the rules of
// writes (registry.MayApply), judged against st: the same check the
// leader makes again of a write this member forwards, and what allowed
// could not check before the command was built (the lease a put keeps a
// key on needs what renewing it needs). Nothing to check when access
// control is off; with it on, a connection without an identity is one
// whose token went since allowed let the command in (a pipeline's read
// resolved it again after its read index): refused as allowed would now.
func (s *session) mayPropose(st *fsm.State, c fsm.Command) error {
	if !s.srv.enforced() {
		return nil
	}
	if s.ident == nil {
		return errNoAuth
	}
	return s.srv.b.MayApply(s.ident, st, c, registry.AnswerOutcome)
}

// callerCtx marks ctx with the connection's token, so that a follower's
// leader refuses the writes of a token it no longer has
// (registry.WithCaller).
func (s *session) callerCtx(ctx context.Context) context.Context {
	if p, ok := s.ident.(*registry.Principal); ok {
		return registry.WithCaller(ctx, p)
	}
	return ctx
}

// reauthenticate resolves the connection's token again, so that a token or
// role changed since AUTH is in force from the next pipeline on (a deleted
// token makes the connection unauthenticated, held to the limits before
// AUTH again from its next command on).
func (s *session) reauthenticate(ctx context.Context) {
	if s.srv.cfg.Auth == nil || s.token == "" {
		return
	}
	id, err := s.srv.cfg.Auth.Authenticate(ctx, s.token)
	if err != nil || id == nil {
		id = nil
		if s.guard != nil {
			s.guard.Unauthenticated()
		}
	}
	s.ident = id
}
