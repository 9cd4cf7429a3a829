package fsm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/encoding/protowire"
)

// These tests look inside the state file; the checkpoint's behaviour as
// seen from outside (restart, replay, snapshots, every journal mode) is in
// checkpoint_test.go.

type journalFile struct {
	t   *testing.T
	f   *FSM
	idx uint64
}

func openJournalFile(t *testing.T, path string, journal int) *journalFile {
	t.Helper()
	f, err := Open(Config{Path: path, NoSync: true, JournalBytes: journal})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return &journalFile{t: t, f: f, idx: f.State().AppliedIndex()}
}

func (j *journalFile) apply(c Command) {
	j.t.Helper()
	j.idx++
	r := j.f.Apply(&raft.Log{Index: j.idx, Term: 1, Type: raft.LogCommand, Data: Encode(c)}).(Result)
	if r.Err != nil {
		j.t.Fatalf("apply %T: %v", c, r.Err)
	}
	if err := j.f.Checkpoint(); err != nil {
		j.t.Fatal(err)
	}
}

// contents returns the journal's size and the number of values in the kv
// bucket, read from the file.
func (j *journalFile) contents() (journal, kvs int) {
	j.t.Helper()
	err := j.f.db.View(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketJournal).ForEach(func(_, v []byte) error { journal += len(v); return nil }); err != nil {
			return err
		}
		kvs = tx.Bucket(kinds[kindKV].bucket).Stats().KeyN
		return nil
	})
	if err != nil {
		j.t.Fatal(err)
	}
	return journal, kvs
}

// TestJournalStaysWithinItsBound: checkpoints append until the next would
// pass JournalBytes; that one merges, writing every record changed since
// the last merge in place and emptying the journal.
func TestJournalStaysWithinItsBound(t *testing.T) {
	const bound = 4096
	j := openJournalFile(t, filepath.Join(t.TempDir(), "state.db"), bound)
	value := strings.Repeat("v", 100)
	merges := 0
	for i := 0; i < 200; i++ {
		j.apply(Put{Key: fmt.Sprintf("/k/%03d", i%70), Value: []byte(value)})
		size, kvs := j.contents()
		if size > bound {
			t.Fatalf("after put %d the journal holds %d bytes, bound %d", i, size, bound)
		}
		if m := int(j.f.Merges()); m != merges {
			merges = m
			if size != 0 {
				t.Fatalf("a merge left %d bytes in the journal", size)
			}
			if want := min(i+1, 70); kvs != want {
				t.Fatalf("after a merge at put %d the kv bucket holds %d records, want %d", i, kvs, want)
			}
		} else if size == 0 {
			t.Fatalf("put %d: an append left the journal empty", i)
		}
	}
	if merges < 3 {
		t.Fatalf("%d merges in 200 puts of ~110 bytes with a %d-byte journal", merges, bound)
	}
}

// TestJournalOff: with a negative bound every checkpoint writes in place,
// and a journal left by an earlier run is merged by the first one.
func TestJournalOff(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	j := openJournalFile(t, path, 0)
	j.apply(Put{Key: "/a", Value: []byte("1")})
	j.apply(Put{Key: "/b", Value: []byte("2")})
	if size, kvs := j.contents(); size == 0 || kvs != 0 {
		t.Fatalf("default journal: %d journal bytes and %d kvs in place, want a journal only", size, kvs)
	}
	idx := j.idx
	j.f.Close()

	j = openJournalFile(t, path, -1)
	j.idx = idx
	j.apply(Delete{Key: "/a"})
	if size, kvs := j.contents(); size != 0 || kvs != 1 {
		t.Fatalf("journal off: %d journal bytes and %d kvs in place, want none and 1", size, kvs)
	}
	if _, ok := j.f.State().Get("/b"); !ok {
		t.Fatal("/b is gone")
	}
}

