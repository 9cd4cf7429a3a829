package fsm_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/rosterhq/roster/fsm"
)

// harness drives one FSM over a real bbolt file the way raft does: entries
// with increasing indexes, applied through ApplyBatch.
type harness struct {
	tb      testing.TB
	path    string
	journal int // Config.JournalBytes
	f       *fsm.FSM
	idx     uint64
	term    uint64

	// log is every entry applied, by index: what raft's log would hold,
	// and what reopen replays on top of the checkpoint.
	log map[uint64]*raft.Log

	mu     sync.Mutex
	events []fsm.Event
	calls  int // observer calls
}

func openFSM(tb testing.TB, path string) *fsm.FSM {
	tb.Helper()
	return openFSMJournal(tb, path, 0)
}

// openFSMJournal opens with Config.JournalBytes journal.
func openFSMJournal(tb testing.TB, path string, journal int) *fsm.FSM {
	tb.Helper()
	f, err := fsm.Open(fsm.Config{Path: path, NoSync: true, JournalBytes: journal})
	if err != nil {
		tb.Fatalf("open %s: %v", path, err)
	}
	return f
}

func newHarness(tb testing.TB) *harness {
	tb.Helper()
	return newHarnessAt(tb, filepath.Join(tb.TempDir(), "state.db"))
}

func newHarnessAt(tb testing.TB, path string) *harness {
	tb.Helper()
	return newHarnessJournal(tb, path, 0)
}

// journalModes are the checkpoint's ways of writing: with the journal off
// (every checkpoint writes in place), with a journal so small that most
// checkpoints merge, and with the default journal (nothing merges in a
// test's few records).
var journalModes = []struct {
	name  string
	bytes int
}{{"in-place", -1}, {"small-journal", 600}, {"journal", 0}}

// newHarnessJournal is newHarnessAt with Config.JournalBytes journal.
func newHarnessJournal(tb testing.TB, path string, journal int) *harness {
	tb.Helper()
	h := &harness{tb: tb, path: path, journal: journal, term: 1, log: map[uint64]*raft.Log{}}
	h.f = openFSMJournal(tb, path, journal)
	h.idx = h.f.State().AppliedIndex()
	h.observe()
	tb.Cleanup(func() { h.f.Close() })
	return h
}

func (h *harness) observe() {
	h.f.SetObserver(func(s *fsm.State, evs []fsm.Event) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.events = append(h.events, evs...)
		h.calls++
	})
}

// takeEvents returns and forgets the events observed so far.
func (h *harness) takeEvents() []fsm.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	evs := h.events
	h.events = nil
	return evs
}

// reopen restarts the FSM as raft does after a crash: it closes it without
// a checkpoint, opens the state file again and replays the log after the
// checkpoint's index up to the last entry given.
func (h *harness) reopen() {
	h.tb.Helper()
	h.reopenAt(0)
}

// reopenAt is reopen with raft's replay starting after index from (its
// last snapshot); entries up to the checkpoint must be skipped.
func (h *harness) reopenAt(from uint64) {
	h.tb.Helper()
	if err := h.f.Close(); err != nil {
		h.tb.Fatalf("close: %v", err)
	}
	h.f = openFSMJournal(h.tb, h.path, h.journal)
	h.tb.Cleanup(func() { h.f.Close() })
	h.replay(max(from, 0)+1, h.idx, 64)
	h.observe()
}

// replay hands entries [lo, hi] of the log to ApplyBatch in batches of
// size, as raft does after a restart, without recording them again.
func (h *harness) replay(lo, hi uint64, size int) {
	h.tb.Helper()
	var batch []*raft.Log
	flush := func() {
		if len(batch) > 0 {
			h.f.ApplyBatch(batch)
			batch = batch[:0]
		}
	}
	for i := lo; i <= hi; i++ {
		if l, ok := h.log[i]; ok {
			batch = append(batch, l)
			if len(batch) == size {
				flush()
			}
		}
	}
	flush()
}

// restore restores a snapshot as raft does for a follower that fell
// behind: the log before it is gone, and entries continue after its index.
func (h *harness) restore(data []byte) error {
	err := h.f.Restore(readCloser(data))
	if err == nil {
		h.idx = h.f.State().AppliedIndex()
		h.log = map[uint64]*raft.Log{}
	}
	return err
}

