package fsm

import (
	"errors"
	"fmt"
	"sync"
)

// Defaults of the history's two bounds: events, and bytes of the keys and
// values (current and previous) those events hold.
const (
	DefaultWatchHistory      = 100_000
	DefaultWatchHistoryBytes = 64 << 20
)

// kvOverhead approximates what a KV costs beyond its key and value bytes
// (the struct, rounded up to its allocation size class).
const kvOverhead = 80

// ErrCompacted: the events after the requested revision are no longer in
// the history; the caller must re-read the state and watch from there.
var ErrCompacted = errors.New("revision compacted")

// CompactedError carries the oldest revision still available;
// errors.Is(err, ErrCompacted) holds.
type CompactedError struct {
	// Oldest is the smallest revision a watch may resume after.
	Oldest int64
}

func (e *CompactedError) Error() string {
	return fmt.Sprintf("revision compacted: the history starts after revision %d", e.Oldest)
}

// Is makes errors.Is(err, ErrCompacted) true.
func (e *CompactedError) Is(target error) bool { return target == ErrCompacted }

// History is the bounded in-memory log of recent events that watches and
// blocking reads follow. Every revision is exactly one event (one changed
// key), so revision r sits at a fixed offset in the ring: lookups are O(1).
//
// It is bounded twice: by a number of events (the ring's size) and by the
// bytes those events hold. Each event keeps its KV and the previous one, so
// with 1 MiB values a count alone would let 100,000 events pin 200 GiB; the
// byte bound drops the oldest events first, keeping at least the newest.
//
// The apply path only appends (O(events), never waiting on readers); each
// reader pulls at its own pace and all of them wake on one broadcast, so a
// slow reader can neither block the state machine nor other readers.
type History struct {
	mu       sync.RWMutex
	ring     []Event
	maxBytes int64
	bytes    int64 // eventBytes of the events held
	last     int64 // revision of the newest event (or the state's revision)
	n        int   // events held; the oldest has revision last-n+1
	notify   chan struct{}
}

// NewHistory returns an empty history of at most capacity events and
// maxBytes bytes (zero or less: the defaults) whose next event will have
// revision rev+1.
func NewHistory(capacity int, maxBytes int64, rev int64) *History {
	if capacity <= 0 {
		capacity = DefaultWatchHistory
	}
	if maxBytes <= 0 {
		maxBytes = DefaultWatchHistoryBytes
	}
	return &History{ring: make([]Event, capacity), maxBytes: maxBytes, last: rev, notify: make(chan struct{})}
}

// eventBytes is what an event counts against the byte bound: its keys and
// values plus a fixed overhead per KV. Keys and values shared with the live
// state are counted too: they stay pinned once the key changes again.
func eventBytes(ev Event) int64 {
	n := int64(0)
	for _, kv := range [2]*KV{ev.KV, ev.Prev} {
		if kv != nil {
			n += kvOverhead + int64(len(kv.Key)+len(kv.Value))
		}
	}
	return n
}

func (h *History) slot(rev int64) int { return int(rev % int64(len(h.ring))) }

// append adds events with consecutive revisions after the last one. Events
// that do not follow on (which would be a bug) reset the history instead of
// corrupting it.
func (h *History) append(events []Event) {
	if len(events) == 0 {
		return
	}
	h.mu.Lock()
	for _, ev := range events {
		rev := ev.KV.ModRevision
		if rev != h.last+1 {
			h.forget()
		}
		if h.n == len(h.ring) {
			h.dropOldest() // its slot is the one rev takes
		}
		h.ring[h.slot(rev)] = ev
		h.bytes += eventBytes(ev)
		h.last = rev
		h.n++
		for h.bytes > h.maxBytes && h.n > 1 {
			h.dropOldest()
		}
	}
	ch := h.notify
	h.notify = make(chan struct{})
	h.mu.Unlock()
	close(ch)
}

// reset forgets every event (after a snapshot was restored: the events
// between the old and the new state are unknown); the next event will have
// revision rev+1.
func (h *History) reset(rev int64) {
	h.mu.Lock()
	h.forget()
	h.last = rev
	ch := h.notify
	h.notify = make(chan struct{})
	h.mu.Unlock()
	close(ch)
}

// dropOldest forgets the oldest event held (mu held, n > 0), releasing what
// it pins.
func (h *History) dropOldest() {
	i := h.slot(h.last - int64(h.n) + 1)
	h.bytes -= eventBytes(h.ring[i])
	h.ring[i] = Event{}
	h.n--
}

// forget drops every event (mu held).
func (h *History) forget() {
	clear(h.ring)
	h.n, h.bytes = 0, 0
}

// Bytes is what the events held count against the byte bound.
func (h *History) Bytes() int64 {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.bytes
}

// Wait returns a channel closed at the next change of the history.
func (h *History) Wait() <-chan struct{} {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.notify
}

// Last is the revision of the newest event.
func (h *History) Last() int64 {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.last
}

// Oldest is the smallest revision a reader may resume after: the events
// with revisions above it are all held.
func (h *History) Oldest() int64 {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.last - int64(h.n)
}

// Since appends to dst the events with revision > after, at most max of
// them (max <= 0: all held), and returns it with the newest revision known.
// It fails with a *CompactedError when events after `after` were dropped.
func (h *History) Since(after int64, max int, dst []Event) ([]Event, int64, error) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	oldest := h.last - int64(h.n)
	if after < oldest {
		return dst, h.last, &CompactedError{Oldest: oldest}
	}
	if after >= h.last {
		// Nothing after it yet; and for the largest revision, after+1
		// would wrap around to a negative slot.
		return dst, h.last, nil
	}
	for rev := after + 1; rev <= h.last; rev++ {
		if max > 0 && len(dst) >= max {
			break
		}
		dst = append(dst, h.ring[h.slot(rev)])
	}
	return dst, h.last, nil
}
