package fsm

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"

	"github.com/rosterhq/roster/lease"
)

// EventType says whether an Event wrote or removed a key.
type EventType uint8

// Event types.
const (
	EventPut EventType = iota + 1
	EventDelete
)

// Event is one key change, in revision order. For a delete, KV holds the key
// and the revision of the delete (ModRevision); Prev holds what was removed.
// Expired marks a delete made by a tick because the key's lease expired
// (not a delete, nor a revocation), for front ends that tell them apart
// (the Redis port's "expired" notification).
type Event struct {
	Type    EventType
	KV      *KV
	Prev    *KV
	Expired bool
}

// Result is what applying one command returned. Err is a state error
// (ErrLeaseNotFound, *CASError, ...) when the command changed nothing.
type Result struct {
	Err      error
	Revision int64 // store revision after the command
	Prev     *KV   // put: the previous KV
	Deleted  int64 // delete: keys removed
	Value    int64 // incr: the new value
	Lease    LeaseStatus
	Renewed  []LeaseStatus // keep-alive: renewed leases, in command order
	NotFound []int64       // keep-alive: IDs that were not found
	Expired  int64         // tick: leases expired
	More     bool          // tick: expired leases remain beyond the limit
	Ops      []Result      // txn: one result per operation, when it applied
}

// batch is one ApplyBatch in progress: the cloned state being mutated and
// the records it changed, for the next checkpoint.
type batch struct {
	s       *State
	touched []touched
	events  []Event
	expired int64
}

// touched is one record a batch changed. A batch lists them (publish adds
// them to the checkpoint's set) rather than keeping a set of its own: one
// map insertion per change instead of two.
type touched struct {
	kind recordKind
	key  string // every kind but kindLease
	id   int64  // kindLease
}

func newBatch(s *State) *batch { return &batch{s: s} }

// touch marks a record changed; every change to replicated state goes
// through it or touchLease, or the checkpoint would not persist it. k is
// never kindLease: leases are marked by ID.
func (b *batch) touch(k recordKind, key string) {
	b.touched = append(b.touched, touched{kind: k, key: key})
}

// touchLease marks lease id changed.
func (b *batch) touchLease(id int64) {
	b.touched = append(b.touched, touched{kind: kindLease, id: id})
}

func (b *batch) apply(c Command) Result {
	switch c := c.(type) {
	case Grant:
		return b.grant(c)
	case Revoke:
		return b.revoke(c)
	case KeepAlive:
		return b.keepAlive(c)
	case Put:
		return b.put(c)
	case Delete:
		return b.delete(c)
	case Incr:
		return b.incr(c)
	case Tick:
		return b.tick(c)
	case SetMember:
		return b.setMember(c.Member)
	case DelMember:
		return b.delMember(c.ID)
	case Txn:
		return b.txn(c)
	case Check:
		return Result{Err: ErrCheckOutsideTxn, Revision: b.s.revision}
	case PutRole:
		return b.putRole(c)
	case DeleteRole:
		return b.deleteRole(c)
	case PutToken:
		return b.putToken(c)
	case DeleteToken:
		return b.deleteToken(c)
	}
	return Result{Err: invalid("unknown command %T", c)}
}

func (b *batch) grant(c Grant) Result {
	if _, ok := b.s.leases.Get(c.ID); ok {
		return Result{Err: ErrLeaseExists, Revision: b.s.revision}
	}
	l := &lease.Lease{ID: c.ID, TTL: c.TTL, Name: c.Name, Deadline: lease.Deadline(b.s.clock, c.TTL) + max(c.SlackMs, 0)}
	b.s.leases.Put(l)
	b.touchLease(l.ID)
	b.s.maxLeaseID = max(b.s.maxLeaseID, l.ID)
	return Result{Revision: b.s.revision, Lease: b.s.status(l)}
}

