package boltmap

import (
	"reflect"
	"unsafe"

	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	bolt "go.etcd.io/bbolt"
)

// Release drops the process's mapping of db's file pages. It holds a read
// transaction meanwhile: bbolt remaps its file only under a lock that a
// read transaction shares, so the mapping cannot move or be closed while
// the pages are released. A closed db is not an error: there is nothing to
// release.
func Release(db *bolt.DB) error {
	if db == nil {
		return nil
	}
	err := db.View(func(tx *bolt.Tx) error {
		// tx.Size is the file's high-water mark as of this transaction:
		// never beyond the mapping, which bbolt sizes to at least the file.
		return release(db.Info().Data, tx.Size())
	})
	if err == bolt.ErrDatabaseNotOpen {
		return nil
	}
	return err
}

// DB returns the bbolt handle inside a raft-boltdb store, or nil if this
// version of raft-boltdb keeps it elsewhere. raft-boltdb does not export
// it; TestDBOfRaftStore fails if an upgrade moves it.
func DB(s *raftboltdb.BoltStore) *bolt.DB {
	if s == nil {
		return nil
	}
	v := reflect.ValueOf(s).Elem().FieldByName("conn")
	if !v.IsValid() || v.Type() != reflect.TypeOf((*bolt.DB)(nil)) {
		return nil
	}
	return *(**bolt.DB)(unsafe.Pointer(v.UnsafeAddr()))
}
