package fsm_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/rosterhq/roster/fsm"
)

// TestTxnAppliesInOperationOrder: every operation applies in one entry, the
// changed keys take consecutive revisions in operation order (not key
// order), watchers see the events in that order, and each operation
// reports its own result.
func TestTxnAppliesInOperationOrder(t *testing.T) {
	h := newHarness(t)
	h.must(put("/c", "old"))
	h.must(put("/z", "z1")) // revision 2
	h.takeEvents()

	const L = 500
	r := h.must(fsm.Txn{Ops: []fsm.Command{
		fsm.Grant{ID: L, TTL: 10, Name: "/svc", SlackMs: 200},
		fsm.Put{Key: "/z", Value: []byte("z2"), Lease: L, HasCAS: true, CAS: 2},
		fsm.Put{Key: "/a", Value: []byte("a1")},
		fsm.Delete{Key: "/c", HasCAS: true, CAS: 1},
		fsm.Delete{Key: "/absent"},
	}})
	if r.Revision != 5 || len(r.Ops) != 5 {
		t.Fatalf("txn result: %s ops=%d", fmtResult(r), len(r.Ops))
	}
	if g := r.Ops[0]; g.Lease.ID != L || g.Lease.TTL != 10 || g.Lease.Name != "/svc" {
		t.Fatalf("grant result %s", fmtResult(g))
	}
	if p := r.Ops[1]; p.Revision != 3 || p.Prev == nil || string(p.Prev.Value) != "z1" {
		t.Fatalf("put /z result %s", fmtResult(p))
	}
	if p := r.Ops[2]; p.Revision != 4 || p.Prev != nil {
		t.Fatalf("put /a result %s", fmtResult(p))
	}
	if d := r.Ops[3]; d.Revision != 5 || d.Deleted != 1 || string(d.Prev.Value) != "old" {
		t.Fatalf("delete /c result %s", fmtResult(d))
	}
	if d := r.Ops[4]; d.Revision != 5 || d.Deleted != 0 || d.Prev != nil {
		t.Fatalf("delete /absent result %s", fmtResult(d))
	}
	var got []string
	for _, ev := range h.takeEvents() {
		got = append(got, fmtEvent(ev))
	}
	want := []string{
		"type=1 kv={\"/z\" 7a32 c=2 m=3 v=2 l=500} prev={\"/z\" 7a31 c=2 m=2 v=1 l=0}",
		"type=1 kv={\"/a\" 6131 c=4 m=4 v=1 l=0} prev=<nil>",
		"type=2 kv={\"/c\"  c=0 m=5 v=0 l=0} prev={\"/c\" 6f6c64 c=1 m=1 v=1 l=0}",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("events\n got  %q\n want %q", got, want)
	}
	s := h.state()
	if keys := s.LeaseKeys(L); strings.Join(keys, ",") != "/z" {
		t.Fatalf("lease keys %q", keys)
	}
	// The granted lease has its slack like a plain grant; it expires with
	// its key on the tick that passes its deadline.
	h.must(fsm.Tick{ElapsedMs: 10_199})
	h.get("/z")
	h.must(fsm.Tick{ElapsedMs: 1})
	h.absent("/z")

	before := dump(h.state())
	h.reopen()
	sameDump(t, "reopen", before, dump(h.state()))
}

// TestTxnAllOrNothing: a Txn that fails any condition, or that is not
// well formed, changes nothing at all, whichever operation fails.
func TestTxnAllOrNothing(t *testing.T) {
	const A = 100
	setup := []fsm.Command{fsm.Grant{ID: A, TTL: 60}, put("/k", "v"), putL("/l", "x", A)} // /k at revision 1
	ok := []fsm.Command{put("/new", "n"), fsm.Grant{ID: 300, TTL: 5}, putL("/new2", "n", 300)}
	with := func(bad fsm.Command) fsm.Txn {
		return fsm.Txn{Ops: append(append([]fsm.Command{}, ok...), bad)}
	}
	cases := []struct {
		name string
		txn  fsm.Txn
		err  string
	}{
		{"put cas stale", with(fsm.Put{Key: "/k", HasCAS: true, CAS: 7}), "cas(current=1)"},
		{"put create-only existing", with(fsm.Put{Key: "/k", HasCAS: true}), "cas(current=1)"},
		{"delete cas stale", with(fsm.Delete{Key: "/k", HasCAS: true, CAS: 2}), "cas(current=1)"},
		{"put unknown lease", with(putL("/x", "v", 999)), "lease_not_found"},
		{"lease granted after its put", fsm.Txn{Ops: []fsm.Command{putL("/x", "v", 400), fsm.Grant{ID: 400, TTL: 5}}}, "lease_not_found"},
		{"grant existing", with(fsm.Grant{ID: A, TTL: 5}), "lease_exists"},
		{"grant twice", with(fsm.Grant{ID: 300, TTL: 5}), "lease_exists"},
		{"key twice", with(put("/new", "again")), "invalid_argument"},
		{"put then delete one key", with(fsm.Delete{Key: "/new"}), "invalid_argument"},
		{"prefix delete", with(fsm.Delete{Key: "/", Prefix: true}), "invalid_argument"},
		{"check stale", with(fsm.Check{Key: "/k", ModRevision: 2}), "cas(current=1)"},
		{"check absent, key exists", with(fsm.Check{Key: "/k"}), "cas(current=1)"},
		{"check present, key absent", with(fsm.Check{Key: "/nope", ModRevision: 1}), "cas(current=0)"},
		{"check of a key the txn writes", with(fsm.Check{Key: "/new2"}), "invalid_argument"},
		{"first op fails", fsm.Txn{Ops: append([]fsm.Command{fsm.Put{Key: "/k", HasCAS: true, CAS: 9}}, ok...)}, "cas(current=1)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			for _, c := range setup {
				h.must(c)
			}
			h.takeEvents()
			before := h.state()
			r := h.do(tc.txn)
			if got := errClass(r.Err); got != tc.err {
				t.Fatalf("error %s (%v), want %s", got, r.Err, tc.err)
			}
			if !strings.Contains(r.Err.Error(), "txn operation ") || r.Ops != nil || r.Revision != before.Revision() {
				t.Fatalf("refused txn result: %v, ops %v, revision %d", r.Err, r.Ops, r.Revision)
			}
			if a, b := body(before), body(h.state()); a != b {
				t.Fatalf("a refused txn changed the state:\n%s", diffLines(a, b))
			}
			if evs := h.takeEvents(); len(evs) != 0 {
				t.Fatalf("a refused txn emitted %d events", len(evs))
			}
		})
	}
}

