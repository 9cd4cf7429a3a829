package boltmap_test

import (
	"bytes"
	"encoding/binary"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/rosterhq/roster/internal/boltmap"
	bolt "go.etcd.io/bbolt"
)

func skipUnlessLinux(t *testing.T) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("madvise and /proc/self/smaps: Linux only")
	}
}

var bucket = []byte("b")

func key(i int) []byte { return binary.BigEndian.AppendUint32(nil, uint32(i)) }

func value(i int) []byte { return bytes.Repeat([]byte{byte(i), byte(i >> 8)}, 200) }

// fill writes n keys of 400 bytes in transactions of 1,000.
func fill(t *testing.T, db *bolt.DB, from, n int) {
	t.Helper()
	for start := from; start < from+n; start += 1000 {
		err := db.Update(func(tx *bolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists(bucket)
			if err != nil {
				return err
			}
			for i := start; i < min(start+1000, from+n); i++ {
				if err := b.Put(key(i), value(i)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// readAll reads every key back through the map and checks its value.
func readAll(t *testing.T, db *bolt.DB, n int) {
	t.Helper()
	err := db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		for i := range n {
			if got := b.Get(key(i)); !bytes.Equal(got, value(i)) {
				t.Errorf("key %d: got %d bytes, not its value", i, len(got))
				return nil
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func resident(t *testing.T, path string) int64 {
	t.Helper()
	n, err := boltmap.Resident(path)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// openDB opens a new bbolt file in a test directory, closed at cleanup.
func openDB(t *testing.T) (*bolt.DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "x.db")
	db, err := bolt.Open(path, 0o600, &bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, path
}

// repeat calls fn until done is closed or fn returns false.
func repeat(done <-chan struct{}, fn func() bool) {
	for {
		select {
		case <-done:
			return
		default:
		}
		if !fn() {
			return
		}
	}
}

func TestReleaseDropsMappedPages(t *testing.T) {
	skipUnlessLinux(t)
	db, path := openDB(t)
	const n = 20_000 // about 8 MiB of values
	fill(t, db, 0, n)
	readAll(t, db, n)
	before := resident(t, path)
	if before < 4<<20 {
		t.Fatalf("reading 8 MiB through the map left only %d bytes resident: the measure is broken", before)
	}
	if err := boltmap.Release(db); err != nil {
		t.Fatal(err)
	}
	after := resident(t, path)
	t.Logf("resident: %d bytes before Release, %d after", before, after)
	if after > 64<<10 {
		t.Fatalf("%d bytes still resident after Release (%d before)", after, before)
	}
	// The data is still there, read through the map again.
	readAll(t, db, n)
	if again := resident(t, path); again < 4<<20 {
		t.Fatalf("reading again left %d bytes resident: the pages were not mapped back", again)
	}
}

// Release runs while writers grow the file (bbolt remaps it) and readers
// read it: nothing is lost or garbled, and the race detector stays quiet.
func TestReleaseWhileTheFileGrows(t *testing.T) {
	skipUnlessLinux(t)
	db, _ := openDB(t)
	const n = 30_000
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		repeat(done, func() bool {
			if err := boltmap.Release(db); err != nil {
				t.Error(err)
				return false
			}
			return true
		})
	}()
	go func() {
		defer wg.Done()
		repeat(done, func() bool {
			_ = db.View(func(tx *bolt.Tx) error {
				if b := tx.Bucket(bucket); b != nil {
					c := b.Cursor()
					for k, v := c.First(); k != nil; k, v = c.Next() {
						if i := int(binary.BigEndian.Uint32(k)); !bytes.Equal(v, value(i)) {
							t.Errorf("key %d garbled while releasing", i)
							return nil
						}
					}
				}
				return nil
			})
			return true
		})
	}()
	fill(t, db, 0, n)
	close(done)
	wg.Wait()
	readAll(t, db, n)
}

func TestReleaseClosedOrNil(t *testing.T) {
	if err := boltmap.Release(nil); err != nil {
		t.Fatalf("Release(nil) = %v", err)
	}
	db, err := bolt.Open(filepath.Join(t.TempDir(), "x.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := boltmap.Release(db); err != nil {
		t.Fatalf("Release of a closed db = %v, want nil", err)
	}
}

// DB finds the handle raft-boltdb keeps unexported; an upgrade that moves
// it fails here rather than leaving the log's pages resident unnoticed.
func TestDBOfRaftStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "raft.db")
	store, err := raftboltdb.New(raftboltdb.Options{Path: path, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	db := boltmap.DB(store)
	if db == nil {
		t.Fatal("no bbolt handle found in raft-boltdb's store")
	}
	if db.Path() != path {
		t.Fatalf("handle for %q, want %q", db.Path(), path)
	}
	if boltmap.DB(nil) != nil {
		t.Fatal("DB(nil) is not nil")
	}
}

func TestResidentOfUnmappedFile(t *testing.T) {
	skipUnlessLinux(t)
	n, err := boltmap.Resident(filepath.Join(t.TempDir(), "never-mapped"))
	if err != nil || n != 0 {
		t.Fatalf("Resident = %d, %v; want 0, nil", n, err)
	}
}
