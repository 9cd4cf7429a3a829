package fsm_test

import (
	"errors"
	"math"
	"strconv"
	"testing"

	"github.com/rosterhq/roster/fsm"
)

// TestTxnIncrAppliesAtApplyTime: an Incr inside a Txn (the Redis port's
// EXEC) adds to the key as it is when the entry applies, keeps the key's
// lease, and answers the new value in its own result; one that fails (not
// an integer, overflow) answers its own error, changes nothing, and the
// Txn's other operations still apply, each taking its revision in order.
func TestTxnIncrAppliesAtApplyTime(t *testing.T) {
	h := newHarness(t)
	h.must(fsm.Grant{ID: 7, TTL: 60, Name: "/n"})
	h.must(putL("/n", "41", 7))                               // revision 1
	h.must(put("/s", "abc"))                                  // 2
	h.must(put("/max", strconv.FormatInt(math.MaxInt64, 10))) // 3
	h.must(put("/plus", "+5"))                                // 4: not canonical
	h.takeEvents()

	r := h.must(fsm.Txn{Ops: []fsm.Command{
		fsm.Incr{Key: "/n", By: 1, Canonical: true},
		fsm.Incr{Key: "/s", By: 1, Canonical: true},
		fsm.Put{Key: "/x", Value: []byte("x")},
		fsm.Incr{Key: "/max", By: 1, Canonical: true},
		fsm.Incr{Key: "/plus", By: 1, Canonical: true},
		fsm.Incr{Key: "/new", By: -3, Canonical: true},
	}})
	if r.Err != nil || r.Revision != 7 || len(r.Ops) != 6 {
		t.Fatalf("txn: %s", fmtResult(r))
	}
	if op := r.Ops[0]; op.Err != nil || op.Value != 42 || op.Revision != 5 || op.Prev == nil || string(op.Prev.Value) != "41" {
		t.Fatalf("incr /n: %s", fmtResult(op))
	}
	if op := r.Ops[1]; !errors.Is(op.Err, fsm.ErrInvalidArgument) || errors.Is(op.Err, fsm.ErrOverflow) || op.Revision != 5 {
		t.Fatalf("incr /s: %s (%v)", fmtResult(op), op.Err)
	}
	if op := r.Ops[3]; !errors.Is(op.Err, fsm.ErrOverflow) {
		t.Fatalf("incr /max: %s (%v)", fmtResult(op), op.Err)
	}
	if op := r.Ops[4]; !errors.Is(op.Err, fsm.ErrInvalidArgument) || errors.Is(op.Err, fsm.ErrOverflow) {
		t.Fatalf("incr /plus: %s (%v)", fmtResult(op), op.Err)
	}
	if op := r.Ops[5]; op.Err != nil || op.Value != -3 || op.Revision != 7 || op.Prev != nil {
		t.Fatalf("incr /new: %s", fmtResult(op))
	}
	if kv := h.get("/n"); string(kv.Value) != "42" || kv.Lease != 7 || kv.ModRevision != 5 {
		t.Fatalf("/n: %s", fmtKV(kv))
	}
	if kv := h.get("/x"); kv.ModRevision != 6 {
		t.Fatalf("/x: %s", fmtKV(kv))
	}
	for key, want := range map[string]string{"/s": "abc", "/plus": "+5", "/max": strconv.FormatInt(math.MaxInt64, 10), "/new": "-3"} {
		if kv := h.get(key); string(kv.Value) != want {
			t.Fatalf("%s: %s, want %q", key, fmtKV(kv), want)
		}
	}
	if evs := h.takeEvents(); len(evs) != 3 {
		t.Fatalf("events %v: want the writes of /n, /x and /new", evs)
	}

	// A key twice is refused whole, as for every operation.
	before := body(h.state())
	r = h.do(fsm.Txn{Ops: []fsm.Command{fsm.Incr{Key: "/n", By: 1}, fsm.Put{Key: "/n", Value: []byte("1")}}})
	if !errors.Is(r.Err, fsm.ErrInvalidArgument) {
		t.Fatalf("key twice: %s", fmtResult(r))
	}
	// A failed compare of another operation refuses the increment too.
	r = h.do(fsm.Txn{Ops: []fsm.Command{fsm.Incr{Key: "/n", By: 1}, fsm.Check{Key: "/x", ModRevision: 1}}})
	if !errors.Is(r.Err, fsm.ErrCASFailed) {
		t.Fatalf("check failing: %s", fmtResult(r))
	}
	sameDump(t, "refused txns", before, body(h.state()))
}

