package registry

import (
	"bytes"
	"io"
	"path/filepath"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/rosterhq/roster/fsm"
)

// bufSink is a raft.SnapshotSink in memory.
type bufSink struct{ bytes.Buffer }

func (s *bufSink) ID() string    { return "mem" }
func (s *bufSink) Close() error  { return nil }
func (s *bufSink) Cancel() error { return nil }

// TestRestoredSnapshotIsNoLogWitness: after a leader's snapshot is
// installed, this member's log may still hold, at the indexes the snapshot
// covers, entries that never committed (raft keeps TrailingLogs of them),
// so a former leader waiting for the fate of its entry there must not read
// the log as the committed record. The state machine wrapper records what
// a restored snapshot covers before raft moves its applied index there.
func TestRestoredSnapshotIsNoLogWitness(t *testing.T) {
	dir := t.TempDir()
	open := func(name string) *fsm.FSM {
		f, err := fsm.Open(fsm.Config{Path: filepath.Join(dir, name), NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	leader := open("leader.db")
	var logs []*raft.Log
	for i := uint64(1); i <= 12; i++ {
		logs = append(logs, &raft.Log{Index: i, Term: 3, Type: raft.LogCommand, Data: fsm.Encode(fsm.Put{Key: "/k", Value: []byte{byte(i)}})})
	}
	leader.ApplyBatch(logs)
	snap, err := leader.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink bufSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()

	follower := open("follower.db")
	fates, err := newFates()
	if err != nil {
		t.Fatal(err)
	}
	sm := fateFSM{BatchingFSM: follower, f: fates, applied: func() uint64 { return follower.State().AppliedIndex() }}
	if !fates.logWitnesses(5) {
		t.Fatal("before any restore the log at an applied index is not a witness")
	}
	if err := sm.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if got := follower.State().AppliedIndex(); got != 12 {
		t.Fatalf("restored state at index %d, want 12", got)
	}
	for _, i := range []uint64{1, 5, 12} {
		if fates.logWitnesses(i) {
			t.Errorf("the log at %d, which the restored snapshot covers, counts as the committed record", i)
		}
	}
	if !fates.logWitnesses(13) {
		t.Error("the log above the restored snapshot is no witness")
	}
	fates.restored(4) // an older snapshot never lowers the mark
	if fates.logWitnesses(12) {
		t.Error("a later, older restore lowered the mark")
	}
}
