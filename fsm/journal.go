package fsm

import (
	"encoding/binary"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/encoding/protowire"
)

// The journal keeps the checkpoint cheap when writes spread over many keys.
//
// Written in place, a checkpoint rewrites one bbolt leaf page (4 KiB) for
// nearly every changed record once the keys are random among many, plus
// the branch pages above them: under peerbench's put (random keys among
// 100,000) that was 18–25 % of each member's CPU, ten transactions a
// second of scattered page writes. So a checkpoint appends instead: the
// changed records, in their stored form as found in its State, go as one
// value into the journal bucket, in commit order, in the same transaction
// as the meta values. Once the journal would outgrow
// Config.JournalBytes, the checkpoint merges instead: it writes every
// record changed since the last merge in place (once, however often it
// changed in between), as found in its State, and empties the journal, in
// one transaction. Loading applies the journal over the buckets, so after
// every commit the file is still the state as of exactly its applied
// index, and a snapshot (a copy of the file) carries the journal with it.

var bucketJournal = []byte("journal")

// DefaultJournalBytes is Config.JournalBytes' default: at peerbench's put
// rate a merge every few seconds, and little to replay on a restart.
const DefaultJournalBytes = 16 << 20

// MaxJournalBytes is the largest Config.JournalBytes. One checkpoint's
// changes go into the journal as one bbolt value, which bbolt refuses
// beyond 2 GiB; with a bound above that, a burst of large values would
// make a checkpoint fail, stop the state machine, and fail again after
// every restart, since the first checkpoint then holds the whole replay.
const MaxJournalBytes = 1 << 30

// A journal value is a run of records, each: the kind (one byte), the
// record key (varint length, bytes), whether the record exists (one byte,
// 1 or 0) and, when it does, its stored form (varint length, bytes).

// journalBufs are an FSM's buffers for encoding journal values, reused
// from one checkpoint to the next (under ckptMu): a value is a few hundred
// KiB under load, and bbolt is done with it once its commit returns.
type journalBufs struct {
	out, scratch []byte
}

// keepJournalBuf is the largest encoding buffer kept for the next
// checkpoint: one that took a large batch of changes is let go.
const keepJournalBuf = 1 << 20

// encode encodes the records of c as found in s, in kind and key order
// (the bytes do not depend on map order). The result is valid until the
// next call. It gives up, returning nil, as soon as the value passes
// limit bytes: the checkpoint merges instead.
func (j *journalBufs) encode(s *State, c *changeSet, limit int) []byte {
	defer func() {
		if cap(j.out) > keepJournalBuf {
			j.out = nil
		}
	}()
	out := j.out[:0]
	for k := range recordKind(numKinds) {
		if c.count(k) == 0 {
			continue
		}
		spec := &kinds[k]
		for _, key := range c.sorted(k) {
			out = append(out, byte(k))
			out = protowire.AppendString(out, key)
			var ok bool
			if j.scratch, ok = spec.stored(j.scratch[:0], s, key); ok {
				out = append(out, 1)
				out = protowire.AppendBytes(out, j.scratch)
			} else {
				out = append(out, 0)
			}
			if len(out) > limit {
				j.out = out
				return nil
			}
		}
	}
	j.out = out
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for key := range m {
		keys = append(keys, key)
	}
	slices.Sort(keys)
	return keys
}

// journalRec is the last journalled version of a record: its stored form,
// or absent (deleted).
type journalRec struct {
	v  []byte // points into bbolt's map: valid inside its transaction only
	ok bool
}

// overlay is the journal read back: per kind, the last version of every
// record it holds, and the journal's size.
type overlay struct {
	recs  [numKinds]map[string]journalRec
	bytes int
}

// readJournal reads the journal of tx, in commit order: a later record
// replaces an earlier one of the same key.
func readJournal(tx *bolt.Tx) (*overlay, error) {
	o := &overlay{}
	b := tx.Bucket(bucketJournal)
	if b == nil {
		return nil, fmt.Errorf("missing %s bucket", bucketJournal)
	}
	err := b.ForEach(func(idx, v []byte) error {
		o.bytes += len(v)
		if err := o.add(v); err != nil {
			return fmt.Errorf("journal entry %x: %w", idx, err)
		}
		return nil
	})
	return o, err
}

