package fsm_test

import (
	"bytes"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/rosterhq/roster/fsm"
)

// buildSource applies the first n entries of a workload plus a few fixed
// records (leases with different deadlines, keys, members, an advanced
// clock) to a fresh FSM.
func buildSource(t *testing.T, w *workload, n int) *harness {
	t.Helper()
	h := newHarness(t)
	applyWorkloadRange(t, h, w, 0, n, func() int { return 50 })
	return h
}

// otherState fills h with records that must all vanish on restore.
func otherState(t *testing.T, h *harness) {
	t.Helper()
	h.idx = 10_000_000 // far ahead of the snapshot: restore moves it back
	h.must(fsm.Tick{ElapsedMs: 999_999})
	for i := int64(0); i < 30; i++ {
		h.must(fsm.Grant{ID: 1001 + i, TTL: 100, Name: "other"}) // IDs that may exist in the snapshot
		h.must(putL(fmt.Sprintf("/zzz/%02d", i), "other", 1001+i))
		h.must(putL(fmt.Sprintf("/a/%d", i), "other", 1001+i))
	}
	h.must(fsm.SetMember{Member: fsm.Member{ID: "other", RaftAddr: "x"}})
}

func TestSnapshotRestoreRoundTrip(t *testing.T) {
	const total, cut = 2000, 1400
	w, _ := genWorkload(99, total)
	src := buildSource(t, w, cut)
	want := dump(src.state())
	if src.state().Clock() == 0 || src.state().LeaseCount() == 0 || src.state().KeyCount() == 0 {
		t.Fatalf("source state too thin:\n%s", want)
	}
	data := snapshotBytes(t, src.f)

	fresh := newHarness(t)
	busy := newHarness(t)
	otherState(t, busy)
	for _, tc := range []struct {
		name string
		h    *harness
	}{{"fresh", fresh}, {"non-empty", busy}} {
		h := tc.h
		t.Run(tc.name, func(t *testing.T) {
			h.takeEvents() // of the state being replaced
			if err := h.restore(data); err != nil {
				t.Fatalf("Restore: %v", err)
			}
			if evs := h.takeEvents(); len(evs) != 0 {
				t.Fatalf("restore published %d events", len(evs))
			}
			s := h.state()
			sameDump(t, "restored", want, dump(s))
			if s.Clock() != src.state().Clock() || s.AppliedIndex() != uint64(cut) {
				t.Fatalf("clock %d applied %d", s.Clock(), s.AppliedIndex())
			}
			if _, ok := s.Get("/zzz/00"); ok {
				t.Fatal("a key of the previous state survived the restore")
			}
			if _, err := os.Stat(h.path + ".restore"); !os.IsNotExist(err) {
				t.Fatalf("temporary file left behind: %v", err)
			}
			h.reopen()
			sameDump(t, "reopened after restore", want, dump(h.state()))

			// The restored FSM carries on exactly like the source: the rest
			// of the workload (expiries included) gives the model's results.
			h.idx = uint64(cut)
			rng := rand.New(rand.NewSource(3))
			applyWorkloadRange(t, h, w, cut, total, func() int { return 1 + rng.Intn(40) })
			h.reopen()
			sameDump(t, "reopened at the end", w.dumps[total-1], dump(h.state()))
		})
	}
	// Restoring twice in a row is fine, and a snapshot of a restored FSM
	// restores to the same state again.
	again := newHarness(t)
	for i := 0; i < 2; i++ {
		if err := again.f.Restore(readCloser(data)); err != nil {
			t.Fatal(err)
		}
	}
	sameDump(t, "restored twice", want, dump(again.state()))
	third := newHarness(t)
	if err := third.f.Restore(readCloser(snapshotBytes(t, again.f))); err != nil {
		t.Fatal(err)
	}
	sameDump(t, "snapshot of a restored FSM", want, dump(third.state()))
}

