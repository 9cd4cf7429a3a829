package lease

import (
	"math"
	"slices"

	"github.com/tidwall/btree"
)

// Lease is one lease record. Records are immutable once stored in a Table:
// cloned tables share them.
type Lease struct {
	ID   int64
	TTL  int64 // seconds
	Name string
	// Deadline is the lease-clock time (ms) at which the lease expires.
	Deadline int64
}

// Remaining is the time left at clock now, in whole seconds rounded up.
func (l *Lease) Remaining(now int64) int64 { return Remaining(l.Deadline, now) }

// Deadline is the expiry time of a lease of ttl seconds renewed at now.
func Deadline(now, ttlSeconds int64) int64 { return now + ttlSeconds*1000 }

// Remaining converts a deadline into whole seconds left at now, rounded up,
// never negative.
func Remaining(deadline, now int64) int64 {
	left := deadline - now
	if left <= 0 {
		return 0
	}
	return (left + 999) / 1000
}

// attachment records that key belongs to lease; ordered by lease then key so
// a lease's keys are one contiguous, sorted range.
type attachment struct {
	lease int64
	key   string
}

func attachLess(a, b attachment) bool {
	if a.lease != b.lease {
		return a.lease < b.lease
	}
	return a.key < b.key
}

func leaseLess(a, b *Lease) bool { return a.ID < b.ID }

// degree of the B-trees. Nodes hold up to 2*degree-1 items; a bulk load
// (Builder) fills them.
const degree = 32

// newTree returns an empty copy-on-write B-tree. tidwall/btree rather than
// google/btree: it bulk-loads sorted items (a restart builds a table of a
// million leases in one pass, with full nodes), and Copy is O(1) with
// copy-on-write like google/btree's Clone. No locks: a tree is written by
// one goroutine, and a published copy is never written again.
func newTree[T any](less func(a, b T) bool) *btree.BTreeG[T] {
	return btree.NewBTreeGOptions(less, btree.Options{Degree: degree, NoLocks: true})
}

// Table is the set of live leases, their expiry queue and the keys attached
// to each. The zero value is not usable; call NewTable.
type Table struct {
	byID  *btree.BTreeG[*Lease]
	queue *Queue
	keys  *btree.BTreeG[attachment]
}

// NewTable returns an empty table.
func NewTable() *Table {
	return &Table{byID: newTree(leaseLess), queue: NewQueue(), keys: newTree(attachLess)}
}

// Clone returns a copy-on-write copy in O(1). After Clone, the receiver must
// no longer be written to; it may still be read concurrently with writes to
// the clone.
func (t *Table) Clone() *Table {
	return &Table{byID: t.byID.Copy(), queue: t.queue.Clone(), keys: t.keys.Copy()}
}

// Len is the number of live leases.
func (t *Table) Len() int { return t.byID.Len() }

// Get returns the lease with the given ID.
func (t *Table) Get(id int64) (*Lease, bool) {
	return t.byID.Get(&Lease{ID: id})
}

// Put inserts l or replaces the lease with the same ID, keeping the expiry
// queue in step. l must not be modified afterwards.
func (t *Table) Put(l *Lease) {
	if old, ok := t.byID.Set(l); ok {
		t.queue.Remove(old.ID, old.Deadline)
	}
	t.queue.Add(l.ID, l.Deadline)
}

// Renew gives lease id the deadline deadline(old) computes from its
// current record and returns the new record; false when no such lease is
// live at clock now (the table is unchanged). A lease whose deadline is at
// or before now has expired even while it is still in the table (a tick
// that reached its limit leaves it for the next): renewing it would bring
// back a lease unrenewed for longer than its TTL. It is Get then Put in
// one descent of the ID tree, which a keep-alive batch of thousands of
// leases notices.
func (t *Table) Renew(id, now int64, deadline func(old *Lease) int64) (*Lease, bool) {
	// The record is filled in after Set has swapped it in: it is new, so no
	// clone of the table can see it yet.
	l := &Lease{ID: id}
	old, ok := t.byID.Set(l)
	if !ok {
		t.byID.Delete(l)
		return nil, false
	}
	if old.Deadline <= now {
		t.byID.Set(old)
		return nil, false
	}
	l.TTL, l.Name, l.Deadline = old.TTL, old.Name, deadline(old)
	t.queue.Remove(old.ID, old.Deadline)
	t.queue.Add(l.ID, l.Deadline)
	return l, true
}

