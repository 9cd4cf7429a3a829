package lease_test

import (
	"math"
	"reflect"
	"testing"

	"github.com/rosterhq/roster/lease"
)

func TestQueue(t *testing.T) {
	type item struct{ id, deadline int64 }
	cases := []struct {
		name    string
		add     []item
		remove  []item
		now     int64
		max     int
		want    []int64
		next    int64
		nextOK  bool
		wantLen int
	}{
		{name: "empty", now: 100, want: nil},
		{name: "none due", add: []item{{1, 100}, {2, 200}}, now: 99, want: nil, next: 100, nextOK: true, wantLen: 2},
		{name: "due at deadline", add: []item{{1, 100}, {2, 200}}, now: 100, want: []int64{1}, next: 100, nextOK: true, wantLen: 2},
		{name: "all due", add: []item{{2, 200}, {1, 100}, {3, 150}}, now: 1000, want: []int64{1, 3, 2}, next: 100, nextOK: true, wantLen: 3},
		{name: "ties by id", add: []item{{30, 5}, {10, 5}, {20, 5}, {5, 6}}, now: 6, want: []int64{10, 20, 30, 5}, next: 5, nextOK: true, wantLen: 4},
		{name: "limit", add: []item{{30, 5}, {10, 5}, {20, 5}, {5, 6}}, now: 6, max: 2, want: []int64{10, 20}, next: 5, nextOK: true, wantLen: 4},
		{name: "limit above due", add: []item{{1, 1}, {2, 2}, {3, 9}}, now: 2, max: 10, want: []int64{1, 2}, next: 1, nextOK: true, wantLen: 3},
		{name: "limit 1", add: []item{{1, 1}, {2, 2}}, now: 2, max: 1, want: []int64{1}, next: 1, nextOK: true, wantLen: 2},
		{name: "negative limit is no limit", add: []item{{1, 1}, {2, 2}}, now: 2, max: -1, want: []int64{1, 2}, next: 1, nextOK: true, wantLen: 2},
		{name: "removed", add: []item{{1, 1}, {2, 2}, {3, 3}}, remove: []item{{1, 1}}, now: 3, want: []int64{2, 3}, next: 2, nextOK: true, wantLen: 2},
		{name: "remove with wrong deadline is a no-op", add: []item{{1, 1}}, remove: []item{{1, 2}}, now: 3, want: []int64{1}, next: 1, nextOK: true, wantLen: 1},
		{name: "remove absent", add: []item{{1, 1}}, remove: []item{{9, 1}}, now: 3, want: []int64{1}, next: 1, nextOK: true, wantLen: 1},
		{name: "same id twice at different deadlines", add: []item{{1, 1}, {1, 5}}, now: 10, want: []int64{1, 1}, next: 1, nextOK: true, wantLen: 2},
		{name: "add twice", add: []item{{1, 1}, {1, 1}}, now: 10, want: []int64{1}, next: 1, nextOK: true, wantLen: 1},
		{name: "negative deadlines", add: []item{{1, -5}, {2, 0}}, now: -1, want: []int64{1}, next: -5, nextOK: true, wantLen: 2},
		{name: "extreme deadlines", add: []item{{1, math.MaxInt64}, {2, math.MinInt64}}, now: math.MaxInt64, want: []int64{2, 1}, next: math.MinInt64, nextOK: true, wantLen: 2},
		{name: "all removed", add: []item{{1, 1}}, remove: []item{{1, 1}}, now: 10, want: nil, wantLen: 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q := lease.NewQueue()
			for _, it := range tc.add {
				q.Add(it.id, it.deadline)
			}
			for _, it := range tc.remove {
				q.Remove(it.id, it.deadline)
			}
			got := q.Expired(tc.now, tc.max)
			if len(got) != 0 || len(tc.want) != 0 {
				if !reflect.DeepEqual(got, tc.want) {
					t.Fatalf("Expired(%d, %d) = %v, want %v", tc.now, tc.max, got, tc.want)
				}
			}
			if q.Len() != tc.wantLen {
				t.Fatalf("Len %d, want %d (Expired must not remove)", q.Len(), tc.wantLen)
			}
			next, ok := q.Next()
			if ok != tc.nextOK || (ok && next != tc.next) {
				t.Fatalf("Next() = %d, %v; want %d, %v", next, ok, tc.next, tc.nextOK)
			}
		})
	}
}

func TestQueueClone(t *testing.T) {
	q := lease.NewQueue()
	for i := int64(1); i <= 100; i++ {
		q.Add(i, i*10)
	}
	c := q.Clone()
	c.Remove(1, 10)
	c.Add(1000, 1)
	if got := q.Expired(10, 0); !reflect.DeepEqual(got, []int64{1}) {
		t.Fatalf("original sees the clone's writes: %v", got)
	}
	if got := c.Expired(10, 0); !reflect.DeepEqual(got, []int64{1000}) {
		t.Fatalf("clone: %v", got)
	}
	if q.Len() != 100 || c.Len() != 100 {
		t.Fatalf("len %d / %d", q.Len(), c.Len())
	}
}