// TestSnapshotIsPointInTime takes a snapshot, keeps applying, and checks
// the persisted snapshot holds the state as of Snapshot().
func TestSnapshotIsPointInTime(t *testing.T) {
	h := newHarness(t)
	h.must(fsm.Grant{ID: 1, TTL: 5})
	for i := 0; i < 50; i++ {
		h.must(putL(fmt.Sprintf("/k/%02d", i), "before", 1))
	}
	h.must(fsm.Tick{ElapsedMs: 1234})
	want := dump(h.state())
	snap, err := h.f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	// Apply concurrently: Persist must not wait for these, and they must not
	// show in the snapshot whichever finishes first.
	ls := h.logs(fsm.Delete{Key: "/k/", Prefix: true}, put("/after", "x"), fsm.Tick{ElapsedMs: 10_000})
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.f.ApplyBatch(ls)
	}()
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	snap.Release() // idempotent
	<-done
	if h.state().KeyCount() != 1 {
		t.Fatalf("live state has %d keys", h.state().KeyCount())
	}
	r := newHarness(t)
	if err := r.f.Restore(readCloser(sink.Bytes())); err != nil {
		t.Fatal(err)
	}
	sameDump(t, "point in time", want, dump(r.state()))
}

// TestSnapshotDoesNotBlockApply: DESIGN.md promises snapshots are streamed
// "without holding the apply path". bbolt must remap its file to grow, and
// a remap waits for every open read transaction, so while a snapshot is
// open (between Snapshot() and Release(), i.e. for the whole of Persist),
// any batch that grows the file blocks.
func TestSnapshotDoesNotBlockApply(t *testing.T) {
	h := newHarness(t)
	h.must(put("/a", "1"))
	snap, err := h.f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()
	cmds := make([]fsm.Command, 300) // ~300 KiB: the file has to grow
	for i := range cmds {
		cmds[i] = fsm.Put{Key: fmt.Sprintf("/grow/%04d", i), Value: bytes.Repeat([]byte{'v'}, 1024)}
	}
	ls := h.logs(cmds...)
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.f.ApplyBatch(ls)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		snap.Release()
		<-done
		t.Fatal("ApplyBatch was blocked by an open snapshot for 5s (bbolt remap waits for the snapshot's read transaction)")
	}
}

func TestRestoreGarbageKeepsState(t *testing.T) {
	valid := func() []byte {
		h := newHarness(t)
		h.must(put("/x", "y"))
		return snapshotBytes(t, h.f)
	}()
	rnd := make([]byte, 64<<10)
	rand.New(rand.NewSource(1)).Read(rnd)
	badMagic := append([]byte(nil), valid...)
	for i := 0; i < 2*4096 && i < len(badMagic); i++ {
		badMagic[i] ^= 0x5a
	}
	cases := []struct {
		name string
		data []byte
	}{
		{"text", []byte("this is not a bbolt file")},
		{"random", rnd},
		{"one page of zeros", make([]byte, 4096)},
		{"corrupt meta pages", badMagic},
		{"empty", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.must(fsm.Grant{ID: 1, TTL: 10})
			h.must(putL("/keep", "me", 1))
			h.must(fsm.Tick{ElapsedMs: 500})
			want := dump(h.state())
			if err := h.f.Restore(readCloser(tc.data)); err == nil {
				t.Errorf("Restore(%s) succeeded", tc.name)
			}
			sameDump(t, "after failed restore", want, dump(h.state()))
			select {
			case <-h.f.Failed():
				t.Fatalf("a rejected snapshot stopped the FSM: %v", h.f.Err())
			default:
			}
			if _, err := os.Stat(h.path + ".restore"); !os.IsNotExist(err) {
				t.Errorf("temporary file left behind: %v", err)
			}
			// Still usable, and still on disk.
			h.must(put("/after", "ok"))
			h.must(fsm.Tick{ElapsedMs: 10_000})
			h.reopen()
			h.get("/after")
			h.absent("/keep")
		})
	}
}

// TestRestoreTruncatedSnapshot restores snapshots cut short. Restore
// promises to check a snapshot before touching the live file, so this must
// be an error, not a crash. bbolt crashes the process (SIGBUS reading past
// the end of the mmap, or a panic in its free-page scan goroutine), so the
// restores run in a child process.
func TestRestoreTruncatedSnapshot(t *testing.T) {
	if os.Getenv("ROSTER_FSM_TRUNCATED_CHILD") == "1" {
		truncatedRestores(t)
		return
	}
	if testing.Short() {
		t.Skip("spawns a child test process")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestRestoreTruncatedSnapshot$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), "ROSTER_FSM_TRUNCATED_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		lines := strings.Split(string(out), "\n")
		if len(lines) > 25 {
			lines = lines[:25]
		}
		t.Fatalf("restoring truncated snapshots in a child process failed (%v); its output:\n%s", err, strings.Join(lines, "\n"))
	}
}

