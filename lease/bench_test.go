package lease_test

import (
	"fmt"
	"testing"

	"github.com/rosterhq/roster/lease"
)

// BenchmarkQueueExpired asks a queue of 1M leases for the due ones. The cost
// must follow the number returned, not the number queued.
func BenchmarkQueueExpired(b *testing.B) {
	const n = 1_000_000
	q := lease.NewQueue()
	for i := int64(0); i < n; i++ {
		q.Add(i+1, 10_000+i) // one lease due per ms
	}
	cases := []struct {
		name string
		now  int64
		max  int
		want int
	}{
		{"due=0", 9_999, 0, 0},
		{"due=1", 10_000, 0, 1},
		{"due=1000", 10_999, 0, 1000},
		{"due=1000/limit=100", 10_999, 100, 100},
		{"due=100000", 109_999, 0, 100_000},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if got := q.Expired(tc.now, tc.max); len(got) != tc.want {
					b.Fatalf("Expired returned %d, want %d", len(got), tc.want)
				}
			}
			if tc.want > 0 {
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*tc.want), "ns/lease")
			}
		})
	}
}

// BenchmarkTableCloneRenew is the state machine's per-batch pattern on a
// table of 1M leases: clone, renew one lease (replace + requeue). Cost must
// be O(log n), independent of the table size apart from tree depth.
func BenchmarkTableCloneRenew(b *testing.B) {
	for _, n := range []int{1_000, 1_000_000} {
		b.Run(fmt.Sprintf("leases=%dk", n/1000), func(b *testing.B) {
			t := lease.NewTable()
			for i := 0; i < n; i++ {
				id := int64(i + 1)
				t.Put(&lease.Lease{ID: id, TTL: 10, Deadline: 10_000 + id})
				t.Attach(id, fmt.Sprintf("/svc/%d", id))
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				c := t.Clone()
				id := int64(i%n + 1)
				old, _ := c.Get(id)
				c.Put(&lease.Lease{ID: id, TTL: old.TTL, Deadline: old.Deadline + 1})
				t = c
			}
		})
	}
}

// BenchmarkTableRenewBatch is a keep-alive batch as the state machine
// applies it: clone a table of 10,000 leases, then renew 100 of them
// (Renew: look up, replace, requeue). Reported per renewal.
func BenchmarkTableRenewBatch(b *testing.B) {
	const n, batch = 10_000, 100
	t := lease.NewTable()
	for i := 0; i < n; i++ {
		id := int64(i + 1)
		t.Put(&lease.Lease{ID: id, TTL: 10, Deadline: 10_000 + id})
	}
	b.ReportAllocs()
	b.ResetTimer()
	next := int64(0)
	for i := 0; i < b.N; i += batch {
		c := t.Clone()
		for j := 0; j < batch; j++ {
			// A stride through the IDs: renewals land all over the table.
			next = (next + 7919) % n
			c.Renew(next+1, 0, func(old *lease.Lease) int64 { return old.Deadline + 1 })
		}
		t = c
	}
}

// BenchmarkTableExpire1000Of1M expires 1,000 leases with one key each from
// a table of 1M (Expired + Delete), on a clone, as a tick does.
func BenchmarkTableExpire1000Of1M(b *testing.B) {
	const n, due = 1_000_000, 1000
	t := lease.NewTable()
	for i := 0; i < n; i++ {
		id := int64(i + 1)
		t.Put(&lease.Lease{ID: id, TTL: 10, Deadline: id})
		t.Attach(id, fmt.Sprintf("/svc/%07d", id))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c := t.Clone() // t itself stays untouched: every op expires the same leases
		ids := c.Expired(due, 0)
		for _, id := range ids {
			c.Delete(id)
		}
		if len(ids) != due || c.Len() != n-due {
			b.Fatalf("expired %d, %d left", len(ids), c.Len())
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*due), "ns/lease")
}