func TestRemaining(t *testing.T) {
	cases := []struct {
		deadline, now, want int64
	}{
		{1000, 0, 1},
		{1001, 0, 2},
		{2000, 0, 2},
		{2000, 1, 2},
		{2000, 999, 2},
		{2000, 1000, 1},
		{2000, 1001, 1},
		{2000, 1999, 1}, // 1 ms left rounds up to a second
		{2000, 2000, 0},
		{2000, 2001, 0},      // never negative
		{2000, 1_000_000, 0}, // long past
		{0, 0, 0},
		{-5, -10, 1},
		{5000, -5000, 10},
	}
	for _, tc := range cases {
		if got := lease.Remaining(tc.deadline, tc.now); got != tc.want {
			t.Errorf("Remaining(%d, %d) = %d, want %d", tc.deadline, tc.now, got, tc.want)
		}
		l := &lease.Lease{ID: 1, TTL: 2, Deadline: tc.deadline}
		if got := l.Remaining(tc.now); got != tc.want {
			t.Errorf("(*Lease).Remaining(%d) with deadline %d = %d, want %d", tc.now, tc.deadline, got, tc.want)
		}
	}
	if d := lease.Deadline(1234, 10); d != 11234 {
		t.Fatalf("Deadline(1234, 10) = %d", d)
	}
	if r := lease.Remaining(lease.Deadline(777, 30), 777); r != 30 {
		t.Fatalf("fresh lease of 30 s has %d s left", r)
	}
}

func ids(ls []*lease.Lease) []int64 {
	out := []int64{}
	for _, l := range ls {
		out = append(out, l.ID)
	}
	return out
}

func ascend(tb *lease.Table, after int64) []int64 {
	var ls []*lease.Lease
	tb.Ascend(after, func(l *lease.Lease) bool { ls = append(ls, l); return true })
	return ids(ls)
}

func TestTablePutGetReplace(t *testing.T) {
	tb := lease.NewTable()
	tb.Put(&lease.Lease{ID: 1, TTL: 2, Name: "a", Deadline: 2000})
	tb.Put(&lease.Lease{ID: 2, TTL: 5, Deadline: 5000})
	if tb.Len() != 2 {
		t.Fatalf("len %d", tb.Len())
	}
	l, ok := tb.Get(1)
	if !ok || l.Name != "a" || l.Deadline != 2000 {
		t.Fatalf("Get(1) = %+v, %v", l, ok)
	}
	if _, ok := tb.Get(3); ok {
		t.Fatal("Get(3) found a lease")
	}
	// Renewal: the old queue entry goes away, the new one counts.
	tb.Put(&lease.Lease{ID: 1, TTL: 2, Name: "a", Deadline: 9000})
	if tb.Len() != 2 {
		t.Fatalf("len %d after replace", tb.Len())
	}
	if got := tb.Expired(2000, 0); len(got) != 0 {
		t.Fatalf("replaced deadline still queued: %v", got)
	}
	if got := tb.Expired(9000, 0); !reflect.DeepEqual(got, []int64{2, 1}) {
		t.Fatalf("Expired(9000) = %v", got)
	}
	// Replacing with the same deadline keeps exactly one queue entry.
	tb.Put(&lease.Lease{ID: 2, TTL: 5, Deadline: 5000})
	if got := tb.Expired(math.MaxInt64, 0); !reflect.DeepEqual(got, []int64{2, 1}) {
		t.Fatalf("Expired(max) = %v", got)
	}
}