// Delete removes the lease and its attachments and returns the lease and the
// keys that were attached to it, in key order.
func (t *Table) Delete(id int64) (*Lease, []string, bool) {
	l, ok := t.byID.Delete(&Lease{ID: id})
	if !ok {
		return nil, nil, false
	}
	t.queue.Remove(l.ID, l.Deadline)
	keys := t.Keys(id)
	for _, k := range keys {
		t.keys.Delete(attachment{id, k})
	}
	return l, keys, true
}

// Attach records that key belongs to lease id.
func (t *Table) Attach(id int64, key string) { t.keys.Set(attachment{id, key}) }

// Detach forgets that key belongs to lease id.
func (t *Table) Detach(id int64, key string) { t.keys.Delete(attachment{id, key}) }

// HasKeys reports whether any key is attached to lease id.
func (t *Table) HasKeys(id int64) bool {
	found := false
	t.keys.Ascend(attachment{lease: id}, func(a attachment) bool {
		found = a.lease == id
		return false
	})
	return found
}

// Keys lists the keys attached to lease id, in key order.
func (t *Table) Keys(id int64) []string {
	keys := []string{}
	t.keys.Ascend(attachment{lease: id}, func(a attachment) bool {
		if a.lease != id {
			return false
		}
		keys = append(keys, a.key)
		return true
	})
	return keys
}

// Expired returns up to max lease IDs whose deadline is at or before now,
// earliest deadline first (ties by ID). Its cost depends on how many leases
// are returned, not on how many are alive.
func (t *Table) Expired(now int64, max int) []int64 { return t.queue.Expired(now, max) }

// NextDeadline is the earliest deadline of any lease.
func (t *Table) NextDeadline() (int64, bool) { return t.queue.Next() }

// Ascend calls fn for each lease with an ID greater than after, in ID order,
// until fn returns false.
func (t *Table) Ascend(after int64, fn func(*Lease) bool) {
	switch {
	case after <= 0:
		t.byID.Scan(fn)
	case after == math.MaxInt64:
		// nothing sorts after the largest ID (and after+1 would wrap)
	default:
		t.byID.Ascend(&Lease{ID: after + 1}, fn)
	}
}

// Builder bulk-loads a Table, as a restart does: leases in ascending ID
// order and attachments in any order; Table sorts what needs sorting and
// loads each tree in one pass with full nodes, instead of a B-tree insert
// per item.
type Builder struct {
	t      *Table
	queue  []queueItem
	attach []attachment
}

// NewBuilder starts an empty table.
func NewBuilder() *Builder { return &Builder{t: NewTable()} }

// Lease adds a lease; IDs should ascend (others are inserted normally).
func (b *Builder) Lease(l *Lease) {
	b.t.byID.Load(l)
	b.queue = append(b.queue, queueItem{l.Deadline, l.ID})
}

// Attach records that key belongs to lease id.
func (b *Builder) Attach(id int64, key string) { b.attach = append(b.attach, attachment{id, key}) }

// Table returns the table built; the builder must not be used after.
func (b *Builder) Table() *Table {
	slices.SortFunc(b.queue, func(x, y queueItem) int { return cmpBool(queueLess(x, y), queueLess(y, x)) })
	for _, it := range b.queue {
		b.t.queue.t.Load(it)
	}
	slices.SortFunc(b.attach, func(x, y attachment) int { return cmpBool(attachLess(x, y), attachLess(y, x)) })
	for _, a := range b.attach {
		b.t.keys.Load(a)
	}
	t := b.t
	*b = Builder{}
	return t
}

func cmpBool(less, greater bool) int {
	switch {
	case less:
		return -1
	case greater:
		return 1
	}
	return 0
}
