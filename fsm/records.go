package fsm

import (
	"encoding/binary"
	"fmt"
	"slices"

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
// record back; then touch(kind, key) wherever apply changes such a record
// (leases, which a keep-alive marks by the thousand, go by ID: touchLease).
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

// changeSet names the records changed since some point, per kind. Leases
// are held by ID, not by record key: a keep-alive batch marks thousands,
// and an int64 set needs no string and a cheaper hash per mark; the
// 8-byte keys are made once per checkpoint instead.
type changeSet struct {
	keys   [numKinds]map[string]struct{} // every kind but kindLease
	leases map[int64]struct{}
}

// addKey adds record key of kind k, which is not kindLease (addLease).
func (c *changeSet) addKey(k recordKind, key string) {
	if c.keys[k] == nil {
		c.keys[k] = map[string]struct{}{}
	}
	c.keys[k][key] = struct{}{}
}

func (c *changeSet) addLease(id int64) {
	if c.leases == nil {
		c.leases = map[int64]struct{}{}
	}
	c.leases[id] = struct{}{}
}

// addRecord adds a record named as it is stored: a lease by its 8-byte
// big-endian ID. A key already in c costs no string.
func (c *changeSet) addRecord(k recordKind, key []byte) error {
	if k != kindLease {
		if _, ok := c.keys[k][string(key)]; !ok {
			c.addKey(k, string(key))
		}
		return nil
	}
	if len(key) != 8 {
		return fmt.Errorf("lease record key of %d bytes", len(key))
	}
	c.addLease(int64(binary.BigEndian.Uint64(key)))
	return nil
}

// addTouched adds the records a batch marked.
func (c *changeSet) addTouched(ts []touched) {
	for _, t := range ts {
		if t.kind == kindLease {
			c.addLease(t.id)
		} else {
			c.addKey(t.kind, t.key)
		}
	}
}

func (c *changeSet) len() int {
	n := len(c.leases)
	for k := range c.keys {
		n += len(c.keys[k])
	}
	return n
}

// count is the number of records of kind k.
func (c *changeSet) count(k recordKind) int {
	if k == kindLease {
		return len(c.leases)
	}
	return len(c.keys[k])
}

// sorted lists the record keys of kind k in byte order, the order bbolt
// stores them in (the bytes written never depend on map order).
func (c *changeSet) sorted(k recordKind) []string {
	if k != kindLease {
		return sortedKeys(c.keys[k])
	}
	ids := make([]uint64, 0, len(c.leases))
	for id := range c.leases {
		ids = append(ids, uint64(id))
	}
	// Unsigned: the order of the big-endian keys.
	slices.Sort(ids)
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = leaseKey(int64(id))
	}
	return keys
}

// writeRecords writes the records of c as found in s, in tx.
func writeRecords(tx *bolt.Tx, s *State, c *changeSet) error {
	var buf []byte
	for k := range recordKind(numKinds) {
		if c.count(k) == 0 {
			continue
		}
		spec := &kinds[k]
		b := tx.Bucket(spec.bucket)
		// In key order: bbolt fills pages better and splits fewer, and the
		// transaction does not depend on map order.
		for _, key := range c.sorted(k) {
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
