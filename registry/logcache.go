package registry

import (
	"sync"

	"github.com/hashicorp/raft"
)

// Recent log entries are served from memory: replication to followers and
// the apply path read back what was just appended. raft.LogCache bounds
// its ring by entries only, so 4,096 entries of 1 MiB values would hold
// 4 GiB; this cache holds consecutive entries bounded by count and bytes,
// the oldest going first.
const (
	logCacheEntries = 4096
	logCacheBytes   = 64 << 20
	// logOverhead is what an entry costs besides its data (the Log struct,
	// the pointer in the ring), roughly.
	logOverhead = 128
)

type logCache struct {
	store    raft.LogStore
	maxBytes int

	mu    sync.RWMutex
	ring  []*raft.Log // entry i at ring[i % len(ring)]
	first uint64      // index of the oldest cached entry, when n > 0
	n     int         // entries cached: first .. first+n-1
	bytes int
}

func newLogCache(store raft.LogStore, entries, maxBytes int) *logCache {
	return &logCache{store: store, maxBytes: maxBytes, ring: make([]*raft.Log, entries)}
}

var _ raft.LogStore = (*logCache)(nil)

func logCost(l *raft.Log) int { return len(l.Data) + len(l.Extensions) + logOverhead }

// IsMonotonic passes the store's answer on (raft.MonotonicLogStore).
func (c *logCache) IsMonotonic() bool {
	m, ok := c.store.(raft.MonotonicLogStore)
	return ok && m.IsMonotonic()
}

func (c *logCache) GetLog(idx uint64, log *raft.Log) error {
	c.mu.RLock()
	if c.n > 0 && idx >= c.first && idx-c.first < uint64(c.n) {
		*log = *c.ring[idx%uint64(len(c.ring))]
		c.mu.RUnlock()
		return nil
	}
	c.mu.RUnlock()
	return c.store.GetLog(idx, log)
}

func (c *logCache) StoreLog(log *raft.Log) error { return c.StoreLogs([]*raft.Log{log}) }

// StoreLogs stores durably first and caches only on success.
func (c *logCache) StoreLogs(logs []*raft.Log) error {
	if err := c.store.StoreLogs(logs); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, l := range logs {
		if c.n > 0 && l.Index != c.first+uint64(c.n) {
			c.reset() // not the next entry (raft rewrote the tail)
		}
		if c.n == 0 {
			c.first = l.Index
		}
		if c.n == len(c.ring) {
			c.evictOldest()
		}
		c.ring[l.Index%uint64(len(c.ring))] = l
		c.n++
		c.bytes += logCost(l)
		for c.bytes > c.maxBytes && c.n > 0 {
			c.evictOldest()
		}
	}
	return nil
}

func (c *logCache) evictOldest() {
	slot := c.first % uint64(len(c.ring))
	c.bytes -= logCost(c.ring[slot])
	c.ring[slot] = nil
	c.first++
	c.n--
}

func (c *logCache) reset() {
	clear(c.ring)
	c.n, c.bytes = 0, 0
}

func (c *logCache) FirstIndex() (uint64, error) { return c.store.FirstIndex() }
func (c *logCache) LastIndex() (uint64, error)  { return c.store.LastIndex() }

// DeleteRange forgets the whole cache, as raft.LogCache does: deletes are
// rare (compaction, a rewritten tail).
func (c *logCache) DeleteRange(min, max uint64) error {
	c.mu.Lock()
	c.reset()
	c.mu.Unlock()
	return c.store.DeleteRange(min, max)
}
