package fsm_test

import (
	"bytes"
	"fmt"
	"runtime"
	"testing"

	"github.com/rosterhq/roster/fsm"
	"github.com/rosterhq/roster/internal/boltmap"
)

// residentState is how much of the state file this process has mapped and
// resident.
func residentState(t *testing.T, h *harness) int64 {
	t.Helper()
	n, err := boltmap.Resident(h.path)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Checkpoints and loads read the state file through bbolt's map (a merge
// reads the leaves of the keys it writes, a load the whole file), but
// nothing serves requests from it: the pages they read do not stay in the
// process's resident set: after a load none of them, after checkpoints at
// most the 8 MiB that checkpoints may read before one releases them.
// 30,000 keys of 200 bytes, written twice, are about 18 MiB of pages.
func TestStateFilePagesDoNotStayResident(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("/proc/self/smaps: Linux only")
	}
	const keys, bound, ckptBound = 30_000, 256 << 10, 8<<20 + 256<<10
	for _, mode := range journalModes {
		t.Run(mode.name, func(t *testing.T) {
			h := newHarnessJournal(t, t.TempDir()+"/state.db", mode.bytes)
			value := bytes.Repeat([]byte("v"), 200)
			for start := 0; start < keys; start += 1000 {
				cmds := make([]fsm.Command, 0, 1000)
				for i := start; i < start+1000; i++ {
					cmds = append(cmds, fsm.Put{Key: fmt.Sprintf("/services/svc-%d/inst-%d", i%97, i), Value: value})
				}
				h.apply(cmds...)
				h.checkpoint()
			}
			// Rewrite every key, so that a merge (in place, or of the
			// journal) reads the leaves of all of them.
			for start := 0; start < keys; start += 1000 {
				cmds := make([]fsm.Command, 0, 1000)
				for i := start; i < start+1000; i++ {
					cmds = append(cmds, fsm.Put{Key: fmt.Sprintf("/services/svc-%d/inst-%d", i%97, i), Value: value[:100]})
				}
				h.apply(cmds...)
				h.checkpoint()
			}
			if n := residentState(t, h); n > ckptBound {
				t.Errorf("after checkpoints: %d bytes of the state file resident, want at most %d", n, ckptBound)
			}
			h.reopen()
			if n := residentState(t, h); n > bound {
				t.Errorf("after a load: %d bytes of the state file resident, want at most %d", n, bound)
			}
			if got := h.state().KeyCount(); got != keys {
				t.Fatalf("%d keys after the reopen, want %d", got, keys)
			}
		})
	}
}
