package lease

import (
	"math"

	"github.com/google/btree"
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

const degree = 32

// Table is the set of live leases, their expiry queue and the keys attached
// to each. The zero value is not usable; call NewTable.
type Table struct {
	byID  *btree.BTreeG[*Lease]
	queue *Queue
	keys  *btree.BTreeG[attachment]
}

// NewTable returns an empty table.
func NewTable() *Table {
	return &Table{
		byID:  btree.NewG(degree, leaseLess),
		queue: NewQueue(),
		keys:  btree.NewG(degree, attachLess),
	}
}

// Clone returns a copy-on-write copy in O(1). After Clone, the receiver must
// no longer be written to; it may still be read concurrently with writes to
// the clone.
func (t *Table) Clone() *Table {
	return &Table{byID: t.byID.Clone(), queue: t.queue.Clone(), keys: t.keys.Clone()}
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
	if old, ok := t.byID.ReplaceOrInsert(l); ok {
		t.queue.Remove(old.ID, old.Deadline)
	}
	t.queue.Add(l.ID, l.Deadline)
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
func (t *Table) Attach(id int64, key string) { t.keys.ReplaceOrInsert(attachment{id, key}) }

// Detach forgets that key belongs to lease id.
func (t *Table) Detach(id int64, key string) { t.keys.Delete(attachment{id, key}) }

// Keys lists the keys attached to lease id, in key order.
func (t *Table) Keys(id int64) []string {
	keys := []string{}
	t.keys.AscendGreaterOrEqual(attachment{lease: id}, func(a attachment) bool {
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
		t.byID.Ascend(fn)
	case after == math.MaxInt64:
		// nothing sorts after the largest ID (and after+1 would wrap)
	default:
		t.byID.AscendGreaterOrEqual(&Lease{ID: after + 1}, fn)
	}
}