func (b *batch) keepAlive(c KeepAlive) Result {
	r := Result{Revision: b.s.revision, Renewed: make([]LeaseStatus, 0, len(c.IDs)), NotFound: []int64{}}
	b.touched = slices.Grow(b.touched, len(c.IDs))
	// Before the strict rule, a lease still in the table was renewable
	// whatever its deadline.
	expiredBy := int64(math.MinInt64)
	if c.Strict {
		expiredBy = b.s.clock
	}
	for _, id := range c.IDs {
		l, ok := b.s.leases.Renew(id, expiredBy, func(old *lease.Lease) int64 {
			return lease.Deadline(b.s.clock, old.TTL) + max(c.SlackMs, 0)
		})
		if !ok {
			r.NotFound = append(r.NotFound, id)
			continue
		}
		b.touchLease(id)
		r.Renewed = append(r.Renewed, b.s.status(l))
	}
	return r
}

func (b *batch) revoke(c Revoke) Result {
	if _, ok := b.s.leases.Get(c.ID); !ok {
		return Result{Err: ErrLeaseNotFound, Revision: b.s.revision}
	}
	keys := b.dropLease(c.ID)
	b.deleteKeys(keys)
	return Result{Revision: b.s.revision, Deleted: int64(len(keys))}
}

// dropLease removes a lease and returns its keys (still stored).
func (b *batch) dropLease(id int64) []string {
	_, keys, _ := b.s.leases.Delete(id)
	b.touchLease(id)
	return keys
}

// deleteKeys removes keys that are known to exist, one revision each, in
// the order given (callers pass key order).
func (b *batch) deleteKeys(keys []string) {
	for _, k := range keys {
		prev, ok := b.s.Get(k)
		if !ok {
			continue
		}
		b.s.revision++
		if prev.Lease != 0 {
			b.s.leases.Detach(prev.Lease, k)
		}
		b.s.kv.Delete(prev)
		b.touch(kindKV, k)
		b.events = append(b.events, Event{Type: EventDelete, KV: &KV{Key: k, ModRevision: b.s.revision}, Prev: prev})
	}
}

func (b *batch) put(c Put) Result {
	if c.Lease != 0 {
		if !b.s.leaseAlive(c.Lease, c.Strict) {
			return Result{Err: ErrLeaseNotFound, Revision: b.s.revision}
		}
	}
	prev, exists := b.s.Get(c.Key)
	if err := checkCAS(c.HasCAS, c.CAS, prev, exists); err != nil {
		return Result{Err: err, Revision: b.s.revision}
	}
	if !c.Only.Holds(prev) {
		return Result{Revision: b.s.revision, Prev: prev}
	}
	if c.IfChanged && exists && prev.Lease == c.Lease && bytes.Equal(prev.Value, c.Value) {
		return Result{Revision: b.s.revision, Prev: prev}
	}
	b.store(c.Key, c.Value, c.Lease, prev)
	if c.DropOldLease {
		b.dropOldLease(prev, c.Lease)
	}
	return Result{Revision: b.s.revision, Prev: prev}
}

// oldLease is the lease a write with DropOldLease took its key off (0:
// none): prev is the key before the write, now the lease it has after.
func oldLease(prev *KV, now int64) int64 {
	if prev == nil || prev.Lease == now {
		return 0
	}
	return prev.Lease
}

// dropOldLease drops the lease prev's key was taken off if that lease is
// named after the key and has no keys left (Put.DropOldLease).
func (b *batch) dropOldLease(prev *KV, now int64) {
	id := oldLease(prev, now)
	if id == 0 {
		return
	}
	if l, ok := b.s.leases.Get(id); ok && l.Name == prev.Key && !b.s.leases.HasKeys(id) {
		b.dropLease(id)
	}
}

// store writes a key at the next revision; prev is its current KV or nil.
func (b *batch) store(key string, value []byte, leaseID int64, prev *KV) *KV {
	b.s.revision++
	kv := &KV{Key: key, Value: value, CreateRevision: b.s.revision, ModRevision: b.s.revision, Version: 1, Lease: leaseID}
	if prev != nil {
		kv.CreateRevision = prev.CreateRevision
		kv.Version = prev.Version + 1
		if prev.Lease != 0 && prev.Lease != leaseID {
			b.s.leases.Detach(prev.Lease, key)
		}
	}
	if leaseID != 0 {
		b.s.leases.Attach(leaseID, key)
	}
	b.s.kv.Set(kv)
	b.touch(kindKV, key)
	b.events = append(b.events, Event{Type: EventPut, KV: kv, Prev: prev})
	return kv
}

