package fsm_test

import (
	"errors"
	"fmt"
	"math/rand"
	"path/filepath"
	"sync"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/rosterhq/roster/fsm"
)

func wanted(f *fsm.FSM) bool {
	select {
	case <-f.CheckpointWanted():
		return true
	default:
		return false
	}
}

// TestCheckpointPersistsEveryKind: a checkpoint holds every kind of record
// as of its index, deletions included; without one, a restart that
// replays nothing (as when raft's snapshot is at the last index) sees the
// previous checkpoint.
func TestCheckpointPersistsEveryKind(t *testing.T) {
	for _, mode := range journalModes {
		t.Run(mode.name, func(t *testing.T) {
			testCheckpointPersistsEveryKind(t, newHarnessJournal(t, filepath.Join(t.TempDir(), "state.db"), mode.bytes))
		})
	}
}

func testCheckpointPersistsEveryKind(t *testing.T, h *harness) {
	h.must(fsm.Grant{ID: 1, TTL: 10, Name: "one"})
	h.must(fsm.Grant{ID: 2, TTL: 10})
	h.must(putL("/a", "1", 1))
	h.must(putL("/b", "2", 2))
	h.must(put("/c", "3"))
	h.must(fsm.SetMember{Member: fsm.Member{ID: "m1", RaftAddr: "r1", HTTPAddr: "h1", Node: 1}})
	h.must(fsm.SetMember{Member: fsm.Member{ID: "m2", RaftAddr: "r2", Node: 2}})
	h.must(fsm.Tick{ElapsedMs: 1500})
	h.must(fsm.PutRole{Role: fsm.Role{Name: "api", Rules: []fsm.Rule{{Prefix: "/api/", Read: true}}}})
	h.must(fsm.PutRole{Role: fsm.Role{Name: "ops", Admin: true}})
	h.must(fsm.PutToken{Token: fsm.Token{ID: "t1", Name: "one", Roles: []string{"ops"}, Hash: []byte("0123456789abcdef0123456789abcdef")}})
	h.must(fsm.PutToken{Token: fsm.Token{ID: "t2", Name: "two", Roles: []string{"api"}, Hash: []byte("fedcba9876543210fedcba9876543210")}})
	h.checkpoint()
	first := dump(h.state()) + authText(h.state())
	firstIdx := h.idx

	// Every kind changes or goes away.
	h.must(fsm.Revoke{ID: 2})
	h.must(fsm.KeepAlive{IDs: []int64{1}, SlackMs: 300})
	h.must(fsm.Delete{Key: "/c"})
	h.must(put("/a", "new"))
	h.must(fsm.DelMember{ID: "m1"})
	h.must(fsm.SetMember{Member: fsm.Member{ID: "m2", RaftAddr: "r2b", Node: 2}})
	h.must(fsm.Tick{ElapsedMs: 700})
	h.must(fsm.DeleteToken{ID: "t2"})
	h.must(fsm.DeleteRole{Name: "api"})
	h.must(fsm.PutRole{Role: fsm.Role{Name: "ro", Rules: []fsm.Rule{{Prefix: "/", Read: true}}}})
	second := dump(h.state()) + authText(h.state())

	// Crash without a checkpoint, raft's snapshot at the last index (no
	// replay): the first checkpoint, exactly.
	h.reopenAt(h.idx)
	sameDump(t, "without the second checkpoint", first, dump(h.state())+authText(h.state()))
	if got := h.f.DurableIndex(); got != firstIdx {
		t.Fatalf("DurableIndex %d, want %d", got, firstIdx)
	}
	// With the log replayed: the second state.
	h.reopenAt(firstIdx)
	sameDump(t, "replayed", second, dump(h.state())+authText(h.state()))
	h.checkpoint()
	h.reopenAt(h.idx)
	sameDump(t, "second checkpoint", second, dump(h.state())+authText(h.state()))
}