func TestTableAttachDetachDelete(t *testing.T) {
	tb := lease.NewTable()
	tb.Put(&lease.Lease{ID: 1, TTL: 2, Deadline: 2000})
	tb.Put(&lease.Lease{ID: 2, TTL: 2, Deadline: 2000})
	tb.Put(&lease.Lease{ID: 3, TTL: 2, Deadline: 3000})
	for _, k := range []string{"/z", "/a", "/m", "/a"} { // twice: counted once
		tb.Attach(1, k)
	}
	tb.Attach(2, "/b")
	tb.Attach(3, "/c")
	if got := tb.Keys(1); !reflect.DeepEqual(got, []string{"/a", "/m", "/z"}) {
		t.Fatalf("Keys(1) = %q", got)
	}
	tb.Detach(1, "/m")
	tb.Detach(1, "/nope") // no-op
	tb.Detach(2, "/a")    // attached to another lease: no-op
	if got := tb.Keys(1); !reflect.DeepEqual(got, []string{"/a", "/z"}) {
		t.Fatalf("Keys(1) after detach = %q", got)
	}
	if got := tb.Keys(9); got == nil || len(got) != 0 {
		t.Fatalf("Keys of an unknown lease = %#v, want empty non-nil", got)
	}
	// HasKeys looks at the lease's own attachments only, not at its
	// neighbours' (lease 2 follows lease 1 in the attachment order).
	for id, want := range map[int64]bool{1: true, 2: true, 3: true, 9: false, 0: false} {
		if got := tb.HasKeys(id); got != want {
			t.Fatalf("HasKeys(%d) = %v, want %v", id, got, want)
		}
	}
	tb.Detach(2, "/b")
	if tb.HasKeys(2) {
		t.Fatal("HasKeys(2) after its last key left")
	}
	tb.Attach(2, "/b")
	l, keys, ok := tb.Delete(1)
	if !ok || l.ID != 1 || !reflect.DeepEqual(keys, []string{"/a", "/z"}) {
		t.Fatalf("Delete(1) = %+v %q %v", l, keys, ok)
	}
	if got := tb.Keys(1); len(got) != 0 {
		t.Fatalf("attachments survived Delete: %q", got)
	}
	if _, ok := tb.Get(1); ok || tb.Len() != 2 {
		t.Fatal("lease survived Delete")
	}
	if got := tb.Expired(2000, 0); !reflect.DeepEqual(got, []int64{2}) {
		t.Fatalf("deleted lease still queued: %v", got)
	}
	if got := tb.Keys(2); !reflect.DeepEqual(got, []string{"/b"}) {
		t.Fatalf("neighbour lease lost its keys: %q", got)
	}
	if _, keys, ok := tb.Delete(1); ok || keys != nil {
		t.Fatalf("second Delete(1) = %q %v", keys, ok)
	}
	// A deleted lease without keys returns an empty list.
	tb.Put(&lease.Lease{ID: 4, TTL: 2, Deadline: 1})
	if _, keys, ok := tb.Delete(4); !ok || len(keys) != 0 {
		t.Fatalf("Delete(4) = %q %v", keys, ok)
	}
}

func TestTableAscend(t *testing.T) {
	tb := lease.NewTable()
	for _, id := range []int64{30, 10, 50, 20, 40} {
		tb.Put(&lease.Lease{ID: id, TTL: 2, Deadline: id})
	}
	cases := []struct {
		after int64
		want  []int64
	}{
		{0, []int64{10, 20, 30, 40, 50}},
		{-100, []int64{10, 20, 30, 40, 50}},
		{10, []int64{20, 30, 40, 50}},
		{11, []int64{20, 30, 40, 50}},
		{49, []int64{50}},
		{50, []int64{}},
		{math.MaxInt64 - 1, []int64{}},
		{math.MaxInt64, []int64{}}, // after+1 must not wrap around
	}
	for _, tc := range cases {
		if got := ascend(tb, tc.after); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Ascend(%d) = %v, want %v", tc.after, got, tc.want)
		}
	}
	n := 0
	tb.Ascend(0, func(*lease.Lease) bool { n++; return n < 3 })
	if n != 3 {
		t.Fatalf("Ascend did not stop: %d calls", n)
	}
}

// TestTableClone checks copy-on-write isolation in both directions: what is
// written to the clone never shows in the original (which readers may still
// hold), and the original reads the same after the clone changes.
func TestTableClone(t *testing.T) {
	orig := lease.NewTable()
	for id := int64(1); id <= 200; id++ { // enough for several B-tree levels
		orig.Put(&lease.Lease{ID: id, TTL: 2, Name: "orig", Deadline: 1000 + id})
		orig.Attach(id, "/k/a")
		orig.Attach(id, "/k/b")
	}
	snapshot := func(tb *lease.Table) (out struct {
		ids     []int64
		keys    map[int64][]string
		expired []int64
		names   []string
	}) {
		out.ids = ascend(tb, 0)
		out.keys = map[int64][]string{}
		for _, id := range out.ids {
			out.keys[id] = tb.Keys(id)
			l, _ := tb.Get(id)
			out.names = append(out.names, l.Name)
		}
		out.expired = tb.Expired(1100, 0)
		return out
	}
	before := snapshot(orig)
	c := orig.Clone()
	// Mutate the clone in every way.
	for id := int64(1); id <= 200; id += 3 {
		c.Delete(id)
	}
	for id := int64(2); id <= 200; id += 3 {
		c.Put(&lease.Lease{ID: id, TTL: 9, Name: "clone", Deadline: 99_999})
		c.Detach(id, "/k/a")
		c.Attach(id, "/k/z")
	}
	c.Put(&lease.Lease{ID: 5000, Deadline: 1})
	c.Attach(5000, "/new")
	if after := snapshot(orig); !reflect.DeepEqual(before, after) {
		t.Fatal("writes to the clone changed the original")
	}
	if _, ok := c.Get(1); ok {
		t.Fatal("clone: deleted lease present")
	}
	if l, _ := c.Get(2); l.Name != "clone" || l.Deadline != 99_999 {
		t.Fatalf("clone: renewed lease %+v", l)
	}
	if got := c.Keys(2); !reflect.DeepEqual(got, []string{"/k/b", "/k/z"}) {
		t.Fatalf("clone keys %q", got)
	}
	if got := c.Expired(1, 0); !reflect.DeepEqual(got, []int64{5000}) {
		t.Fatalf("clone expired %v", got)
	}
	// A clone of a clone is isolated too, and the first clone is still
	// readable and unchanged after the second is written.
	mid := snapshot(c)
	c2 := c.Clone()
	c2.Delete(5000)
	c2.Put(&lease.Lease{ID: 3, Deadline: 7})
	if after := snapshot(c); !reflect.DeepEqual(mid, after) {
		t.Fatal("writes to a second-generation clone changed its parent")
	}
	if after := snapshot(orig); !reflect.DeepEqual(before, after) {
		t.Fatal("writes to a second-generation clone changed the original")
	}
}