func truncatedRestores(t *testing.T) {
	src := newHarness(t)
	for i := 0; i < 2000; i++ {
		src.must(fsm.Put{Key: fmt.Sprintf("/k/%05d", i), Value: make([]byte, 200)})
	}
	data := snapshotBytes(t, src.f)
	for _, n := range []int{len(data) - 4096, len(data) / 2, 3 * 4096, len(data) - 1} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			h := newHarness(t)
			h.must(put("/keep", "me"))
			want := dump(h.state())
			fmt.Fprintf(os.Stderr, "restoring %d of %d bytes\n", n, len(data))
			if err := h.f.Restore(readCloser(data[:n])); err == nil {
				t.Errorf("Restore of %d of %d bytes succeeded", n, len(data))
			}
			sameDump(t, "after failed restore", want, dump(h.state()))
		})
	}
}

// TestRestoreLeavesNoTempFile checks a failed restore removes its temporary
// file and that one in the way (from a crash) does not stop a restore.
func TestRestoreOverStaleTempFile(t *testing.T) {
	src := newHarness(t)
	src.must(put("/x", "1"))
	data := snapshotBytes(t, src.f)
	dir := t.TempDir()
	path := filepath.Join(dir, "state.db")
	if err := os.WriteFile(path+".restore", []byte("left by a crash"), 0o600); err != nil {
		t.Fatal(err)
	}
	h := newHarnessAt(t, path)
	if err := h.f.Restore(readCloser(data)); err != nil {
		t.Fatal(err)
	}
	sameDump(t, "restored", dump(src.state()), dump(h.state()))
}

// TestRestoreInstallsExactlyTheSyncedFile: the state file that Restore
// renames into place is byte for byte the snapshot it received and synced.
// Checking the snapshot used to open it and commit a transaction without
// syncing (a new meta page and free list): a power loss after the rename
// could leave a meta page on disk pointing at a free-list page that never
// reached it, a state file bbolt refuses (or panics on) at every start.
func TestRestoreInstallsExactlyTheSyncedFile(t *testing.T) {
	src := newHarness(t)
	src.must(put("/x", "1"))
	src.must(fsm.Grant{ID: 7, TTL: 10})
	data := snapshotBytes(t, src.f)
	want := data[8+4+8 : len(data)-32] // the bbolt bytes inside the frame

	path := filepath.Join(t.TempDir(), "state.db")
	var got []byte
	f, err := fsm.Open(fsm.Config{Path: path, Failpoint: func(name string) {
		if name == fsm.FailRestoreRenamed {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Error(err)
			}
			got = b
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Restore(readCloser(data)); err != nil {
		t.Fatal(err)
	}
	if got == nil {
		t.Fatal("the restore-renamed point was not reached")
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("the state file renamed into place (%d bytes) is not the synced snapshot (%d bytes)", len(got), len(want))
	}
	sameDump(t, "restored", dump(src.state()), dump(f.State()))
}

// TestFailedRestoreKeepsTheLiveState: a restore that fails once the state
// file is closed but before the snapshot is renamed over it (here the
// temporary file vanishes; a full or failing disk does the same) leaves
// the state file as it was, and must leave the live state as it was too.
// It used to reload the state file and publish it: the state went back to
// the last checkpoint, and the entries applied since were lost on this
// replica while raft, told the restore failed, went on after them.
func TestFailedRestoreKeepsTheLiveState(t *testing.T) {
	src := newHarness(t)
	src.must(put("/snap", "1"))
	data := snapshotBytes(t, src.f)

	path := filepath.Join(t.TempDir(), "state.db")
	sabotage := false
	f, err := fsm.Open(fsm.Config{Path: path, NoSync: true, Failpoint: func(name string) {
		if name == fsm.FailRestoreSynced && sabotage {
			if err := os.Remove(path + ".restore"); err != nil {
				t.Error(err)
			}
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{tb: t, path: path, term: 1, log: map[uint64]*raft.Log{}, f: f}
	t.Cleanup(func() { h.f.Close() })
	h.must(put("/a", "1"))
	h.checkpoint()
	h.must(put("/b", "2")) // applied, not yet in the state file
	want := dump(h.state())

	sabotage = true
	if err := f.Restore(readCloser(data)); err == nil {
		t.Fatal("the restore succeeded without its file")
	}
	sameDump(t, "the live state after a failed restore", want, dump(h.state()))
	h.must(put("/c", "3"))
	h.get("/b")
	// The state file still takes checkpoints and holds everything.
	h.checkpoint()
	h.reopen()
	h.get("/b")
	h.get("/c")
}
