package fsm

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
)

// checkSnapshotState refuses the state file of a snapshot that is not
// whole: shorter than its own metadata says, or with a page that is not
// where it says it is (a torn file: pages never written, zeroes). The
// frame's checksum proves the stream is the one the sender wrote; this
// proves that what the sender streamed was a whole state file, since a
// torn or truncated one checksums as well as any. bbolt trusts its file:
// opened for writing, such a file makes it panic while it rebuilds its
// free list, or fault, instead of failing, and the member would die
// installing the snapshot.
//
// Garbage inside a page is beyond this check (and beyond bbolt's own
// Check, which faults on it too): the checksum keeps a corrupted stream
// away, and a sender whose own file holds garbage is already broken.
func checkSnapshotState(path string) error {
	fh, err := os.Open(path)
	if err != nil {
		return err
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return err
	}
	// Read-only, bbolt reads only the meta pages and picks the valid one.
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		return fmt.Errorf("%w: state: %v", errBadSnapshot, err)
	}
	defer db.Close()
	tx, err := db.Begin(false)
	if err != nil {
		return fmt.Errorf("%w: state: %v", errBadSnapshot, err)
	}
	defer tx.Rollback()
	pageSize := int64(db.Info().PageSize)
	size := tx.Size() // the high-water mark: pages in use times the page size
	if fi.Size() < size {
		return fmt.Errorf("%w: the state file is %d bytes, its pages need %d", errBadSnapshot, fi.Size(), size)
	}
	return checkPageHeaders(fh, pageSize, size/pageSize)
}

// bbolt's page header: id u64, flags u16, count u16, overflow u32, in the
// host's byte order; and the page types.
const (
	pageHeaderSize    = 16
	pageFlagBranch    = 0x01
	pageFlagLeaf      = 0x02
	pageFlagMeta      = 0x04
	pageFlagFreelist  = 0x10
	pageFlagsKnownAll = pageFlagBranch | pageFlagLeaf | pageFlagMeta | pageFlagFreelist
)

// checkPageHeaders walks the pages below the high-water mark hwm, from one
// page (or run of overflow pages) to the next, and checks that each says
// it is where it is and is of a known type. Freed pages keep the header
// they were written with, so a whole file passes; a page never written
// (zeroes) or written elsewhere does not.
func checkPageHeaders(r io.ReaderAt, pageSize, hwm int64) error {
	var h [pageHeaderSize]byte
	for id := int64(0); id < hwm; {
		if _, err := r.ReadAt(h[:], id*pageSize); err != nil {
			return fmt.Errorf("%w: page %d: %v", errBadSnapshot, id, err)
		}
		got := int64(binary.NativeEndian.Uint64(h[0:]))
		flags := binary.NativeEndian.Uint16(h[8:])
		overflow := int64(binary.NativeEndian.Uint32(h[12:]))
		if got != id || flags == 0 || flags&^pageFlagsKnownAll != 0 {
			return fmt.Errorf("%w: page %d is torn (it says page %d, flags %#x)", errBadSnapshot, id, got, flags)
		}
		id += 1 + overflow
	}
	return nil
}
