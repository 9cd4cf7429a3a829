package fsm_test

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rosterhq/roster/fsm"
)

// TestSnapshotOfReusedFileRestores: a state file whose free pages hold
// stale data restores on the receiving side. A value of several pages,
// once freed, can have its first page reused alone; the pages after it
// keep the old value's bytes where a page header would be. Those pages
// are free, and the snapshot's check must not take them for a torn file:
// it did, and a follower then refused every snapshot of such a leader,
// forever. Values of all sizes are written, overwritten and deleted with
// checkpoints in between (journal merges free large journal values too),
// and each round's snapshot must restore to the same state.
func TestSnapshotOfReusedFileRestores(t *testing.T) {
	for _, journal := range []int{0, 64 << 10} {
		t.Run(fmt.Sprintf("journal=%d", journal), func(t *testing.T) {
			src := newHarnessJournal(t, filepath.Join(t.TempDir(), "src.db"), journal)
			rng := rand.New(rand.NewSource(1))
			for round := 0; round < 40; round++ {
				for i := 0; i < 30; i++ {
					key := fmt.Sprintf("/k/%02d", rng.Intn(40))
					if rng.Intn(4) == 0 {
						src.must(fsm.Delete{Key: key})
						continue
					}
					size := 10 + rng.Intn(3)*rng.Intn(12_000)
					src.must(fsm.Put{Key: key, Value: make([]byte, size)})
				}
				src.checkpoint()
				data := snapshotBytes(t, src.f)
				dst := newHarness(t)
				if err := dst.restore(data); err != nil {
					t.Fatalf("round %d: restore: %v", round, err)
				}
				sameDump(t, fmt.Sprintf("round %d", round), dump(src.state()), dump(dst.state()))
			}
		})
	}
}

// TestSnapshotWithTornPageInUseRefused: skipping free pages must not let a
// torn page in use through. The snapshot's root bucket page is zeroed and
// the frame's checksum recomputed, as a sender streaming a torn file would
// produce; the restore must refuse it and keep the state.
func TestSnapshotWithTornPageInUseRefused(t *testing.T) {
	src := newHarness(t)
	for i := 0; i < 300; i++ {
		src.must(fsm.Put{Key: fmt.Sprintf("/k/%03d", i), Value: make([]byte, 100+i*40)})
	}
	src.checkpoint()
	data := snapshotBytes(t, src.f)
	const frame = 8 + 4 + 8 // magic, version, length
	body := append([]byte(nil), data[frame:len(data)-sha256.Size]...)
	const pageSize = 4096
	// The root bucket's page, from meta page 0 (page header 16 bytes, then
	// magic, version, page size, flags, and the root page id).
	root := binary.NativeEndian.Uint64(body[16+16:])
	if root < 2 || int(root+1)*pageSize > len(body) {
		t.Fatalf("root page %d outside the %d-byte file", root, len(body))
	}
	clear(body[root*pageSize : (root+1)*pageSize])
	sum := sha256.Sum256(body)
	torn := append(append(append([]byte(nil), data[:frame]...), body...), sum[:]...)

	dst := newHarness(t)
	dst.must(put("/keep", "me"))
	want := dump(dst.state())
	err := dst.restore(torn)
	if err == nil || !strings.Contains(err.Error(), "torn") {
		t.Fatalf("restore of a snapshot with its root page zeroed: %v, want a torn page refused", err)
	}
	sameDump(t, "after the refused restore", want, dump(dst.state()))
}
