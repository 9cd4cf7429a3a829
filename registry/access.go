package registry

import (
	"strconv"

	"github.com/rosterhq/roster/fsm"
)

// What a write needs (API.md "Security") is stated once, here, as what
// each replicated command needs: MayApply. The HTTP and Redis front ends
// check the command they are about to propose with it, and the leader
// checks a follower's forwarded write with it again against its newer
// state (caller.go, kacaller.go). Two copies of the rules, one per front
// end and one on the leader, had drifted apart (the leader did not check
// a put's lease, the Redis port did not either); one set cannot.

// Grants is what a caller may do, as the rules ask it: *Principal, or a
// front end's own view of a token (the Redis port's Identity). Keys and
// prefixes are Roster keys; a prefix is covered by a rule whose own
// prefix is a prefix of it.
type Grants interface {
	CanRead(keyOrPrefix string) bool
	CanWrite(keyOrPrefix string) bool
	Admin() bool
}

// Answer is what the answer to a write shows besides its outcome. It is
// a property of the request, not of the command (a put answers its
// previous value only with ?prev=true), so the front end that builds the
// answer says it; the leader, which answers only the outcome, passes
// AnswerOutcome.
type Answer uint8

const (
	// AnswerOutcome: the revision, counts, the result of its compares.
	AnswerOutcome Answer = iota
	// AnswerPrev: also the values the command writes over (?prev=true,
	// Redis GETSET, GETDEL, SET … GET, GETEX): read on every key it
	// writes, as reading them would need (etcd's rule for prev_kv).
	AnswerPrev
)

// AccessError is a refusal by the rules. It wraps ErrPermissionDenied;
// its fields let a front end say it in its own words (the Redis port's
// NOPERM).
type AccessError struct {
	Token string // the token's name; "" when the caller is no *Principal
	Op    string // what it may not do: "write", "read", "delete every key under", …
	Key   string // the key or prefix, whole; "" when the refusal names none
	Lease int64  // the lease Key is attached to, when that is why (MayRenew; 0 with no Key)
	Why   string // why the command needs it, when not obvious; "" for none
}

func (e *AccessError) Error() string {
	b := []byte(ErrPermissionDenied.Error() + ": token " + strconv.Quote(e.Token) + " may not " + e.Op)
	if e.Key != "" {
		b = strconv.AppendQuote(append(b, ' '), clipKey(e.Key))
	}
	if e.Lease != 0 {
		b = append(b, ", attached to lease "...)
		b = strconv.AppendInt(b, e.Lease, 10)
	}
	if e.Why != "" {
		b = append(append(append(b, " ("...), e.Why...), ')')
	}
	return string(b)
}

func (e *AccessError) Unwrap() error { return ErrPermissionDenied }

// deny is the refusal of op on key for g.
func deny(g Grants, op, key, why string) *AccessError {
	e := &AccessError{Op: op, Key: key, Why: why}
	if p, ok := g.(*Principal); ok {
		e.Token = p.Name
	}
	return e
}