// TestStoreFormat: a format 1 file (no journal bucket) opens and becomes
// format 2; a format from the future is refused with a clear error.
func TestStoreFormat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	j := openJournalFile(t, path, -1)
	j.apply(Put{Key: "/a", Value: []byte("1")})
	j.f.Close()
	rewrite := func(format uint64, dropJournal bool) {
		t.Helper()
		db, err := bolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		err = db.Update(func(tx *bolt.Tx) error {
			if dropJournal {
				if err := tx.DeleteBucket(bucketJournal); err != nil {
					return err
				}
			}
			return tx.Bucket(bucketMeta).Put(metaFormat, u64(format))
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	rewrite(1, true)
	j = openJournalFile(t, path, 0)
	if kv, ok := j.f.State().Get("/a"); !ok || string(kv.Value) != "1" {
		t.Fatalf("format 1 file: /a = %v, %v", kv, ok)
	}
	var format []byte
	if err := j.f.db.View(func(tx *bolt.Tx) error {
		format = bytes.Clone(tx.Bucket(bucketMeta).Get(metaFormat))
		if tx.Bucket(bucketJournal) == nil {
			return fmt.Errorf("no journal bucket")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if binary.BigEndian.Uint64(format) != storeFormat {
		t.Fatalf("format %x after opening a format 1 file", format)
	}
	j.f.Close()

	rewrite(storeFormat+1, false)
	if f, err := Open(Config{Path: path, NoSync: true}); err == nil {
		f.Close()
		t.Fatal("a file of a newer format opened")
	} else if !strings.Contains(err.Error(), "unsupported store format") {
		t.Fatalf("newer format: %v", err)
	}
}

// TestCorruptJournalRefused: a journal value that does not decode fails
// Open with an error naming it; it is never half loaded.
func TestCorruptJournalRefused(t *testing.T) {
	for _, bad := range [][]byte{
		{byte(numKinds)},                   // unknown kind
		{byte(kindKV), 5, 'a'},             // key longer than the value
		{byte(kindKV), 1, 'a'},             // no presence byte
		{byte(kindKV), 1, 'a', 2},          // presence neither 0 nor 1
		{byte(kindKV), 1, 'a', 1, 9, 1, 2}, // stored form cut short
	} {
		path := filepath.Join(t.TempDir(), "state.db")
		j := openJournalFile(t, path, 0)
		j.apply(Put{Key: "/a", Value: []byte("1")})
		if err := j.f.db.Update(func(tx *bolt.Tx) error { return appendJournal(tx, bad) }); err != nil {
			t.Fatal(err)
		}
		j.f.Close()
		f, err := Open(Config{Path: path, NoSync: true})
		if err == nil {
			f.Close()
			t.Fatalf("journal value %x loaded", bad)
		}
		if !strings.Contains(err.Error(), "journal entry") {
			t.Fatalf("journal value %x: %v", bad, err)
		}
	}
}

// FuzzJournalValue: decoding any journal value returns an error or
// records; it never panics, and what it accepts re-encodes to a value
// that decodes to the same records.
func FuzzJournalValue(f *testing.F) {
	f.Add([]byte{byte(kindKV), 1, 'a', 1, 2, 'x', 'y', byte(kindLease), 8, 0, 0, 0, 0, 0, 0, 0, 7, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, v []byte) {
		o := &overlay{}
		if err := o.add(v); err != nil {
			return
		}
		var again []byte
		for k := range o.recs {
			for _, key := range sortedKeys(o.recs[k]) {
				r := o.recs[k][key]
				again = protowire.AppendString(append(again, byte(k)), key)
				if r.ok {
					again = protowire.AppendBytes(append(again, 1), r.v)
				} else {
					again = append(again, 0)
				}
			}
		}
		o2 := &overlay{}
		if err := o2.add(again); err != nil {
			t.Fatalf("re-encoded %x: %v", again, err)
		}
		if fmt.Sprint(o.recs) != fmt.Sprint(o2.recs) {
			t.Fatalf("decoded %v, re-encoded and decoded %v", o.recs, o2.recs)
		}
	})
}

// TestJournalBoundAboveBboltsValueLimitRefused: a checkpoint's changes go
// into the journal as one bbolt value, which bbolt refuses beyond 2 GiB, so
// a bound that lets a value grow that far is refused at Open (it used to
// be taken, and a burst of large values then stopped the state machine at
// every checkpoint, after every restart too).
func TestJournalBoundAboveBboltsValueLimitRefused(t *testing.T) {
	dir := t.TempDir()
	if f, err := Open(Config{Path: filepath.Join(dir, "a.db"), NoSync: true, JournalBytes: MaxJournalBytes + 1}); err == nil {
		f.Close()
		t.Fatalf("a journal bound of %d bytes was taken", MaxJournalBytes+1)
	} else if !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("refused with %v, want ErrInvalidArgument", err)
	}
	f, err := Open(Config{Path: filepath.Join(dir, "b.db"), NoSync: true, JournalBytes: MaxJournalBytes})
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
}