// authText renders the access control tables.
func authText(s *fsm.State) string {
	return fmt.Sprintf("roles %+v\ntokens %+v\n", s.Roles(), s.Tokens())
}

// TestCheckpointWantedAndIdle: the signal comes at the first change and
// when CheckpointEntries entries piled up; with nothing changed, a
// checkpoint commits nothing.
func TestCheckpointWantedAndIdle(t *testing.T) {
	h := newHarness(t)
	if wanted(h.f) {
		t.Fatal("checkpoint wanted before any change")
	}
	h.checkpoint()
	if n := h.f.Checkpoints(); n != 0 {
		t.Fatalf("a checkpoint with nothing changed committed (%d)", n)
	}
	h.must(put("/a", "1"))
	if !wanted(h.f) {
		t.Fatal("no signal at the first change")
	}
	for i := 0; i < 10; i++ {
		h.must(put("/a", fmt.Sprint(i)))
	}
	if wanted(h.f) {
		t.Fatal("signalled again before enough entries piled up")
	}
	h.checkpoint()
	h.checkpoint()
	if n := h.f.Checkpoints(); n != 1 {
		t.Fatalf("%d checkpoints committed, want 1", n)
	}
	if wanted(h.f) {
		t.Fatal("wanted after a checkpoint with no change since")
	}
	// The threshold.
	h.must(put("/b", "x"))
	if !wanted(h.f) {
		t.Fatal("no signal at the first change after a checkpoint")
	}
	for i := 1; i < fsm.DefaultCheckpointEntries-1; i++ {
		h.apply(fsm.Tick{})
	}
	if wanted(h.f) {
		t.Fatal("signalled below the threshold")
	}
	h.apply(fsm.Tick{})
	if !wanted(h.f) {
		t.Fatal("no signal at the threshold")
	}
}

// TestReplaySkipsCheckpointedEntriesUndecoded: entries at or below the
// checkpoint are not even decoded (here they are garbage: decoding would
// stop the state machine).
func TestReplaySkipsCheckpointedEntriesUndecoded(t *testing.T) {
	h := newHarness(t)
	for i := 0; i < 20; i++ {
		h.must(put(fmt.Sprintf("/k/%02d", i), "v"))
	}
	h.checkpoint()
	want := dump(h.state())
	var garbage []*raft.Log
	for i := uint64(1); i <= h.idx; i++ {
		garbage = append(garbage, &raft.Log{Index: i, Term: 1, Type: raft.LogCommand, Data: []byte{9, 9, 9}})
	}
	h.reopenAt(h.idx)
	for _, size := range []int{1, 7, len(garbage)} {
		for i := 0; i < len(garbage); i += size {
			for j, r := range h.f.ApplyBatch(garbage[i:min(i+size, len(garbage))]) {
				if err := r.(fsm.Result).Err; err != nil {
					t.Fatalf("skipped entry %d: %v", i+j+1, err)
				}
			}
		}
	}
	if h.f.Err() != nil {
		t.Fatalf("the state machine failed on a skipped entry: %v", h.f.Err())
	}
	sameDump(t, "after skipping", want, dump(h.state()))
}

// TestSnapshotCommitsCheckpoint: Snapshot makes the checkpoint current
// first, so raft may compact the log up to the snapshot.
func TestSnapshotCommitsCheckpoint(t *testing.T) {
	h := newHarness(t)
	h.must(fsm.Grant{ID: 7, TTL: 30})
	h.must(putL("/x", "1", 7))
	if h.f.DurableIndex() != 0 {
		t.Fatalf("DurableIndex %d before any checkpoint", h.f.DurableIndex())
	}
	data := snapshotBytes(t, h.f)
	if got := h.f.DurableIndex(); got != h.idx {
		t.Fatalf("DurableIndex %d after Snapshot, want %d", got, h.idx)
	}
	other := newHarness(t)
	if err := other.restore(data); err != nil {
		t.Fatal(err)
	}
	sameDump(t, "restored", dump(h.state()), dump(other.state()))
	// Raft compacts: nothing before the snapshot is replayed again.
	h.log = map[uint64]*raft.Log{}
	h.reopen()
	sameDump(t, "reopened after compaction", dump(other.state()), dump(h.state()))
}