// MayApply checks that g may make the write c, judged against st: write
// on every key it changes, on the whole prefix for a prefix delete; read
// too for an incr (its answer is the new value, from which the old one
// follows) and, with AnswerPrev, for every key written; what renewing
// needs (MayRenew) for a revoke, a keep-alive and a put that attaches a
// key to a lease (else a token could attach a key to another's lease,
// whose owner could then no longer renew it: etcd's checkLeasePuts);
// read or write on the key of a transaction's compare-only operation
// (fsm.Check);
// admin for access control, membership records and ticks. A grant needs
// a valid token only. The error is an *AccessError.
//
// st is consulted only for the keys of a lease: it may be nil for a
// command that names no lease (a front end's check of a key before it
// parses the rest).
func MayApply(g Grants, st *fsm.State, c fsm.Command, a Answer) error {
	if g.Admin() {
		return nil
	}
	switch c := c.(type) {
	case fsm.Put:
		if !g.CanWrite(c.Key) {
			return deny(g, "write", c.Key, "")
		}
		if c.Lease > 0 { // < 0: a lease the same transaction grants (TxnLease)
			if err := MayRenew(g, st, c.Lease); err != nil {
				return err
			}
		}
		return mayShow(g, c.Key, a)
	case fsm.Delete:
		if c.Prefix {
			if !g.CanWrite(prefixKey(c.Key)) {
				return deny(g, "delete every key under", c.Key, "")
			}
			if a == AnswerPrev && !g.CanRead(prefixKey(c.Key)) {
				return deny(g, "read every key under", c.Key, "the answer shows their previous values")
			}
			return nil
		}
		if !g.CanWrite(c.Key) {
			return deny(g, "write", c.Key, "")
		}
		return mayShow(g, c.Key, a)
	case fsm.Incr:
		if !g.CanWrite(c.Key) {
			return deny(g, "write", c.Key, "")
		}
		if !g.CanRead(c.Key) {
			return deny(g, "read", c.Key, "incr answers its value")
		}
	case fsm.Revoke:
		return MayRenew(g, st, c.ID)
	case fsm.KeepAlive:
		return MayRenew(g, st, c.IDs...)
	case fsm.Grant:
	case fsm.Check:
		// A compare writes nothing: read or write on its key is what it
		// needs. The Redis port's EXEC compares so the keys a transaction
		// read or watched (which needed read), and the keys it wrote
		// without changing them (a DEL of an absent key, a SET … NX of
		// one that exists: write), whose compare tells a token that may
		// only write the key no more than the write itself answers.
		if !g.CanRead(c.Key) && !g.CanWrite(c.Key) {
			return deny(g, "read", c.Key, "")
		}
	case fsm.Txn:
		for _, op := range c.Ops {
			if err := MayApply(g, st, op, a); err != nil {
				return err
			}
		}
	case fsm.SetMember, fsm.DelMember:
		return deny(g, "change the membership", "", "admin only")
	case fsm.PutRole, fsm.DeleteRole, fsm.PutToken, fsm.DeleteToken:
		return deny(g, "change access control", "", "admin only")
	default: // ticks, and whatever command comes next: admin until stated
		return deny(g, "propose "+cmdName(c), "", "admin only")
	}
	return nil
}

// mayShow: an answer that shows the value key had needs read on it.
func mayShow(g Grants, key string, a Answer) error {
	if a == AnswerPrev && !g.CanRead(key) {
		return deny(g, "read", key, "the answer shows its previous value")
	}
	return nil
}

// prefixKey is what a prefix is checked as: every key begins with "/",
// so the empty prefix (every key) is covered only by a rule on "/" or on
// "" (as Principal.CanReadPrefix).
func prefixKey(prefix string) string {
	if prefix == "" {
		return "/"
	}
	return prefix
}

// MayRenew checks that g may keep alive, inspect or revoke the leases
// ids in st: admin, or write on every key attached to each (etcd's rule).
// A lease that does not exist passes (the operation answers not found);
// without a state (nil) nothing but admin passes, as a lease's keys are
// then unknown.
//
// The refusal names the key g may not write only when g may read it: the
// caller named the lease, not the key, and lease IDs are close to
// guessable, so naming any key would list, lease by lease, keys of other
// tokens that g may not list.
func MayRenew(g Grants, st *fsm.State, ids ...int64) error {
	if g.Admin() {
		return nil
	}
	for _, id := range ids {
		if st == nil {
			return deny(g, "renew lease "+strconv.FormatInt(id, 10), "", "its keys are not known here")
		}
		for _, k := range st.LeaseKeys(id) {
			if g.CanWrite(k) {
				continue
			}
			if !g.CanRead(k) {
				return deny(g, "write every key attached to lease "+strconv.FormatInt(id, 10), "", "")
			}
			e := deny(g, "write", k, "")
			e.Lease = id
			return e
		}
	}
	return nil
}

// mayWrite checks, on the leader, a write a follower forwarded for p:
// MayApply against this member's state, which is at least as new as the
// one the follower checked against (checkCaller waited for it). The
// follower checked what the answer shows; the leader answers the
// outcome.
func (n *Node) mayWrite(p *Principal, c fsm.Command) error {
	return rolesChanged(MayApply(p, n.fsm.State(), c, AnswerOutcome))
}

// rolesChanged marks a refusal by the leader of what the follower let
// through: the token's roles changed in between.
func rolesChanged(err error) error {
	if e, ok := err.(*AccessError); ok {
		c := *e
		if c.Why == "" {
			c.Why = "its roles changed"
		} else {
			c.Why += "; its roles changed"
		}
		return &c
	}
	return err
}

// mayChangeMembers checks, on the leader, that p may change the
// membership: what the membership records need.
func mayChangeMembers(p *Principal) error {
	return rolesChanged(MayApply(p, nil, fsm.SetMember{}, AnswerOutcome))
}

// MayApply is the package's MayApply, for a front end that declares what
// it needs of a node in an interface of its own.
func (n *Node) MayApply(g Grants, st *fsm.State, c fsm.Command, a Answer) error {
	return MayApply(g, st, c, a)
}