// checkpoint commits the FSM's checkpoint.
func (h *harness) checkpoint() {
	h.tb.Helper()
	if err := h.f.Checkpoint(); err != nil {
		h.tb.Fatalf("checkpoint: %v", err)
	}
}

func (h *harness) state() *fsm.State { return h.f.State() }

// logs turns commands into raft log entries with the next indexes.
func (h *harness) logs(cmds ...fsm.Command) []*raft.Log {
	ls := make([]*raft.Log, len(cmds))
	for i, c := range cmds {
		h.idx++
		ls[i] = &raft.Log{Index: h.idx, Term: h.term, Type: raft.LogCommand, Data: fsm.Encode(c)}
	}
	return ls
}

// apply applies the commands as one batch and returns their results.
func (h *harness) apply(cmds ...fsm.Command) []fsm.Result {
	h.tb.Helper()
	return h.applyLogs(h.logs(cmds...))
}

func (h *harness) applyLogs(ls []*raft.Log) []fsm.Result {
	h.tb.Helper()
	for _, l := range ls {
		h.log[l.Index] = l
		h.idx = max(h.idx, l.Index)
	}
	out := h.f.ApplyBatch(ls)
	if len(out) != len(ls) {
		h.tb.Fatalf("ApplyBatch returned %d results for %d entries", len(out), len(ls))
	}
	rs := make([]fsm.Result, len(out))
	for i, o := range out {
		r, ok := o.(fsm.Result)
		if !ok {
			h.tb.Fatalf("result %d is %T, want fsm.Result", i, o)
		}
		rs[i] = r
	}
	return rs
}

// do applies one command in its own batch.
func (h *harness) do(c fsm.Command) fsm.Result {
	h.tb.Helper()
	return h.apply(c)[0]
}

// must applies one command and fails the test when it returns an error.
func (h *harness) must(c fsm.Command) fsm.Result {
	h.tb.Helper()
	r := h.do(c)
	if r.Err != nil {
		h.tb.Fatalf("%#v: unexpected error %v", c, r.Err)
	}
	return r
}

func (h *harness) get(key string) *fsm.KV {
	h.tb.Helper()
	kv, ok := h.state().Get(key)
	if !ok {
		h.tb.Fatalf("key %q missing", key)
	}
	return kv
}

func (h *harness) absent(key string) {
	h.tb.Helper()
	if kv, ok := h.state().Get(key); ok {
		h.tb.Fatalf("key %q present: %+v", key, *kv)
	}
}

// dump renders a state canonically through the public API only: every KV
// with every field, every lease with its remaining TTL and attached keys, the
// members and the meta values. Two states with equal dumps are equal as far
// as any reader can tell (lease deadlines at the resolution of the clock and
// Remaining).
func dump(s *fsm.State) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "applied=%d revision=%d clock=%d max_lease_id=%d keys=%d leases=%d\n",
		s.AppliedIndex(), s.Revision(), s.Clock(), s.MaxLeaseID(), s.KeyCount(), s.LeaseCount())
	n := 0
	s.Range("", "", func(kv *fsm.KV) bool {
		n++
		fmt.Fprintf(&sb, "kv %q value=%x create=%d mod=%d version=%d lease=%d\n",
			kv.Key, kv.Value, kv.CreateRevision, kv.ModRevision, kv.Version, kv.Lease)
		return true
	})
	if n != s.KeyCount() {
		fmt.Fprintf(&sb, "!! Range saw %d keys, KeyCount %d\n", n, s.KeyCount())
	}
	n = 0
	s.Leases(0, func(l fsm.LeaseStatus) bool {
		n++
		fmt.Fprintf(&sb, "lease %d ttl=%d remaining=%d name=%q keys=%q\n",
			l.ID, l.TTL, l.Remaining, l.Name, s.LeaseKeys(l.ID))
		return true
	})
	if n != s.LeaseCount() {
		fmt.Fprintf(&sb, "!! Leases saw %d leases, LeaseCount %d\n", n, s.LeaseCount())
	}
	for _, m := range s.Members() {
		fmt.Fprintf(&sb, "member %q raft=%q http=%q node=%d\n", m.ID, m.RaftAddr, m.HTTPAddr, m.Node)
	}
	return sb.String()
}

