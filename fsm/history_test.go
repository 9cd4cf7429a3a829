package fsm_test

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/rosterhq/roster/fsm"
)

// newHistoryHarness is a harness whose FSM keeps at most events events and
// maxBytes bytes of history.
func newHistoryHarness(t *testing.T, events int, maxBytes int64) *harness {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state.db")
	f, err := fsm.Open(fsm.Config{Path: path, NoSync: true, WatchHistory: events, WatchHistoryBytes: maxBytes})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return &harness{tb: t, path: path, f: f, term: 1, log: map[uint64]*raft.Log{}}
}

// checkHistory asserts that the history holds exactly the revisions
// (oldest, last], in order, and that one before oldest is compacted.
func checkHistory(t *testing.T, h *fsm.History) (held int) {
	t.Helper()
	oldest, last := h.Oldest(), h.Last()
	evs, got, err := h.Since(oldest, 0, nil)
	if err != nil || got != last {
		t.Fatalf("Since(oldest %d) = last %d, %v; want last %d", oldest, got, err, last)
	}
	for i, ev := range evs {
		if ev.KV.ModRevision != oldest+1+int64(i) {
			t.Fatalf("event %d has revision %d, want %d", i, ev.KV.ModRevision, oldest+1+int64(i))
		}
	}
	if oldest > 0 {
		var ce *fsm.CompactedError
		if _, _, err := h.Since(oldest-1, 0, nil); !errors.As(err, &ce) || ce.Oldest != oldest {
			t.Fatalf("Since(%d) = %v, want compacted with oldest %d", oldest-1, err, oldest)
		}
	}
	return len(evs)
}

func TestHistoryBoundedByBytes(t *testing.T) {
	const limit = 64 << 10
	h := newHistoryHarness(t, 100_000, limit)
	value := strings.Repeat("v", 1<<10)
	for i := 0; i < 500; i++ {
		h.must(put(fmt.Sprintf("/k/%03d", i), value))
	}
	hist := h.f.History()
	if b := hist.Bytes(); b > limit || b <= 0 {
		t.Fatalf("history holds %d bytes, bound %d", b, limit)
	}
	held := checkHistory(t, hist)
	// About 1.1 KiB per event (key, value and the KV itself): well under
	// the 500 events put, and not far under what fits.
	if held >= 500 || held < limit/(2<<10) {
		t.Fatalf("history holds %d events of ~1 KiB under a %d-byte bound", held, limit)
	}
	if hist.Last() != 500 {
		t.Fatalf("last revision %d", hist.Last())
	}

	// Overwrites keep the previous value too: each event counts both, so
	// fewer of them fit.
	for i := 0; i < 500; i++ {
		h.must(put("/same", value))
	}
	if b := hist.Bytes(); b > limit {
		t.Fatalf("history holds %d bytes, bound %d", b, limit)
	}
	if again := checkHistory(t, hist); again >= held || again < held/3 {
		t.Fatalf("with previous values %d events fit, %d without", again, held)
	}
}

func TestHistoryKeepsTheNewestEventOverTheBound(t *testing.T) {
	h := newHistoryHarness(t, 100, 1<<10)
	h.must(put("/small", "x"))
	h.must(put("/big", strings.Repeat("b", 4<<10)))
	hist := h.f.History()
	if held := checkHistory(t, hist); held != 1 {
		t.Fatalf("history holds %d events, want only the newest", held)
	}
	evs, _, err := hist.Since(hist.Last()-1, 0, nil)
	if err != nil || len(evs) != 1 || evs[0].KV.Key != "/big" {
		t.Fatalf("newest event: %v %v", evs, err)
	}
	// The next small event lets the big one go.
	h.must(put("/small", "y"))
	if held := checkHistory(t, hist); held != 1 || hist.Bytes() > 1<<10 {
		t.Fatalf("history holds %d events, %d bytes", held, hist.Bytes())
	}
}

func TestHistoryBoundedByCount(t *testing.T) {
	h := newHistoryHarness(t, 10, 1<<30)
	for i := 0; i < 25; i++ {
		h.must(put(fmt.Sprintf("/c/%d", i), "v"))
	}
	hist := h.f.History()
	if held := checkHistory(t, hist); held != 10 {
		t.Fatalf("history holds %d events, want 10", held)
	}
	if hist.Oldest() != 15 {
		t.Fatalf("oldest %d, want 15", hist.Oldest())
	}
	// A prefix delete of many keys lands as many events in one batch.
	h.must(fsm.Delete{Key: "/c/", Prefix: true})
	if held := checkHistory(t, hist); held != 10 || hist.Last() != 50 {
		t.Fatalf("after a prefix delete: %d events, last %d", held, hist.Last())
	}
}

// TestHistorySinceTheLargestRevision: asking for the events after any
// revision at or past the newest answers none, the largest included
// (after+1 wrapped around to a negative slot and panicked: a watch with
// ?rev=9223372036854775807 answered 500).
func TestHistorySinceTheLargestRevision(t *testing.T) {
	h := newHistoryHarness(t, 10, 1<<30)
	h.must(put("/m/k", "v"))
	hist := h.f.History()
	for _, after := range []int64{hist.Last(), hist.Last() + 1, math.MaxInt64 - 1, math.MaxInt64} {
		evs, last, err := hist.Since(after, 0, nil)
		if len(evs) != 0 || last != hist.Last() || err != nil {
			t.Fatalf("Since(%d) = %d events, last %d, %v; want none, %d, nil", after, len(evs), last, err, hist.Last())
		}
	}
}
