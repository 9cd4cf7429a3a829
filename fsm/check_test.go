package fsm_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/rosterhq/roster/fsm"
)

// TestCheckInTxn: a Check holds when the key's mod revision is the one
// named (0: absent) and then writes nothing, takes no revision and emits
// no event; the Txn's other operations apply. A Check that fails fails
// the Txn as a failed compare of a put does (a *CASError naming the
// operation, the key's revision as seen), and nothing applies.
func TestCheckInTxn(t *testing.T) {
	h := newHarness(t)
	h.must(fsm.Grant{ID: 7, TTL: 60, Name: "/read"})
	h.must(putL("/read", "r", 7)) // revision 1
	h.must(put("/w", "old"))      // revision 2
	h.takeEvents()

	// Match: an existing key at its revision, an absent key at 0.
	r := h.must(fsm.Txn{Ops: []fsm.Command{
		fsm.Check{Key: "/read", ModRevision: 1},
		fsm.Check{Key: "/absent"},
		fsm.Put{Key: "/w", Value: []byte("new"), HasCAS: true, CAS: 2},
	}})
	if r.Revision != 3 || len(r.Ops) != 3 {
		t.Fatalf("txn: %s", fmtResult(r))
	}
	for i, op := range r.Ops[:2] {
		if op.Err != nil || op.Prev != nil || op.Revision != 2 || op.Deleted != 0 {
			t.Fatalf("check %d result: %s", i, fmtResult(op))
		}
	}
	if kv := h.get("/read"); kv.ModRevision != 1 || kv.Version != 1 || kv.Lease != 7 || string(kv.Value) != "r" {
		t.Fatalf("checked key changed: %s", fmtKV(kv))
	}
	h.absent("/absent")
	if evs := h.takeEvents(); len(evs) != 1 || evs[0].KV.Key != "/w" {
		t.Fatalf("events %v: want only the put of /w", evs)
	}

	// Mismatch, in every shape, with a put that would apply: nothing.
	for _, tc := range []struct {
		name  string
		check fsm.Check
		cur   int64
	}{
		{"stale revision", fsm.Check{Key: "/read", ModRevision: 2}, 1},
		{"present, checked absent", fsm.Check{Key: "/read"}, 1},
		{"absent, checked present", fsm.Check{Key: "/absent", ModRevision: 1}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := h.state()
			r := h.do(fsm.Txn{Ops: []fsm.Command{
				fsm.Put{Key: "/x", Value: []byte("x")},
				tc.check,
				fsm.Grant{ID: 8, TTL: 5},
			}})
			var ce *fsm.CASError
			if !errors.As(r.Err, &ce) || ce.Current != tc.cur || !errors.Is(r.Err, fsm.ErrCASFailed) {
				t.Fatalf("error %v, want a CASError with current %d", r.Err, tc.cur)
			}
			if !strings.Contains(r.Err.Error(), "txn operation 2:") || r.Ops != nil || r.Revision != before.Revision() {
				t.Fatalf("refused txn: %v, ops %v, revision %d", r.Err, r.Ops, r.Revision)
			}
			if a, b := body(before), body(h.state()); a != b {
				t.Fatalf("a refused txn changed the state:\n%s", diffLines(a, b))
			}
			if evs := h.takeEvents(); len(evs) != 0 {
				t.Fatalf("a refused txn emitted %d events", len(evs))
			}
			// The same failure travels to a forwarding member unchanged.
			back, err := fsm.DecodeResult(fsm.EncodeResult(r))
			if err != nil || !errors.As(back.Err, &ce) || ce.Current != tc.cur || back.Err.Error() != r.Err.Error() {
				t.Fatalf("result round trip: %v / %v", back.Err, err)
			}
		})
	}

	// The state survives a reopen (the log replays over the checkpoint).
	before := dump(h.state())
	h.reopen()
	sameDump(t, "reopen", before, dump(h.state()))
}

// TestCheckAloneRefused: a Check outside a Txn changes nothing and says
// why; it decodes, so a log holding one replays alike everywhere.
func TestCheckAloneRefused(t *testing.T) {
	h := newHarness(t)
	h.must(put("/k", "v"))
	before := h.state()
	r := h.do(fsm.Check{Key: "/k", ModRevision: 1})
	if !errors.Is(r.Err, fsm.ErrCheckOutsideTxn) || !errors.Is(r.Err, fsm.ErrInvalidArgument) || r.Revision != 1 {
		t.Fatalf("bare check: %s (%v)", fmtResult(r), r.Err)
	}
	if !strings.Contains(r.Err.Error(), "only as an operation of a txn") {
		t.Fatalf("unclear error: %v", r.Err)
	}
	if a, b := body(before), body(h.state()); a != b {
		t.Fatalf("a bare check changed the state:\n%s", diffLines(a, b))
	}
	if err := fsm.ValidateCheck(fsm.Check{Key: "/k", ModRevision: -1}); !errors.Is(err, fsm.ErrInvalidArgument) {
		t.Fatalf("negative revision: %v", err)
	}
	if err := fsm.ValidateCheck(fsm.Check{Key: "k"}); !errors.Is(err, fsm.ErrInvalidArgument) {
		t.Fatalf("bad key: %v", err)
	}
	if err := fsm.ValidateCheck(fsm.Check{Key: "/k", ModRevision: 3}); err != nil {
		t.Fatal(err)
	}
}