func hashOf(d string) string {
	sum := sha256.Sum256([]byte(d))
	return hex.EncodeToString(sum[:8])
}

// sameDump fails with a line diff when two dumps differ.
func sameDump(tb testing.TB, what, want, got string) {
	tb.Helper()
	if want == got {
		return
	}
	tb.Fatalf("%s: state differs (hash %s vs %s):\n%s", what, hashOf(want), hashOf(got), diffLines(want, got))
}

func diffLines(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	var sb strings.Builder
	shown := 0
	for i := 0; i < len(al) || i < len(bl); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			fmt.Fprintf(&sb, "line %d:\n  want %s\n  got  %s\n", i+1, x, y)
			if shown++; shown >= 10 {
				sb.WriteString("  ...\n")
				break
			}
		}
	}
	return sb.String()
}

// fmtKV renders a KV (nil-safe) for comparisons.
func fmtKV(kv *fsm.KV) string {
	if kv == nil {
		return "<nil>"
	}
	return fmt.Sprintf("{%q %x c=%d m=%d v=%d l=%d}", kv.Key, kv.Value, kv.CreateRevision, kv.ModRevision, kv.Version, kv.Lease)
}

func fmtEvent(e fsm.Event) string {
	s := fmt.Sprintf("type=%d kv=%s prev=%s", e.Type, fmtKV(e.KV), fmtKV(e.Prev))
	if e.Expired {
		s += " expired"
	}
	return s
}

// errClass names an error by what callers can test for.
func errClass(err error) string {
	var ce *fsm.CASError
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &ce):
		if !errors.Is(err, fsm.ErrCASFailed) {
			return "cas-error-without-sentinel"
		}
		return fmt.Sprintf("cas(current=%d)", ce.Current)
	case errors.Is(err, fsm.ErrLeaseNotFound):
		return "lease_not_found"
	case errors.Is(err, fsm.ErrLeaseExists):
		return "lease_exists"
	case errors.Is(err, fsm.ErrInvalidArgument):
		return "invalid_argument"
	case errors.Is(err, fsm.ErrFailed):
		return "failed"
	}
	return "other: " + err.Error()
}

// fmtResult renders every field of a Result canonically.
func fmtResult(r fsm.Result) string {
	s := fmt.Sprintf("err=%s rev=%d prev=%s deleted=%d value=%d lease=%+v renewed=%+v notfound=%v expired=%d more=%v",
		errClass(r.Err), r.Revision, fmtKV(r.Prev), r.Deleted, r.Value, r.Lease, r.Renewed, r.NotFound, r.Expired, r.More)
	if r.Ops != nil {
		ops := make([]string, len(r.Ops))
		for i, op := range r.Ops {
			ops[i] = "{" + fmtResult(op) + "}"
		}
		s += " ops=[" + strings.Join(ops, " ") + "]"
	}
	return s
}

// memSink is a raft.SnapshotSink over a buffer.
type memSink struct {
	bytes.Buffer
	closed, cancelled bool
}

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Close() error  { s.closed = true; return nil }
func (s *memSink) Cancel() error { s.cancelled = true; return nil }

var _ raft.SnapshotSink = (*memSink)(nil)

// snapshotBytes takes a snapshot of f and persists it into memory.
func snapshotBytes(tb testing.TB, f *fsm.FSM) []byte {
	tb.Helper()
	snap, err := f.Snapshot()
	if err != nil {
		tb.Fatalf("Snapshot: %v", err)
	}
	defer snap.Release()
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		tb.Fatalf("Persist: %v", err)
	}
	if !sink.closed || sink.cancelled {
		tb.Fatalf("Persist left sink closed=%v cancelled=%v", sink.closed, sink.cancelled)
	}
	return sink.Bytes()
}

func readCloser(b []byte) io.ReadCloser { return io.NopCloser(bytes.NewReader(b)) }
