package lease

import "github.com/tidwall/btree"

type queueItem struct {
	deadline int64
	id       int64
}

func queueLess(a, b queueItem) bool {
	if a.deadline != b.deadline {
		return a.deadline < b.deadline
	}
	return a.id < b.id
}

// Queue orders leases by deadline, ties broken by ID so that the order never
// depends on insertion history. A B-tree rather than a heap: it clones in O(1)
// and removes an arbitrary entry in O(log n) without a position index.
type Queue struct {
	t *btree.BTreeG[queueItem]
}

// NewQueue returns an empty queue.
func NewQueue() *Queue { return &Queue{t: newTree(queueLess)} }

// Clone returns a copy-on-write copy in O(1); see Table.Clone.
func (q *Queue) Clone() *Queue { return &Queue{t: q.t.Copy()} }

// Add enqueues lease id with its deadline.
func (q *Queue) Add(id, deadline int64) { q.t.Set(queueItem{deadline, id}) }

// Remove dequeues lease id, which must have been added with deadline.
func (q *Queue) Remove(id, deadline int64) { q.t.Delete(queueItem{deadline, id}) }

// Len is the number of queued leases.
func (q *Queue) Len() int { return q.t.Len() }

// Next returns the earliest deadline in the queue.
func (q *Queue) Next() (deadline int64, ok bool) {
	it, ok := q.t.Min()
	return it.deadline, ok
}

// Expired returns up to max IDs (max <= 0: no limit) whose deadline is at or
// before now, in queue order. It does not remove them.
func (q *Queue) Expired(now int64, max int) []int64 {
	var ids []int64
	q.t.Scan(func(it queueItem) bool {
		if it.deadline > now || (max > 0 && len(ids) >= max) {
			return false
		}
		ids = append(ids, it.id)
		return true
	})
	return ids
}
