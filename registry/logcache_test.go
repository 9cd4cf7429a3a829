package registry

import (
	"bytes"
	"errors"
	"log/slog"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/rosterhq/roster/internal/boltmap"
)

func openLogStore(t *testing.T) *raftboltdb.BoltStore {
	t.Helper()
	s, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(t.TempDir(), "raft.db"), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func entry(i uint64, size int) *raft.Log {
	return &raft.Log{Index: i, Term: 1, Type: raft.LogCommand, Data: bytes.Repeat([]byte{byte(i)}, size)}
}

// The cache holds at most its byte budget, the newest entries first, and
// every entry still reads back (from the store when evicted).
func TestLogCacheBoundedInBytes(t *testing.T) {
	store := openLogStore(t)
	const size = 64 << 10
	c := newLogCache(store, 4096, 1<<20) // room for ~15 entries of 64 KiB
	for i := uint64(1); i <= 200; i++ {
		if err := c.StoreLogs([]*raft.Log{entry(i, size)}); err != nil {
			t.Fatal(err)
		}
		if c.bytes > c.maxBytes {
			t.Fatalf("after entry %d the cache holds %d bytes, over its budget of %d", i, c.bytes, c.maxBytes)
		}
	}
	if c.n == 0 || c.n > 16 || c.first+uint64(c.n) != 201 {
		t.Fatalf("cache holds %d entries from %d; want the newest few", c.n, c.first)
	}
	for _, i := range []uint64{1, 100, 199, 200} {
		var l raft.Log
		if err := c.GetLog(i, &l); err != nil || l.Index != i || !bytes.Equal(l.Data, entry(i, size).Data) {
			t.Fatalf("GetLog(%d): index %d, %d bytes, %v", i, l.Index, len(l.Data), err)
		}
	}
	// One entry larger than the budget is stored but not kept.
	if err := c.StoreLogs([]*raft.Log{entry(201, 2<<20)}); err != nil {
		t.Fatal(err)
	}
	if c.bytes > c.maxBytes {
		t.Fatalf("an oversized entry is held: %d bytes", c.bytes)
	}
}

// A rewritten tail or a compaction never leaves a stale entry in the
// cache: what GetLog returns is what the store holds.
func TestLogCacheFollowsRewrites(t *testing.T) {
	store := openLogStore(t)
	c := newLogCache(store, 8, 1<<20)
	for i := uint64(1); i <= 20; i++ {
		if err := c.StoreLog(entry(i, 10)); err != nil {
			t.Fatal(err)
		}
	}
	if c.n != 8 || c.first != 13 {
		t.Fatalf("count bound: %d entries from %d", c.n, c.first)
	}
	// raft truncates a conflicting tail, then appends the new entries.
	if err := c.DeleteRange(18, 20); err != nil {
		t.Fatal(err)
	}
	replaced := &raft.Log{Index: 18, Term: 2, Type: raft.LogCommand, Data: []byte("new")}
	if err := c.StoreLogs([]*raft.Log{replaced}); err != nil {
		t.Fatal(err)
	}
	var l raft.Log
	if err := c.GetLog(18, &l); err != nil || l.Term != 2 || string(l.Data) != "new" {
		t.Fatalf("GetLog(18) after the rewrite: %+v %v", l, err)
	}
	if err := c.GetLog(19, &l); !errors.Is(err, raft.ErrLogNotFound) {
		t.Fatalf("GetLog(19) after the truncation: %+v %v, want ErrLogNotFound", l, err)
	}
	// An append that does not follow the cached run resets it.
	if err := c.StoreLog(entry(30, 10)); err != nil {
		t.Fatal(err)
	}
	if c.n != 1 || c.first != 30 {
		t.Fatalf("after a gap: %d entries from %d", c.n, c.first)
	}
}

// Appends and compactions read the log file through bbolt's map; the cache
// releases those pages (every logReleaseBytes appended, and after each
// compaction), so the log does not stay in the process's resident set.
func TestLogPagesDoNotStayResident(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("/proc/self/smaps: Linux only")
	}
	store := openLogStore(t)
	db := boltmap.DB(store)
	c := newLogCache(store, 64, 1<<20)
	c.release = releaseLogPages(db, slog.New(slog.DiscardHandler))
	const entries, size, bound = 30_000, 1000, 4 << 20 // appends plus what the reads below touch
	batch := make([]*raft.Log, 0, 64)
	for i := uint64(1); i <= entries; i++ {
		batch = append(batch, entry(i, size))
		if len(batch) == cap(batch) || i == entries {
			if err := c.StoreLogs(batch); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
		if i%2000 == 0 {
			// Read old entries back from the store, as a lagging
			// follower's replication would.
			for j := i - 1999; j <= i-1000; j++ {
				var l raft.Log
				if err := c.GetLog(j, &l); err != nil || l.Index != j {
					t.Fatalf("GetLog(%d): %v", j, err)
				}
			}
		}
	}
	resident := func() int64 {
		n, err := boltmap.Resident(db.Path())
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := resident(); n > bound {
		t.Fatalf("after 30 MB of appends: %d bytes of the log resident, want at most %d", n, bound)
	}
	if err := c.DeleteRange(1, entries-100); err != nil {
		t.Fatal(err)
	}
	if n := resident(); n > 256<<10 {
		t.Fatalf("after a compaction: %d bytes of the log resident, want at most 256 KiB", n)
	}
	var l raft.Log
	if err := c.GetLog(entries, &l); err != nil || !bytes.Equal(l.Data, entry(entries, size).Data) {
		t.Fatalf("the newest entry after the compaction: %v", err)
	}
}