// TestTableCloneConcurrentReads reads the original while the clone is being
// written, as the FSM's readers do; run with -race.
func TestTableCloneConcurrentReads(t *testing.T) {
	orig := lease.NewTable()
	for id := int64(1); id <= 500; id++ {
		orig.Put(&lease.Lease{ID: id, Deadline: id})
		orig.Attach(id, "/k")
	}
	c := orig.Clone()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 20; i++ {
			if n := len(ascend(orig, 0)); n != 500 {
				t.Errorf("original has %d leases while the clone is written", n)
				return
			}
			if len(orig.Expired(500, 0)) != 500 || len(orig.Keys(250)) != 1 {
				t.Error("original changed while the clone is written")
				return
			}
		}
	}()
	for id := int64(1); id <= 500; id++ {
		c.Delete(id)
		c.Put(&lease.Lease{ID: id + 1000, Deadline: id})
	}
	<-done
}

func TestTableRenew(t *testing.T) {
	tb := lease.NewTable()
	tb.Put(&lease.Lease{ID: 1, TTL: 2, Name: "a", Deadline: 2000})
	tb.Put(&lease.Lease{ID: 2, TTL: 5, Deadline: 5000})
	before := tb.Clone()
	tb = before.Clone()

	l, ok := tb.Renew(1, 1999, func(old *lease.Lease) int64 { return lease.Deadline(7000, old.TTL) })
	if !ok || *l != (lease.Lease{ID: 1, TTL: 2, Name: "a", Deadline: 9000}) {
		t.Fatalf("Renew(1) = %+v, %v", l, ok)
	}
	if got, _ := tb.Get(1); got != l {
		t.Fatalf("Get(1) after Renew = %+v, want the renewed record", got)
	}
	if got := tb.Expired(8999, 0); !reflect.DeepEqual(got, []int64{2}) {
		t.Fatalf("Expired(8999) = %v: the old deadline must leave the queue", got)
	}
	if got := tb.Expired(9000, 0); !reflect.DeepEqual(got, []int64{2, 1}) {
		t.Fatalf("Expired(9000) = %v", got)
	}

	// A missing lease is reported and leaves the table as it was.
	if l, ok := tb.Renew(3, 7000, func(*lease.Lease) int64 { t.Fatal("deadline asked for a missing lease"); return 0 }); ok || l != nil {
		t.Fatalf("Renew(3) = %+v, %v", l, ok)
	}
	if _, ok := tb.Get(3); ok || tb.Len() != 2 {
		t.Fatalf("Renew of a missing lease changed the table: len %d", tb.Len())
	}

	// A lease whose deadline is at or before now has expired: not renewed,
	// the table unchanged.
	if l, ok := tb.Renew(2, 5000, func(*lease.Lease) int64 { t.Fatal("deadline asked for an expired lease"); return 0 }); ok || l != nil {
		t.Fatalf("Renew(2) at its deadline = %+v, %v", l, ok)
	}
	if got, ok := tb.Get(2); !ok || got.Deadline != 5000 || tb.Len() != 2 {
		t.Fatalf("Renew of an expired lease changed the table: %+v %v len %d", got, ok, tb.Len())
	}
	if got := tb.Expired(5000, 0); !reflect.DeepEqual(got, []int64{2}) {
		t.Fatalf("Expired(5000) after a refused Renew = %v", got)
	}

	// The clone taken before is untouched.
	if old, _ := before.Get(1); old.Deadline != 2000 {
		t.Fatalf("the earlier clone sees deadline %d", old.Deadline)
	}
	if got := before.Expired(2000, 0); !reflect.DeepEqual(got, []int64{1}) {
		t.Fatalf("earlier clone Expired(2000) = %v", got)
	}
}
