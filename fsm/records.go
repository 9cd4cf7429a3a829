package fsm

import (
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Every piece of replicated state is a record of some kind: a key in one
// bbolt bucket whose value is derived from the live State. Applying an
// entry marks the records it changed (batch.touch); a checkpoint writes the
// current value of every marked record (or deletes it when the State no
// longer has it) in one bbolt transaction with the applied index. Snapshots
// copy the bbolt file, so they carry every kind too.
//
// Adding replicated state = adding a kind here: a constant, a bucket, how
// to read one record's stored form from a State, and how to load a stored
// record back; then touch(kind, key) wherever apply changes such a record.
// Nothing else (checkpoint, snapshot, restore) needs to know.
type recordKind int

const (
	kindKV     recordKind = iota // user keys; record key = the key
	kindLease                    // leases; record key = 8-byte big-endian ID
	kindMember                   // member metadata; record key = member ID
	kindAuth                     // access control; record key = "r/"+role or "t/"+token ID
	numKinds
)

type kindSpec struct {
	name   string
	bucket []byte
	// stored appends the stored form of record key in s to dst; ok is
	// false when s has no such record (the checkpoint deletes it).
	stored func(dst []byte, s *State, key string) (v []byte, ok bool)
	// load adds one stored record to a State being rebuilt.
	load func(l *loader, k, v []byte) error
}

var kinds = [numKinds]kindSpec{
	kindKV: {
		name: "kv", bucket: []byte("kv"),
		stored: func(dst []byte, s *State, key string) ([]byte, bool) {
			kv, ok := s.Get(key)
			if !ok {
				return dst, false
			}
			return appendKV(dst, kv), true
		},
		load: (*loader).kv,
	},
	kindLease: {
		name: "lease", bucket: []byte("leases"),
		stored: func(dst []byte, s *State, key string) ([]byte, bool) {
			l, ok := s.leases.Get(int64(binary.BigEndian.Uint64([]byte(key))))
			if !ok {
				return dst, false
			}
			return appendLease(dst, l), true
		},
		load: (*loader).lease,
	},
	kindMember: {
		name: "member", bucket: []byte("members"),
		stored: func(dst []byte, s *State, key string) ([]byte, bool) {
			m, ok := s.Member(key)
			if !ok {
				return dst, false
			}
			return append(dst, Encode(SetMember{Member: m})...), true
		},
		load: (*loader).member,
	},
	kindAuth: {
		name: "auth", bucket: []byte("auth"),
		stored: storedAuth,
		load:   (*loader).auth,
	},
}

func leaseKey(id int64) string { return string(binary.BigEndian.AppendUint64(nil, uint64(id))) }

// changeSet names the records changed since some point, per kind.
type changeSet [numKinds]map[string]struct{}

func (c *changeSet) add(k recordKind, key string) {
	if c[k] == nil {
		c[k] = map[string]struct{}{}
	}
	c[k][key] = struct{}{}
}

// merge adds every record of o to c.
func (c *changeSet) merge(o *changeSet) {
	for k := range o {
		if len(o[k]) == 0 {
			continue
		}
		if c[k] == nil {
			c[k] = o[k]
			continue
		}
		for key := range o[k] {
			c[k][key] = struct{}{}
		}
	}
}

func (c *changeSet) len() int {
	n := 0
	for k := range c {
		n += len(c[k])
	}
	return n
}

// writeRecords writes the records of c as found in s, in tx.
func writeRecords(tx *bolt.Tx, s *State, c *changeSet) error {
	var buf []byte
	for k := range c {
		spec := &kinds[k]
		b := tx.Bucket(spec.bucket)
		// In key order: bbolt fills pages better and splits fewer, and the
		// transaction does not depend on map order.
		for _, key := range sortedKeys(c[k]) {
			// Keys and values go into one growing buffer: bbolt holds
			// each slice until the commit, and a slice of it stays valid
			// when append moves on to a larger array.
			start := len(buf)
			buf = append(buf, key...)
			bkey := buf[start:len(buf):len(buf)]
			var err error
			var ok bool
			if buf, ok = spec.stored(buf, s, key); ok {
				err = b.Put(bkey, buf[start+len(key):len(buf):len(buf)])
			} else {
				err = b.Delete(bkey)
			}
			if err != nil {
				return fmt.Errorf("%s %q: %w", spec.name, key, err)
			}
		}
	}
	return nil
}
