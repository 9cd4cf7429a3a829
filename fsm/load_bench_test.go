package fsm_test

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"

	"github.com/rosterhq/roster/fsm"
)

// BenchmarkOpen measures loading a checkpoint of many keys (half of them
// attached to leases, one lease per key, as registrants do) into the
// in-memory index: the state machine's part of a restart.
//
//	go test -run '^$' -bench Open -benchtime 3x ./fsm/
//
// ROSTER_BENCH_KEYS sets the number of keys (default 1,000,000).
func BenchmarkOpen(b *testing.B) {
	keys := 1_000_000
	if v := os.Getenv("ROSTER_BENCH_KEYS"); v != "" {
		keys, _ = strconv.Atoi(v)
	}
	path := filepath.Join(b.TempDir(), "state.db")
	if keep := os.Getenv("ROSTER_BENCH_STATE"); keep != "" {
		// A state file kept from an earlier run (built when absent), to
		// profile the load without rebuilding.
		path = keep
		if _, err := os.Stat(path); err == nil {
			benchOpen(b, path, keys)
			return
		}
	}
	h := newHarnessAt(b, path)
	h.f.SetObserver(nil)
	val := make([]byte, 100)
	var cmds []fsm.Command
	for i := 0; i < keys; i++ {
		if i%2 == 0 {
			id := int64(i + 1)
			cmds = append(cmds, fsm.Grant{ID: id, TTL: 60}, fsm.Put{Key: fmt.Sprintf("/services/svc-%03d/node-%08d", i%500, i), Value: val, Lease: id})
		} else {
			cmds = append(cmds, fsm.Put{Key: fmt.Sprintf("/services/svc-%03d/node-%08d", i%500, i), Value: val})
		}
		if len(cmds) >= 10_000 {
			h.apply(cmds...)
			cmds = cmds[:0]
		}
	}
	h.apply(cmds...)
	h.checkpoint()
	if err := h.f.Close(); err != nil {
		b.Fatal(err)
	}
	benchOpen(b, path, keys)
}

func benchOpen(b *testing.B, path string, keys int) {
	runtime.GC()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f, err := fsm.Open(fsm.Config{Path: path, NoSync: true})
		if err != nil {
			b.Fatal(err)
		}
		if n := f.State().KeyCount(); n != keys {
			b.Fatalf("%d keys loaded, want %d", n, keys)
		}
		b.StopTimer()
		f.Close()
		runtime.GC()
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*keys), "ns/key")
}
