package fsm_test

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/rosterhq/roster/fsm"
)

// bytesPerTick is what one ApplyBatch of a tick that expires nothing
// allocates, on average over n ticks.
func bytesPerTick(h *harness, n int) uint64 {
	ls := make([][]*raft.Log, n)
	for i := range ls {
		ls[i] = h.logs(fsm.Tick{ElapsedMs: 1})
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for _, l := range ls {
		h.f.ApplyBatch(l)
	}
	runtime.ReadMemStats(&after)
	return (after.TotalAlloc - before.TotalAlloc) / uint64(n)
}

// withFreePages gives the bbolt file about `pages` free pages, as churn
// (expired leases, deleted keys) leaves in a long-running store.
func withFreePages(t *testing.T, pages int) *harness {
	h := newHarness(t)
	h.f.SetObserver(nil)
	value := make([]byte, 3*4096) // an overflow value: 4 pages each
	var puts, dels []fsm.Command
	for i := 0; i < pages/4; i++ {
		key := fmt.Sprintf("/churn/%06d", i)
		puts = append(puts, fsm.Put{Key: key, Value: value})
		dels = append(dels, fsm.Delete{Key: key})
	}
	h.apply(puts...)
	h.apply(dels...)
	return h
}

// TestTickCostIndependentOfStoreSize: DESIGN.md says a tick costs in
// proportion to the leases it expires, never to what the store holds. A
// tick that expires nothing commits a bbolt transaction; with bbolt's
// default array freelist, every commit re-merges the whole free-page list
// into a new slice (and every page allocation shifts it), so the cost of an
// empty tick grows with the number of free pages, i.e. with the store's
// size and history (BenchmarkTick1MLeases: 34 µs and 30 KB per empty tick
// at 100k leases, 200 µs and 156 KB at 1M). The hashmap freelist does not.
func TestTickCostIndependentOfStoreSize(t *testing.T) {
	small := bytesPerTick(withFreePages(t, 400), 200)
	large := bytesPerTick(withFreePages(t, 16_000), 200)
	t.Logf("bytes allocated per empty tick: %d with ~400 free pages, %d with ~16,000", small, large)
	if large > 2*small {
		t.Fatalf("an empty tick allocates %d bytes with ~16,000 free bbolt pages but %d with ~400: its cost grows with the store", large, small)
	}
}
