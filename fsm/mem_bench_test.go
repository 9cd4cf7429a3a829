package fsm_test

import (
	"fmt"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/rosterhq/roster/fsm"
)

// BenchmarkMemoryPerLease grants 100,000 leases, each with one key holding
// a 200-byte value (peerbench's rss workload), through ApplyBatch in
// batches of 64 entries with the default watch history, checkpointing as
// the node does, and reports the live heap each lease adds (runtime
// MemStats after a GC) as bytes/lease.
//
//	go test -run '^$' -bench MemoryPerLease -benchtime 1x ./fsm/
func BenchmarkMemoryPerLease(b *testing.B) {
	const leases, batch = 100_000, 64
	value := make([]byte, 200)
	for i := 0; i < b.N; i++ {
		f, err := fsm.Open(fsm.Config{Path: filepath.Join(b.TempDir(), "state.db"), NoSync: true})
		if err != nil {
			b.Fatal(err)
		}
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		before := ms.HeapAlloc
		idx := uint64(0)
		logs := make([]*raft.Log, 0, batch)
		flush := func() {
			for _, r := range f.ApplyBatch(logs) {
				if err := r.(fsm.Result).Err; err != nil {
					b.Fatal(err)
				}
			}
			logs = logs[:0]
		}
		add := func(c fsm.Command) {
			idx++
			logs = append(logs, &raft.Log{Index: idx, Term: 1, Type: raft.LogCommand, Data: fsm.Encode(c)})
			if len(logs) == batch {
				flush()
			}
		}
		for n := 0; n < leases; n++ {
			id := int64(1_000_000 + n)
			add(fsm.Grant{ID: id, TTL: 600, SlackMs: 10})
			add(fsm.Put{Key: fmt.Sprintf("/services/svc-%d/inst-%d", n%100, n), Value: value, Lease: id})
			if n%5000 == 0 {
				if err := f.Checkpoint(); err != nil {
					b.Fatal(err)
				}
			}
		}
		flush()
		if err := f.Checkpoint(); err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(ms.HeapAlloc-before)/leases, "bytes/lease")
		b.ReportMetric(float64(ms.HeapInuse)/leases, "heap-inuse/lease")
		if f.State().LeaseCount() != leases {
			b.Fatal("leases missing")
		}
		f.Close()
	}
}
