package fsm_test

import (
	"context"
	"errors"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/rosterhq/roster/fsm"
)

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestUndecodableEntryStopsFSM(t *testing.T) {
	bad := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"one byte", []byte{1}},
		{"future version", append([]byte{2}, fsm.Encode(put("/a", "v"))[1:]...)},
		{"unknown type", []byte{1, 200}},
		{"unknown field", []byte{1, 4, 0x50, 1}}, // a put's field 10
		{"truncated", fsm.Encode(put("/a", "value"))[:5]},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.must(fsm.Grant{ID: 1, TTL: 2})
			h.must(putL("/a", "1", 1))
			calls := h.calls

			// What the entries before the bad one make of the state, on a
			// twin that never sees the bad entry.
			twin := newHarness(t)
			twin.must(fsm.Grant{ID: 1, TTL: 2})
			twin.must(putL("/a", "1", 1))
			wantGood := twin.apply(put("/b", "before"), fsm.Tick{ElapsedMs: 5000})
			want := dump(twin.state())

			ls := h.logs(put("/b", "before"), fsm.Tick{ElapsedMs: 5000})
			h.idx++
			ls = append(ls, &raft.Log{Index: h.idx, Term: 3, Type: raft.LogCommand, Data: tc.data})
			ls = append(ls, h.logs(put("/c", "after"))...)
			rs := h.applyLogs(ls)
			// Entries before the bad one were committed: they keep their
			// real results and are part of the state.
			for i := range wantGood {
				if got, want := fmtResult(rs[i]), fmtResult(wantGood[i]); got != want {
					t.Fatalf("result %d before the bad entry:\n got  %s\n want %s", i, got, want)
				}
			}
			for i, r := range rs[len(wantGood):] {
				if !errors.Is(r.Err, fsm.ErrFailed) {
					t.Fatalf("result %d: %s, want ErrFailed", len(wantGood)+i, fmtResult(r))
				}
			}
			if !isClosed(h.f.Failed()) {
				t.Fatal("Failed() not closed")
			}
			if err := h.f.Err(); !errors.Is(err, fsm.ErrFailed) || !errors.Is(err, fsm.ErrDecode) {
				t.Fatalf("Err() = %v, want ErrFailed wrapping ErrDecode", err)
			}
			sameDump(t, "after the failed batch", want, dump(h.state()))
			if h.calls != calls+1 {
				t.Fatalf("the entries before the bad one were published %d times, want once", h.calls-calls)
			}
			// Later batches are refused.
			for i, r := range h.apply(put("/d", "later"), fsm.Tick{ElapsedMs: 5000}) {
				if !errors.Is(r.Err, fsm.ErrFailed) {
					t.Fatalf("later result %d: %s", i, fmtResult(r))
				}
			}
			if r := h.f.Apply(h.logs(put("/e", "x"))[0]); !errors.Is(r.(fsm.Result).Err, fsm.ErrFailed) {
				t.Fatalf("Apply after failure: %+v", r)
			}
			sameDump(t, "after refused batches", want, dump(h.state()))
			if err := h.f.WaitApplied(context.Background(), h.idx); !errors.Is(err, fsm.ErrFailed) {
				t.Fatalf("WaitApplied: %v", err)
			}
			h.reopen()
			sameDump(t, "reopened", want, dump(h.state()))
		})
	}
}

// TestStorageFailureStopsFSM: a checkpoint that cannot be written (here:
// the file is closed) stops the state machine, since the changes it held
// are no longer tracked; later entries are refused.
func TestStorageFailureStopsFSM(t *testing.T) {
	h := newHarness(t)
	h.must(put("/a", "1"))
	h.checkpoint()
	if err := h.f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := h.f.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	// Applying is in memory: it still works.
	h.must(put("/b", "2"))
	want := dump(h.state())
	if err := h.f.Checkpoint(); !errors.Is(err, fsm.ErrFailed) || !isClosed(h.f.Failed()) {
		t.Fatalf("checkpoint on a closed store: %v", err)
	}
	if r := h.do(put("/c", "3")); !errors.Is(r.Err, fsm.ErrFailed) {
		t.Fatalf("apply after the failed checkpoint: %s", fmtResult(r))
	}
	sameDump(t, "after storage failure", want, dump(h.state()))
}

// TestStateErrorsAreNotFatal: commands failing on the state are results,
// not failures of the state machine.
func TestStateErrorsAreNotFatal(t *testing.T) {
	h := newHarness(t)
	h.must(put("/s", "text"))
	rs := h.apply(
		fsm.Revoke{ID: 1},
		putL("/a", "v", 1),
		fsm.Put{Key: "/s", HasCAS: true, CAS: 9},
		fsm.Incr{Key: "/s", By: 1},
		fsm.Grant{ID: 2, TTL: 10},
		fsm.Grant{ID: 2, TTL: 10},
		put("/ok", "v"),
	)
	want := []string{"lease_not_found", "lease_not_found", "cas(current=1)", "invalid_argument", "ok", "lease_exists", "ok"}
	for i, r := range rs {
		if got := errClass(r.Err); got != want[i] {
			t.Fatalf("result %d: %s, want %s", i, got, want[i])
		}
	}
	if isClosed(h.f.Failed()) || h.f.Err() != nil {
		t.Fatalf("state errors stopped the FSM: %v", h.f.Err())
	}
	h.get("/ok")
}
