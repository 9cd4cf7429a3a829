package fsm

// Command is one replicated operation. Every command is validated by its
// proposer before it is encoded, and carries every ID and time it needs so
// that applying it is deterministic.
type Command interface {
	cmdType() byte
}

// Type bytes. Never reuse or renumber one: old log entries keep them forever.
const (
	typeGrant     byte = 1
	typeRevoke    byte = 2
	typeKeepAlive byte = 3
	typePut       byte = 4
	typeDelete    byte = 5
	typeIncr      byte = 6
	typeTick      byte = 7
	typeSetMember byte = 8
	typeDelMember byte = 9
	typeTxn       byte = 10
	// 11-14: access control (auth.go). 16+ ask first.
	typePutRole     byte = 11
	typeDeleteRole  byte = 12
	typePutToken    byte = 13
	typeDeleteToken byte = 14
	typeCheck       byte = 15
)

// Grant creates a lease. The ID is chosen by the proposer.
type Grant struct {
	ID   int64
	TTL  int64 // seconds
	Name string
	// SlackMs is how far real time was ahead of the applied lease clock
	// when the leader proposed this (time not yet carried by a tick); it is
	// added to the deadline so the lease never expires before its TTL.
	SlackMs int64
}

// Revoke deletes a lease and every key attached to it.
type Revoke struct {
	ID int64
}

// KeepAlive renews leases to their full TTL. IDs are distinct. SlackMs is
// as in Grant.
type KeepAlive struct {
	IDs     []int64
	SlackMs int64
	// Strict: a lease whose deadline has passed is gone, though a tick
	// that stopped at its limit left it in the table (see StrictDeadlines).
	Strict bool
}

// StrictDeadlines gives every keep-alive and put of c (a txn's too) the
// rule that a lease past its deadline is gone. Proposers apply it to
// what they propose. Entries written before the rule existed lack the
// flag and apply as they did then, so a log replays the same on every
// replica; a replica too old to know the flag cannot decode such an entry
// and stops, rather than renew what the others expire.
func StrictDeadlines(c Command) Command {
	switch c := c.(type) {
	case KeepAlive:
		c.Strict = true
		return c
	case Put:
		c.Strict = true
		return c
	case Txn:
		ops := make([]Command, len(c.Ops))
		for i, op := range c.Ops {
			ops[i] = StrictDeadlines(op)
		}
		return Txn{Ops: ops}
	}
	return c
}

// Put writes a key.
type Put struct {
	Key   string
	Value []byte
	Lease int64 // 0: no lease
	// HasCAS makes the write conditional on the key's mod revision being CAS
	// (0: the key must be absent).
	HasCAS bool
	CAS    int64
	// IfChanged skips the write (and the revision bump) when the key already
	// holds Value under Lease.
	IfChanged bool
	// Strict: a Lease past its deadline is gone (see StrictDeadlines).
	Strict bool
	// DropOldLease (set by the Redis port): when the write takes the key
	// off a lease named after the key (the lease the Redis port grants
	// for a key's TTL) and leaves that lease without keys, the lease goes
	// too, in the same entry; in a Txn, once all its operations applied,
	// if it still has no keys. Without it such a lease stayed until its
	// TTL ran out: a loop of SET k v EX n piled up one keyless lease per
	// write. Entries without the flag apply as they did before it.
	DropOldLease bool
	// Only (set by the Redis port's EXEC) makes the write depend on the
	// key as it is when the entry applies: PutIfAbsent writes only an
	// absent key, PutIfPresent only an existing one. A put whose
	// condition does not hold writes nothing and is no failure (unlike a
	// failed CAS, it fails no Txn): its result's Prev tells which it was
	// (the key, or nil when absent), as SET … NX|XX answers. In a Txn,
	// a lease an earlier Grant of the same Txn created for such a put
	// that wrote nothing goes once the Txn applied, if no key is on it
	// (SET … NX EX of a key that exists leaves no keyless lease). Entries
	// without it apply as they did; a replica too old to know it cannot
	// decode one and stops (as for StrictDeadlines' flag).
	Only PutIf
}