// TestPutOnly: a put with Only writes only when the key is absent
// (PutIfAbsent) or present (PutIfPresent) as it applies; otherwise it
// writes nothing, fails nothing (in a Txn the other operations apply) and
// its result's Prev is the key as it was, so the caller tells which; a
// lease its Txn granted for it, left without keys, goes.
func TestPutOnly(t *testing.T) {
	h := newHarness(t)
	h.must(fsm.Grant{ID: 7, TTL: 60, Name: "/held"})
	h.must(putL("/held", "old", 7)) // revision 1
	h.takeEvents()

	// In a Txn: NX of a held key and XX of an absent one write nothing,
	// the other operations apply.
	r := h.must(fsm.Txn{Ops: []fsm.Command{
		fsm.Put{Key: "/held", Value: []byte("nx"), Only: fsm.PutIfAbsent, DropOldLease: true},
		fsm.Put{Key: "/absent", Value: []byte("xx"), Only: fsm.PutIfPresent},
		fsm.Put{Key: "/w", Value: []byte("w")},
	}})
	if r.Revision != 2 || r.Ops[0].Prev == nil || string(r.Ops[0].Prev.Value) != "old" || r.Ops[1].Prev != nil {
		t.Fatalf("txn: %s", fmtResult(r))
	}
	if kv := h.get("/held"); string(kv.Value) != "old" || kv.Lease != 7 || kv.ModRevision != 1 {
		t.Fatalf("/held: %s", fmtKV(kv))
	}
	h.absent("/absent")
	if _, ok := h.state().Lease(7); !ok {
		t.Fatal("a put that did not write dropped the key's lease")
	}

	// Both conditions holding: written, the lease the key left dropped.
	r = h.must(fsm.Txn{Ops: []fsm.Command{
		fsm.Put{Key: "/held", Value: []byte("xx"), Only: fsm.PutIfPresent, DropOldLease: true},
		fsm.Put{Key: "/fresh", Value: []byte("nx"), Only: fsm.PutIfAbsent},
	}})
	if r.Revision != 4 || r.Ops[0].Prev == nil || r.Ops[1].Prev != nil {
		t.Fatalf("txn: %s", fmtResult(r))
	}
	if kv := h.get("/held"); string(kv.Value) != "xx" || kv.Lease != 0 {
		t.Fatalf("/held: %s", fmtKV(kv))
	}
	if _, ok := h.state().Lease(7); ok {
		t.Fatal("the lease /held left stayed")
	}
	if kv := h.get("/fresh"); string(kv.Value) != "nx" {
		t.Fatalf("/fresh: %s", fmtKV(kv))
	}

	// A lease the Txn granted for a put that wrote nothing goes (SET … NX
	// EX of a key that exists); one another put of the Txn uses stays.
	r = h.must(fsm.Txn{Ops: []fsm.Command{
		fsm.Grant{ID: 20, TTL: 30, Name: "/fresh"},
		fsm.Put{Key: "/fresh", Value: []byte("nx"), Lease: 20, Only: fsm.PutIfAbsent, DropOldLease: true},
		fsm.Grant{ID: 21, TTL: 30, Name: "/nope"},
		fsm.Put{Key: "/nope", Value: []byte("xx"), Lease: 21, Only: fsm.PutIfPresent},
		fsm.Put{Key: "/also", Value: []byte("x"), Lease: 21},
	}})
	if r.Ops[1].Prev == nil || r.Ops[3].Prev != nil || r.Ops[0].Lease.ID != 20 {
		t.Fatalf("txn: %s", fmtResult(r))
	}
	if _, ok := h.state().Lease(20); ok {
		t.Fatal("the lease granted for a put not made stayed")
	}
	if _, ok := h.state().Lease(21); !ok {
		t.Fatal("a lease another put of the Txn uses went")
	}
	h.absent("/nope")
	if kv := h.get("/fresh"); kv.Lease != 0 || string(kv.Value) != "nx" {
		t.Fatalf("/fresh: %s", fmtKV(kv))
	}
	revision := r.Revision

	// Alone, the same rule.
	if r := h.must(fsm.Put{Key: "/fresh", Value: []byte("again"), Only: fsm.PutIfAbsent}); r.Prev == nil || r.Revision != revision {
		t.Fatalf("NX of an existing key alone: %s", fmtResult(r))
	}
	if r := h.must(fsm.Put{Key: "/nope", Value: []byte("x"), Only: fsm.PutIfPresent}); r.Prev != nil || r.Revision != revision {
		t.Fatalf("XX of an absent key alone: %s", fmtResult(r))
	}
	h.absent("/nope")
	if r := h.must(fsm.Put{Key: "/fresh", Value: []byte("xx"), Only: fsm.PutIfPresent}); r.Prev == nil || r.Revision != revision+1 {
		t.Fatalf("XX of an existing key alone: %s", fmtResult(r))
	}
}

// TestApplyTimeOpsDeterministic: the same entries holding the apply-time
// operations, applied on two replicas, one of them reopened from its
// bbolt file and one replaying the log from the start, leave the same
// state (the determinism workload draws them too).
func TestApplyTimeOpsDeterministic(t *testing.T) {
	cmds := []fsm.Command{
		fsm.Grant{ID: 3, TTL: 30, Name: "/c"},
		putL("/c", "9", 3),
		put("/s", "abc"),
		fsm.Txn{Ops: []fsm.Command{
			fsm.Incr{Key: "/c", By: 1, Canonical: true},
			fsm.Incr{Key: "/s", By: 1, Canonical: true},
			fsm.Put{Key: "/s2", Value: []byte("v"), Only: fsm.PutIfAbsent},
			fsm.Put{Key: "/s3", Value: []byte("v"), Only: fsm.PutIfPresent},
		}},
		fsm.Txn{Ops: []fsm.Command{
			fsm.Incr{Key: "/c", By: -20, Canonical: true},
			fsm.Put{Key: "/s2", Value: []byte("w"), Only: fsm.PutIfAbsent},
		}},
	}
	a, b := newHarness(t), newHarness(t)
	ra, rb := a.apply(cmds...), b.apply(cmds...)
	for i := range ra {
		if fmtResult(ra[i]) != fmtResult(rb[i]) {
			t.Fatalf("entry %d: %s vs %s", i, fmtResult(ra[i]), fmtResult(rb[i]))
		}
	}
	want := dump(a.state())
	sameDump(t, "two replicas", want, dump(b.state()))
	b.reopen()
	sameDump(t, "reopened", want, dump(b.state()))
	if kv := a.get("/c"); string(kv.Value) != "-10" || kv.Lease != 3 {
		t.Fatalf("/c: %s", fmtKV(kv))
	}
}