func (o *overlay) add(v []byte) error {
	return eachRecord(v, func(k recordKind, key []byte, r journalRec) {
		if o.recs[k] == nil {
			o.recs[k] = map[string]journalRec{}
		}
		o.recs[k][string(key)] = r
	})
}

// eachRecord calls fn for every record of one journal value, in order.
func eachRecord(v []byte, fn func(k recordKind, key []byte, r journalRec)) error {
	for len(v) > 0 {
		k := recordKind(v[0])
		if k >= numKinds {
			return fmt.Errorf("unknown record kind %d", v[0])
		}
		key, n := protowire.ConsumeBytes(v[1:])
		if n < 0 || 1+n >= len(v) {
			return fmt.Errorf("corrupt %s record", kinds[k].name)
		}
		v = v[1+n:]
		var r journalRec
		switch v[0] {
		case 0:
			v = v[1:]
		case 1:
			stored, m := protowire.ConsumeBytes(v[1:])
			if m < 0 {
				return fmt.Errorf("corrupt %s record %q", kinds[k].name, key)
			}
			r = journalRec{v: stored, ok: true}
			v = v[1+m:]
		default:
			return fmt.Errorf("corrupt %s record %q", kinds[k].name, key)
		}
		fn(k, key, r)
	}
	return nil
}

// addJournalKeys adds to c every record the journal of tx holds: what a
// merge must write in place besides the checkpoint's own changes. The
// journal on disk is that list, so no copy of it is kept in memory; a
// merge reads it once instead of every append adding to a set.
func addJournalKeys(tx *bolt.Tx, c *changeSet) error {
	b := tx.Bucket(bucketJournal)
	if b == nil {
		return fmt.Errorf("missing %s bucket", bucketJournal)
	}
	return b.ForEach(func(idx, v []byte) error {
		var bad error
		err := eachRecord(v, func(k recordKind, key []byte, _ journalRec) {
			if bad == nil {
				bad = c.addRecord(k, key)
			}
		})
		if err == nil {
			err = bad
		}
		if err != nil {
			return fmt.Errorf("journal entry %x: %w", idx, err)
		}
		return nil
	})
}

// forEach calls fn for every record of kind k in key order: the bucket's
// records with the journal's versions laid over them (a record the journal
// deleted is skipped), so loaders still see sorted keys.
func (o *overlay) forEach(b *bolt.Bucket, k recordKind, fn func(k, v []byte) error) error {
	recs := o.recs[k]
	if len(recs) == 0 {
		return b.ForEach(fn)
	}
	keys := sortedKeys(recs)
	i := 0
	emit := func(key string) error {
		if r := recs[key]; r.ok {
			return fn([]byte(key), r.v)
		}
		return nil
	}
	err := b.ForEach(func(key, v []byte) error {
		for ; i < len(keys) && keys[i] < string(key); i++ {
			if err := emit(keys[i]); err != nil {
				return err
			}
		}
		if i < len(keys) && keys[i] == string(key) {
			i++
			return emit(string(key))
		}
		return fn(key, v)
	})
	if err != nil {
		return err
	}
	for ; i < len(keys); i++ {
		if err := emit(keys[i]); err != nil {
			return err
		}
	}
	return nil
}

// appendJournal adds one journal value under a key above every key the
// journal holds: commit order, and never a key already used.
func appendJournal(tx *bolt.Tx, v []byte) error {
	b := tx.Bucket(bucketJournal)
	if b == nil {
		return fmt.Errorf("missing %s bucket", bucketJournal)
	}
	next := uint64(1)
	if k, _ := b.Cursor().Last(); k != nil {
		if len(k) != 8 {
			return fmt.Errorf("journal entry key %x is not 8 bytes", k)
		}
		next = binary.BigEndian.Uint64(k) + 1
	}
	return b.Put(binary.BigEndian.AppendUint64(nil, next), v)
}

// clearJournal empties the journal: dropping the bucket frees its pages
// without visiting its records.
func clearJournal(tx *bolt.Tx) error {
	if err := tx.DeleteBucket(bucketJournal); err != nil {
		return err
	}
	_, err := tx.CreateBucket(bucketJournal)
	return err
}
