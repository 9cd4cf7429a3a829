package fsm

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
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
	free, err := freePages(fh, pageSize, size/pageSize)
	if err != nil {
		return err
	}
	return checkPageHeaders(fh, pageSize, size/pageSize, free)
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
// page (or run of overflow pages) to the next, and checks that each page
// in use says it is where it is and is of a known type: a page never
// written (zeroes) or written elsewhere does not. Free pages are skipped
// one by one: they may hold anything. A value of several pages, once
// freed, can have its first page reused alone, and the next page then
// holds the old value's bytes where a header would be; a live file being
// streamed also has its free pages rewritten under the copy.
func checkPageHeaders(r io.ReaderAt, pageSize, hwm int64, free map[int64]bool) error {
	var h [pageHeaderSize]byte
	for id := int64(0); id < hwm; {
		if free[id] {
			id++
			continue
		}
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

// bbolt's meta page, after the page header: magic u32, version u32, page
// size u32, flags u32, root bucket (root u64, sequence u64), freelist u64,
// high-water mark u64, txid u64, and an FNV-64a checksum of what precedes
// it.
const (
	metaMagic       = 0xED0CDAED
	metaVersion     = 2
	metaFreelistAt  = 32
	metaTxidAt      = 48
	metaChecksumAt  = 56
	metaSize        = 64
	noFreelist      = ^uint64(0)
	freelistMaxWord = 0xFFFF // a count this large is stored in the first id slot
)

// freePages reads the free list the valid meta page with the higher txid
// points to (bbolt's own choice) and returns its page ids below hwm. The
// state file always writes its free list; without one (NoFreelistSync)
// nothing is skipped. Read by hand, bounds-checked, rather than with
// bbolt's PreLoadFreelist and Tx.Page: bbolt reads a free list through
// its map without checking it, and rebuilds a missing one by walking the
// tree, and either can crash on the torn file this check exists to refuse.
func freePages(r io.ReaderAt, pageSize, hwm int64) (map[int64]bool, error) {
	var best []byte
	var bestTx uint64
	for id := int64(0); id < 2; id++ {
		m := make([]byte, metaSize)
		if _, err := r.ReadAt(m, id*pageSize+pageHeaderSize); err != nil {
			continue
		}
		if binary.NativeEndian.Uint32(m[0:]) != metaMagic || binary.NativeEndian.Uint32(m[4:]) != metaVersion {
			continue
		}
		sum := fnv.New64a()
		sum.Write(m[:metaChecksumAt])
		if sum.Sum64() != binary.NativeEndian.Uint64(m[metaChecksumAt:]) {
			continue
		}
		if tx := binary.NativeEndian.Uint64(m[metaTxidAt:]); best == nil || tx > bestTx {
			best, bestTx = m, tx
		}
	}
	if best == nil {
		return nil, fmt.Errorf("%w: no valid meta page", errBadSnapshot)
	}
	fl := binary.NativeEndian.Uint64(best[metaFreelistAt:])
	if fl == noFreelist {
		return nil, nil
	}
	if int64(fl) < 2 || int64(fl) >= hwm {
		return nil, fmt.Errorf("%w: the free list is at page %d, outside the file's %d pages", errBadSnapshot, fl, hwm)
	}
	var h [pageHeaderSize]byte
	if _, err := r.ReadAt(h[:], int64(fl)*pageSize); err != nil {
		return nil, fmt.Errorf("%w: free list: %v", errBadSnapshot, err)
	}
	overflow := int64(binary.NativeEndian.Uint32(h[12:]))
	if int64(binary.NativeEndian.Uint64(h[0:])) != int64(fl) || binary.NativeEndian.Uint16(h[8:]) != pageFlagFreelist || int64(fl)+1+overflow > hwm {
		return nil, fmt.Errorf("%w: the free list's page %d is torn", errBadSnapshot, fl)
	}
	body := make([]byte, (1+overflow)*pageSize-pageHeaderSize)
	if _, err := r.ReadAt(body, int64(fl)*pageSize+pageHeaderSize); err != nil {
		return nil, fmt.Errorf("%w: free list: %v", errBadSnapshot, err)
	}
	n := int64(binary.NativeEndian.Uint16(h[10:]))
	if n == freelistMaxWord {
		n = int64(binary.NativeEndian.Uint64(body))
		body = body[8:]
	}
	if n > int64(len(body))/8 {
		return nil, fmt.Errorf("%w: the free list says %d pages, its page holds %d", errBadSnapshot, n, len(body)/8)
	}
	free := make(map[int64]bool, n)
	for i := int64(0); i < n; i++ {
		if id := int64(binary.NativeEndian.Uint64(body[8*i:])); id >= 2 && id < hwm && id != int64(fl) {
			free[id] = true
		}
	}
	return free, nil
}