func checkCAS(has bool, want int64, prev *KV, exists bool) error {
	if !has {
		return nil
	}
	var cur int64
	if exists {
		cur = prev.ModRevision
	}
	if cur != want {
		return &CASError{Current: cur}
	}
	return nil
}

func (b *batch) delete(c Delete) Result {
	if !c.Prefix {
		prev, exists := b.s.Get(c.Key)
		if err := checkCAS(c.HasCAS, c.CAS, prev, exists); err != nil {
			return Result{Err: err, Revision: b.s.revision}
		}
		if !exists {
			return Result{Revision: b.s.revision}
		}
		b.deleteKeys([]string{c.Key})
		if c.DropOldLease {
			b.dropOldLease(prev, 0)
		}
		return Result{Revision: b.s.revision, Deleted: 1, Prev: prev}
	}
	var keys []string
	b.s.Range(c.Key, "", func(kv *KV) bool {
		keys = append(keys, kv.Key)
		return true
	})
	b.deleteKeys(keys)
	return Result{Revision: b.s.revision, Deleted: int64(len(keys))}
}

func (b *batch) incr(c Incr) Result {
	prev, _ := b.s.Get(c.Key)
	next, write, err := c.Next(prev)
	if err != nil {
		return Result{Err: err, Revision: b.s.revision}
	}
	if write {
		var leaseID int64
		if prev != nil {
			leaseID = prev.Lease
		}
		b.store(c.Key, []byte(strconv.FormatInt(next, 10)), leaseID, prev)
	}
	return Result{Revision: b.s.revision, Value: next, Prev: prev}
}

// Next is what c makes of the key prev (nil: absent): the new value, and
// whether it is written (an increment of 0 leaves an existing key as it
// is). The key keeps its lease. The Redis port plays Incr with it inside
// a transaction, before proposing.
func (c Incr) Next(prev *KV) (next int64, write bool, err error) {
	var cur int64
	if prev != nil {
		n, err := strconv.ParseInt(string(prev.Value), 10, 64)
		if err != nil || (c.Canonical && strconv.FormatInt(n, 10) != string(prev.Value)) {
			return 0, false, invalid("the value at %q is not a decimal integer", truncate(c.Key))
		}
		cur = n
	}
	if (c.By > 0 && cur > math.MaxInt64-c.By) || (c.By < 0 && cur < math.MinInt64-c.By) {
		return 0, false, fmt.Errorf("%w: incrementing %d by %d", ErrOverflow, cur, c.By)
	}
	if prev != nil && c.By == 0 {
		return cur, false, nil
	}
	return cur + c.By, true, nil
}

func (b *batch) tick(c Tick) Result {
	if c.ElapsedMs > 0 {
		b.s.clock += c.ElapsedMs
	}
	limit := int(c.Limit)
	if limit <= 0 {
		limit = math.MaxInt32
	}
	ids := b.s.leases.Expired(b.s.clock, limit)
	var keys []string
	for _, id := range ids {
		keys = append(keys, b.dropLease(id)...)
	}
	// One revision per key, in key order across every lease of this tick.
	sort.Strings(keys)
	first := len(b.events)
	b.deleteKeys(keys)
	for i := first; i < len(b.events); i++ {
		b.events[i].Expired = true
	}
	b.expired += int64(len(ids))
	more := len(b.s.leases.Expired(b.s.clock, 1)) > 0
	return Result{Revision: b.s.revision, Expired: int64(len(ids)), Deleted: int64(len(keys)), More: more}
}

func (b *batch) setMember(m Member) Result {
	ms := make([]Member, 0, len(b.s.members)+1)
	for _, old := range b.s.members {
		if old.ID != m.ID {
			ms = append(ms, old)
		}
	}
	ms = append(ms, m)
	sort.Slice(ms, func(i, j int) bool { return ms[i].ID < ms[j].ID })
	b.s.members = ms
	b.touch(kindMember, m.ID)
	return Result{Revision: b.s.revision}
}

func (b *batch) delMember(id string) Result {
	ms := make([]Member, 0, len(b.s.members))
	for _, old := range b.s.members {
		if old.ID != id {
			ms = append(ms, old)
		}
	}
	b.s.members = ms
	b.touch(kindMember, id)
	return Result{Revision: b.s.revision}
}