// PutIf is Put.Only: the state of the key a put writes only in.
type PutIf uint8

const (
	PutAlways    PutIf = iota // whatever the key holds (the zero value)
	PutIfAbsent               // only when the key is absent (SET … NX)
	PutIfPresent              // only when the key exists (SET … XX)
)

// Holds says whether a put of condition p writes over prev (nil: absent).
func (p PutIf) Holds(prev *KV) bool {
	switch p {
	case PutIfAbsent:
		return prev == nil
	case PutIfPresent:
		return prev != nil
	}
	return true
}

// Delete removes a key or, with Prefix, every key under a byte prefix.
type Delete struct {
	Key    string
	Prefix bool
	HasCAS bool // single key only
	CAS    int64
	// DropOldLease: as Put's, for a single key.
	DropOldLease bool
}

// Incr adds By to the decimal integer stored at Key (absent counts as 0).
// As an operation of a Txn (the Redis port's EXEC: the increment is
// evaluated when the entry applies, so no compare of the key is needed)
// its failure (not an integer, ErrOverflow) is its own result's Err and
// changes nothing: the Txn's other operations still apply, as Redis's
// EXEC answers a failing command in place. A replica too old to know an
// Incr inside a Txn cannot decode one and stops; entries written before
// never hold one.
type Incr struct {
	Key string
	By  int64
	// Canonical (set by the Redis port) takes only the one canonical
	// spelling of an int64 as the stored value, as Redis does: no '+', no
	// leading zero, no "-0", no spaces. Entries without it take whatever
	// strconv.ParseInt takes, as they did.
	Canonical bool
}

// Tick advances the lease clock by Elapsed milliseconds and expires at most
// Limit leases (with their keys) whose deadline has passed.
type Tick struct {
	ElapsedMs int64
	Limit     int64
}

// SetMember records (or replaces) a cluster member's metadata.
type SetMember struct {
	Member Member
}

// DelMember forgets a member's metadata.
type DelMember struct {
	ID string
}

// Check compares a key without writing it: the Txn holding it applies
// only while the key's mod revision is ModRevision (0: the key must be
// absent), and fails as a Put's failed compare fails it (a *CASError
// naming the operation). It is valid only inside a Txn: alone it is
// refused (ErrCheckOutsideTxn). The Redis port's EXEC compares the keys a
// transaction only read or watched with it, which needs read permission
// on them, not write, and carries no value. A replica too old to know the
// operation cannot decode a Txn holding one and stops (as for
// StrictDeadlines' flag), rather than apply the Txn without its compare;
// entries written before it never hold one and replay as they did.
type Check struct {
	Key         string
	ModRevision int64
}

// Txn applies its operations in order, all or nothing, in one entry. Ops
// holds Put, Delete (one key each, not Prefix), Check, Grant and Incr
// commands; no key appears twice. An Incr, and a Put with Only, depend on
// the key as it is when they apply and never fail the Txn: an Incr that
// fails answers its own error and changes nothing, a Put whose condition
// does not hold writes nothing. Every condition (CAS, lease present, lease ID free) is
// checked, against the state and the operations before it, before anything
// changes; the keys changed then take consecutive revisions in operation
// order. A Put may attach its key to a lease granted earlier in the same
// Txn.
type Txn struct {
	Ops []Command
}

// Member is the replicated metadata of one cluster member; it lives in its
// own bucket, never in the user keyspace.
type Member struct {
	ID       string
	RaftAddr string
	HTTPAddr string
	Node     int64 // snowflake node number
}

func (Grant) cmdType() byte     { return typeGrant }
func (Revoke) cmdType() byte    { return typeRevoke }
func (KeepAlive) cmdType() byte { return typeKeepAlive }
func (Put) cmdType() byte       { return typePut }
func (Delete) cmdType() byte    { return typeDelete }
func (Incr) cmdType() byte      { return typeIncr }
func (Tick) cmdType() byte      { return typeTick }
func (SetMember) cmdType() byte { return typeSetMember }
func (DelMember) cmdType() byte { return typeDelMember }
func (Txn) cmdType() byte       { return typeTxn }
func (Check) cmdType() byte     { return typeCheck }