// TestCheckpointFailureAfterFatalEntry: once stopped, Checkpoint refuses.
func TestCheckpointRefusedAfterFailure(t *testing.T) {
	h := newHarness(t)
	h.must(put("/a", "1"))
	h.idx++
	h.applyLogs([]*raft.Log{{Index: h.idx, Term: 1, Type: raft.LogCommand, Data: []byte{1, 200}}})
	if err := h.f.Checkpoint(); !errors.Is(err, fsm.ErrFailed) {
		t.Fatalf("Checkpoint after failure: %v", err)
	}
}

// TestDeterminismWithCheckpoints applies the determinism workload with
// checkpoints at random points and crashes (reopen without a final
// checkpoint, replay from a random earlier snapshot index) at others: after
// every batch the state equals the reference model's, so checkpoint plus
// replay gives the state a straight apply gives.
func TestDeterminismWithCheckpoints(t *testing.T) {
	for _, mode := range journalModes {
		t.Run(mode.name, func(t *testing.T) {
			h := newHarnessJournal(t, filepath.Join(t.TempDir(), "state.db"), mode.bytes)
			testDeterminismWithCheckpoints(t, h)
			if mode.bytes > 0 && h.f.Merges() == 0 {
				t.Fatal("the small journal never merged")
			}
		})
	}
}

func testDeterminismWithCheckpoints(t *testing.T, h *harness) {
	w, m := cachedWorkload(determinismSeed, determinismEntries)
	rng := rand.New(rand.NewSource(11))
	crashes, checkpoints := 0, 0
	for i := 0; i < len(w.logs); {
		n := min(1+rng.Intn(60), len(w.logs)-i)
		applyWorkloadRange(t, h, w, i, i+n, func() int { return 1 + rng.Intn(20) })
		i += n
		switch rng.Intn(6) {
		case 0, 1:
			h.checkpoint()
			checkpoints++
		case 2:
			// raft's last snapshot is at or below the checkpoint.
			from := uint64(rng.Int63n(int64(h.f.DurableIndex()) + 1))
			h.reopenAt(from)
			sameDump(t, fmt.Sprintf("crash after entry %d, replay after %d", i, from), w.dumps[i-1], dump(h.state()))
			crashes++
		}
	}
	sameDump(t, "end", m.dump(), dump(h.state()))
	t.Logf("%d checkpoints, %d crashes", checkpoints, crashes)
	if crashes == 0 || checkpoints == 0 {
		t.Fatal("the workload never crashed or never checkpointed")
	}
}

// TestCheckpointConcurrentWithApply runs checkpoints on another goroutine
// while entries apply, as the node does; the final checkpoint alone
// rebuilds the state (run with -race).
func TestCheckpointConcurrentWithApply(t *testing.T) {
	for _, mode := range journalModes {
		t.Run(mode.name, func(t *testing.T) {
			testCheckpointConcurrentWithApply(t, newHarnessJournal(t, filepath.Join(t.TempDir(), "state.db"), mode.bytes))
		})
	}
}

func testCheckpointConcurrentWithApply(t *testing.T, h *harness) {
	w, m := cachedWorkload(determinismSeed, determinismEntries)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-h.f.CheckpointWanted():
			}
			if err := h.f.Checkpoint(); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	rng := rand.New(rand.NewSource(5))
	applyWorkload(t, h, w, func() int { return 1 + rng.Intn(30) })
	close(stop)
	wg.Wait()
	h.checkpoint()
	if h.f.Checkpoints() < 2 {
		t.Fatalf("only %d checkpoints ran alongside the apply", h.f.Checkpoints())
	}
	h.reopenAt(h.idx)
	sameDump(t, "final checkpoint", m.dump(), dump(h.state()))
}