// TestTxnMovesKeyToNewLease is what EXPIRE does: grant a lease and re-put
// the key under it, compared on its mod revision. The key leaves its old
// lease, which lives on without it.
func TestTxnMovesKeyToNewLease(t *testing.T) {
	h := newHarness(t)
	const A, B = 100, 200
	h.must(fsm.Grant{ID: A, TTL: 60})
	h.must(putL("/k", "v", A)) // revision 1
	r := h.must(fsm.Txn{Ops: []fsm.Command{
		fsm.Grant{ID: B, TTL: 5},
		fsm.Put{Key: "/k", Value: []byte("v"), Lease: B, HasCAS: true, CAS: 1},
	}})
	if r.Revision != 2 {
		t.Fatalf("result %s", fmtResult(r))
	}
	s := h.state()
	if len(s.LeaseKeys(A)) != 0 || strings.Join(s.LeaseKeys(B), ",") != "/k" {
		t.Fatalf("lease keys: A %q, B %q", s.LeaseKeys(A), s.LeaseKeys(B))
	}
	if kv := h.get("/k"); kv.Lease != B || kv.Version != 2 || kv.CreateRevision != 1 {
		t.Fatalf("kv %s", fmtKV(kv))
	}
	// The same again with the old mod revision is refused: someone wrote.
	r = h.do(fsm.Txn{Ops: []fsm.Command{fsm.Grant{ID: 300, TTL: 5}, fsm.Put{Key: "/k", Lease: 300, HasCAS: true, CAS: 1}}})
	var ce *fsm.CASError
	if !errors.As(r.Err, &ce) || ce.Current != 2 {
		t.Fatalf("stale txn: %v", r.Err)
	}
	if _, ok := h.state().Lease(300); ok {
		t.Fatal("the refused txn's grant took effect")
	}
}

// TestTxnRevisionMoves: IfChanged puts that change nothing take no
// revision, an empty Txn changes nothing, and a Txn moves the revision by
// the keys it changed.
func TestTxnRevisionMoves(t *testing.T) {
	h := newHarness(t)
	h.must(put("/a", "1"))
	before := h.state()
	r := h.must(fsm.Txn{})
	if r.Revision != 1 || body(before) != body(h.state()) || len(r.Ops) != 0 {
		t.Fatalf("empty txn: %s", fmtResult(r))
	}
	r = h.must(fsm.Txn{Ops: []fsm.Command{
		fsm.Put{Key: "/a", Value: []byte("1"), IfChanged: true},
		fsm.Put{Key: "/b", Value: []byte("2"), IfChanged: true},
		fsm.Grant{ID: 9, TTL: 3},
	}})
	if r.Revision != 2 || r.Ops[0].Revision != 1 || r.Ops[1].Revision != 2 {
		t.Fatalf("ifchanged txn: %s / %s / %s", fmtResult(r), fmtResult(r.Ops[0]), fmtResult(r.Ops[1]))
	}
	if kv := h.get("/a"); kv.ModRevision != 1 {
		t.Fatalf("unchanged key rewritten: %s", fmtKV(kv))
	}
}

// TestLeaseRemainingMs: milliseconds left on the lease clock, capped at
// the TTL (slack may put the deadline further out), 0 once due.
func TestLeaseRemainingMs(t *testing.T) {
	h := newHarness(t)
	h.must(fsm.Grant{ID: 1, TTL: 5, SlackMs: 300})
	h.must(fsm.Grant{ID: 2, TTL: 2})
	h.must(fsm.Tick{ElapsedMs: 1250})
	for id, want := range map[int64]int64{1: 4050, 2: 750} {
		if got, ok := h.state().LeaseRemainingMs(id); !ok || got != want {
			t.Errorf("lease %d: %d ms (%v), want %d", id, got, ok, want)
		}
	}
	h.must(fsm.Grant{ID: 3, TTL: 5, SlackMs: 900})
	if got, _ := h.state().LeaseRemainingMs(3); got != 5000 {
		t.Errorf("slack shows: %d ms", got)
	}
	if _, ok := h.state().LeaseRemainingMs(99); ok {
		t.Error("unknown lease found")
	}
}
