package registry

import (
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"
	"github.com/rosterhq/roster/internal/boltmap"
	bolt "go.etcd.io/bbolt"
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
	// logReleaseBytes: after this much is appended (and after every
	// compaction) the store's mapped pages are released from the resident
	// set (release). An append reads the file's last leaf through bbolt's
	// map, a compaction every leaf it deletes; raft reads entries back from
	// this cache, not from those pages.
	logReleaseBytes = 1 << 20
)

type logCache struct {
	store    raft.LogStore
	maxBytes int
	// release, if set, drops the store's mapped pages (internal/boltmap).
	// It is called without mu held, from raft's append or compaction.
	release      func()
	sinceRelease atomic.Int64 // bytes appended since the last release

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

// releaseLogPages returns the cache's release hook for the log store's
// bbolt handle; nil, with a warning, if there is no handle to release.
// A failing release is logged once: it costs memory, not correctness.
func releaseLogPages(db *bolt.DB, log *slog.Logger) func() {
	if db == nil {
		log.Warn("raft log pages stay resident: no bbolt handle found in raft-boltdb's store")
		return nil
	}
	var warned atomic.Bool
	return func() {
		if err := boltmap.Release(db); err != nil && warned.CompareAndSwap(false, true) {
			log.Warn("raft log pages stay resident", "error", err)
		}
	}
}

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
	c.cache(logs)
	return nil
}

func (c *logCache) cache(logs []*raft.Log) {
	added := 0
	c.mu.Lock()
	defer func() {
		c.mu.Unlock()
		if c.release != nil && c.sinceRelease.Add(int64(added)) >= logReleaseBytes {
			c.sinceRelease.Store(0)
			c.release()
		}
	}()
	for _, l := range logs {
		added += logCost(l)
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
	err := c.store.DeleteRange(min, max)
	if c.release != nil {
		c.sinceRelease.Store(0)
		c.release()
	}
	return err
}
