package fsm_test

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"testing"

	"github.com/rosterhq/roster/fsm"
)

func TestPutUnknownLeaseChangesNothing(t *testing.T) {
	h := newHarness(t)
	h.must(fsm.Grant{ID: 1, TTL: 10})
	h.must(putL("/k", "v", 1))
	h.must(fsm.Grant{ID: 2, TTL: 10})
	h.must(fsm.Revoke{ID: 2})
	for _, c := range []fsm.Command{
		putL("/k", "w", 2),   // revoked lease, existing key
		putL("/new", "w", 3), // never granted
		fsm.Put{Key: "/k", Value: []byte("w"), Lease: 3, IfChanged: true},
	} {
		before := h.state()
		r := h.do(c)
		if !errors.Is(r.Err, fsm.ErrLeaseNotFound) {
			t.Fatalf("%#v: err %v", c, r.Err)
		}
		if a, b := body(before), body(h.state()); a != b {
			t.Fatalf("%#v changed the state:\n%s", c, diffLines(a, b))
		}
	}
}

func TestPutMovesKeyBetweenLeases(t *testing.T) {
	h := newHarness(t)
	h.must(fsm.Grant{ID: 1, TTL: 10})
	h.must(fsm.Grant{ID: 2, TTL: 10})
	h.must(putL("/k", "v", 1))
	h.must(putL("/other", "v", 1))
	h.must(putL("/k", "w", 2))
	check := func() {
		t.Helper()
		s := h.state()
		if ks := s.LeaseKeys(1); !reflect.DeepEqual(ks, []string{"/other"}) {
			t.Fatalf("lease 1 keys %q", ks)
		}
		if ks := s.LeaseKeys(2); !reflect.DeepEqual(ks, []string{"/k"}) {
			t.Fatalf("lease 2 keys %q", ks)
		}
		if kv := h.get("/k"); kv.Lease != 2 {
			t.Fatalf("/k lease %d", kv.Lease)
		}
	}
	check()
	h.reopen()
	check()
	// Revoking the old lease no longer deletes the key.
	r := h.must(fsm.Revoke{ID: 1})
	if r.Deleted != 1 {
		t.Fatalf("revoke 1 deleted %d", r.Deleted)
	}
	h.get("/k")
	h.absent("/other")
	// The new lease does.
	h.must(fsm.Revoke{ID: 2})
	h.absent("/k")
}

func TestPutWithoutLeaseDetaches(t *testing.T) {
	h := newHarness(t)
	h.must(fsm.Grant{ID: 1, TTL: 2})
	h.must(putL("/k", "v", 1))
	h.must(put("/k", "v"))
	if ks := h.state().LeaseKeys(1); len(ks) != 0 {
		t.Fatalf("lease keys %q after put without lease", ks)
	}
	if kv := h.get("/k"); kv.Lease != 0 {
		t.Fatalf("lease %d", kv.Lease)
	}
	// Neither revocation nor expiry takes the key with it.
	h.must(fsm.Grant{ID: 2, TTL: 2})
	h.must(putL("/j", "v", 2))
	h.must(put("/j", "v"))
	if r := h.must(fsm.Tick{ElapsedMs: 5000}); r.Expired != 2 || r.Deleted != 0 {
		t.Fatalf("tick: %s", fmtResult(r))
	}
	h.get("/k")
	h.get("/j")
	// A plain delete of a leased key detaches it too.
	h.must(fsm.Grant{ID: 3, TTL: 10})
	h.must(putL("/d", "v", 3))
	h.must(fsm.Delete{Key: "/d"})
	if ks := h.state().LeaseKeys(3); len(ks) != 0 {
		t.Fatalf("lease 3 keys %q after delete", ks)
	}
	h.must(putL("/d", "v", 0))
	if r := h.must(fsm.Revoke{ID: 3}); r.Deleted != 0 {
		t.Fatalf("revoke deleted %d", r.Deleted)
	}
	h.get("/d")
}

func TestGrant(t *testing.T) {
	h := newHarness(t)
	h.must(fsm.Tick{ElapsedMs: 1234})
	r := h.must(fsm.Grant{ID: 7, TTL: 10, Name: "/esq/node-1"})
	if want := (fsm.LeaseStatus{ID: 7, TTL: 10, Remaining: 10, Name: "/esq/node-1"}); r.Lease != want {
		t.Fatalf("grant result %+v, want %+v", r.Lease, want)
	}
	h.must(fsm.Tick{ElapsedMs: 4000})
	before := h.state()
	r = h.do(fsm.Grant{ID: 7, TTL: 30, Name: "other"})
	if !errors.Is(r.Err, fsm.ErrLeaseExists) {
		t.Fatalf("duplicate grant: %v", r.Err)
	}
	if a, b := body(before), body(h.state()); a != b {
		t.Fatalf("duplicate grant changed the state:\n%s", diffLines(a, b))
	}
	ls, ok := h.state().Lease(7)
	if want := (fsm.LeaseStatus{ID: 7, TTL: 10, Remaining: 6, Name: "/esq/node-1"}); !ok || ls != want {
		t.Fatalf("lease %+v %v, want %+v", ls, ok, want)
	}
	if _, ok := h.state().Lease(8); ok {
		t.Fatal("lease 8 exists")
	}
	if ks := h.state().LeaseKeys(8); ks == nil || len(ks) != 0 {
		t.Fatalf("keys of an unknown lease: %#v", ks)
	}
}

func TestKeepAlive(t *testing.T) {
	h := newHarness(t)
	h.must(fsm.Grant{ID: 1, TTL: 2})
	h.must(fsm.Grant{ID: 2, TTL: 5, Name: "n"})
	h.must(put("/k", "v"))
	h.must(fsm.Tick{ElapsedMs: 1500})
	rev := h.state().Revision()
	r := h.must(fsm.KeepAlive{IDs: []int64{2, 999, 1, 998}})
	wantRenewed := []fsm.LeaseStatus{{ID: 2, TTL: 5, Remaining: 5, Name: "n"}, {ID: 1, TTL: 2, Remaining: 2}}
	if !reflect.DeepEqual(r.Renewed, wantRenewed) || !reflect.DeepEqual(r.NotFound, []int64{999, 998}) {
		t.Fatalf("keepalive: %s", fmtResult(r))
	}
	if r.Revision != rev || h.state().Revision() != rev {
		t.Fatalf("keepalive moved the revision to %d", h.state().Revision())
	}
	// Deadline is clock + ttl: lease 1 now expires at 3500, not 2000.
	expectExpiryIn(t, h, 1, 2000, "its renewed deadline")
	if _, ok := h.state().Lease(1); ok {
		t.Fatal("lease 1 still alive")
	}
	// Lists are empty, never nil.
	r = h.must(fsm.KeepAlive{})
	if r.Renewed == nil || r.NotFound == nil || len(r.Renewed)+len(r.NotFound) != 0 {
		t.Fatalf("empty keepalive: %#v %#v", r.Renewed, r.NotFound)
	}
	r = h.must(fsm.KeepAlive{IDs: []int64{1}})
	if len(r.Renewed) != 0 || !reflect.DeepEqual(r.NotFound, []int64{1}) {
		t.Fatalf("keepalive of an expired lease: %s", fmtResult(r))
	}
}

func TestTickExpiresExactlyAtDeadline(t *testing.T) {
	h := newHarness(t)
	h.must(fsm.Tick{ElapsedMs: 700})
	h.must(fsm.Grant{ID: 9, TTL: 2}) // deadline 2700
	h.must(putL("/svc/b", "2", 9))
	h.must(putL("/svc/a", "1", 9))
	h.must(put("/svc/c", "3"))
	h.takeEvents()
	if r := h.must(fsm.Tick{ElapsedMs: 1999}); r.Expired != 0 || r.More {
		t.Fatalf("expired 1 ms early: %s", fmtResult(r))
	}
	if h.state().Clock() != 2699 {
		t.Fatalf("clock %d", h.state().Clock())
	}
	if ls, ok := h.state().Lease(9); !ok || ls.Remaining != 1 {
		t.Fatalf("lease at 1 ms left: %+v %v", ls, ok)
	}
	rev := h.state().Revision()
	prevA, prevB := *h.get("/svc/a"), *h.get("/svc/b")
	r := h.must(fsm.Tick{ElapsedMs: 1})
	if r.Expired != 1 || r.Deleted != 2 || r.More || r.Revision != rev+2 {
		t.Fatalf("tick at deadline: %s", fmtResult(r))
	}
	s := h.state()
	if _, ok := s.Lease(9); ok || s.LeaseCount() != 0 {
		t.Fatal("lease survived its deadline")
	}
	h.absent("/svc/a")
	h.absent("/svc/b")
	h.get("/svc/c")
	evs := h.takeEvents()
	want := []string{
		fmtEvent(fsm.Event{Type: fsm.EventDelete, KV: &fsm.KV{Key: "/svc/a", ModRevision: rev + 1}, Prev: &prevA, Expired: true}),
		fmtEvent(fsm.Event{Type: fsm.EventDelete, KV: &fsm.KV{Key: "/svc/b", ModRevision: rev + 2}, Prev: &prevB, Expired: true}),
	}
	var got []string
	for _, e := range evs {
		got = append(got, fmtEvent(e))
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("events:\n got  %q\n want %q", got, want)
	}
	if h.f.Expired() != 1 {
		t.Fatalf("Expired() = %d", h.f.Expired())
	}
	// Negative elapsed time never moves the clock back.
	h.must(fsm.Tick{ElapsedMs: -500})
	if h.state().Clock() != 2700 {
		t.Fatalf("clock %d after a negative tick", h.state().Clock())
	}
}

func TestTickLimitAndMore(t *testing.T) {
	h := newHarness(t)
	// Same deadline for five leases: expiry order is by ID.
	for _, id := range []int64{50, 10, 40, 20, 30} {
		h.must(fsm.Grant{ID: id, TTL: 2})
		h.must(putL(fmt.Sprintf("/k/%d", id), "v", id))
	}
	h.must(fsm.Grant{ID: 5, TTL: 3}) // later deadline, smaller ID
	h.must(putL("/k/5", "v", 5))
	alive := func() []int64 {
		var ids []int64
		h.state().Leases(0, func(l fsm.LeaseStatus) bool { ids = append(ids, l.ID); return true })
		return ids
	}
	steps := []struct {
		tick        fsm.Tick
		expired     int64
		more        bool
		alive       []int64
		revisionAdd int64
	}{
		{fsm.Tick{ElapsedMs: 2000, Limit: 2}, 2, true, []int64{5, 30, 40, 50}, 2},
		{fsm.Tick{ElapsedMs: 0, Limit: 2}, 2, true, []int64{5, 50}, 2},
		{fsm.Tick{ElapsedMs: 0, Limit: 2}, 1, false, []int64{5}, 1},
		{fsm.Tick{ElapsedMs: 0, Limit: 2}, 0, false, []int64{5}, 0},
		{fsm.Tick{ElapsedMs: 999, Limit: 1}, 0, false, []int64{5}, 0},
		{fsm.Tick{ElapsedMs: 1, Limit: 1}, 1, false, nil, 1},
	}
	for i, st := range steps {
		rev := h.state().Revision()
		r := h.must(st.tick)
		if r.Expired != st.expired || r.More != st.more {
			t.Fatalf("step %d: %s", i, fmtResult(r))
		}
		if got := alive(); !reflect.DeepEqual(got, st.alive) {
			t.Fatalf("step %d: alive %v, want %v", i, got, st.alive)
		}
		if d := h.state().Revision() - rev; d != st.revisionAdd {
			t.Fatalf("step %d: revision +%d, want +%d", i, d, st.revisionAdd)
		}
	}
	if h.state().Clock() != 3000 || h.state().KeyCount() != 0 {
		t.Fatalf("clock %d keys %d", h.state().Clock(), h.state().KeyCount())
	}
	// Limit 0 means no limit.
	for id := int64(1); id <= 4; id++ {
		h.must(fsm.Grant{ID: id, TTL: 2})
	}
	if r := h.must(fsm.Tick{ElapsedMs: 2000}); r.Expired != 4 || r.More {
		t.Fatalf("unlimited tick: %s", fmtResult(r))
	}
	if h.f.Expired() != 10 {
		t.Fatalf("Expired() = %d, want 10", h.f.Expired())
	}
}

// TestBulkDeletesTakeConsecutiveRevisions checks prefix delete, revoke and
// expiry give each key its own revision, in key order (across leases for a
// tick), and emit one delete event per key with Prev set.
func TestBulkDeletesTakeConsecutiveRevisions(t *testing.T) {
	type setupFn func(h *harness)
	cases := []struct {
		name  string
		setup setupFn
		cmd   fsm.Command
		keys  []string
	}{
		{"prefix delete", func(h *harness) {
			for _, k := range []string{"/p/c", "/q", "/p/a", "/pq", "/p/b", "/o"} {
				h.must(put(k, k))
			}
		}, fsm.Delete{Key: "/p", Prefix: true}, []string{"/p/a", "/p/b", "/p/c", "/pq"}},
		{"revoke", func(h *harness) {
			h.must(fsm.Grant{ID: 3, TTL: 10})
			for _, k := range []string{"/l/z", "/l/a", "/m", "/l/k"} {
				h.must(putL(k, k, 3))
			}
			h.must(put("/l/b", "unleased"))
		}, fsm.Revoke{ID: 3}, []string{"/l/a", "/l/k", "/l/z", "/m"}},
		{"expiry of two leases", func(h *harness) {
			// Lease 2 falls due first, but the keys of both leases are
			// deleted in key order, interleaved.
			h.must(fsm.Grant{ID: 2, TTL: 2})
			h.must(fsm.Grant{ID: 1, TTL: 3})
			h.must(fsm.Grant{ID: 4, TTL: 60})
			h.must(putL("/x/d", "", 2))
			h.must(putL("/x/a", "", 1))
			h.must(putL("/x/c", "", 1))
			h.must(putL("/x/b", "", 2))
			h.must(putL("/x/bb", "", 4))
			h.must(fsm.Tick{ElapsedMs: 1999})
		}, fsm.Tick{ElapsedMs: 1001}, []string{"/x/a", "/x/b", "/x/c", "/x/d"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			tc.setup(h)
			h.takeEvents()
			s0 := h.state()
			rev := s0.Revision()
			r := h.must(tc.cmd)
			if r.Revision != rev+int64(len(tc.keys)) || r.Deleted != int64(len(tc.keys)) {
				t.Fatalf("result %s, want %d keys deleted", fmtResult(r), len(tc.keys))
			}
			evs := h.takeEvents()
			if len(evs) != len(tc.keys) {
				t.Fatalf("%d events, want %d", len(evs), len(tc.keys))
			}
			for i, k := range tc.keys {
				prev, _ := s0.Get(k)
				// Only a tick's deletes are expiries.
				_, byTick := tc.cmd.(fsm.Tick)
				want := fsm.Event{Type: fsm.EventDelete, KV: &fsm.KV{Key: k, ModRevision: rev + int64(i) + 1}, Prev: prev, Expired: byTick}
				if fmtEvent(evs[i]) != fmtEvent(want) {
					t.Fatalf("event %d: %s, want %s", i, fmtEvent(evs[i]), fmtEvent(want))
				}
				h.absent(k)
			}
		})
	}
}

func TestLeasesPaging(t *testing.T) {
	h := newHarness(t)
	for _, id := range []int64{30, 10, 50, 20, 40} {
		h.must(fsm.Grant{ID: id, TTL: 10})
	}
	list := func(after int64, limit int) []int64 {
		ids := []int64{}
		h.state().Leases(after, func(l fsm.LeaseStatus) bool {
			ids = append(ids, l.ID)
			return len(ids) < limit
		})
		return ids
	}
	cases := []struct {
		after int64
		limit int
		want  []int64
	}{
		{0, 100, []int64{10, 20, 30, 40, 50}},
		{0, 2, []int64{10, 20}},
		{20, 2, []int64{30, 40}},
		{25, 100, []int64{30, 40, 50}},
		{50, 100, []int64{}},
		{math.MaxInt64, 100, []int64{}},
	}
	for _, tc := range cases {
		if got := list(tc.after, tc.limit); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Leases(after=%d, limit %d) = %v, want %v", tc.after, tc.limit, got, tc.want)
		}
	}
}

// TestSlackExtendsDeadline: grants and renewals add their (non-negative)
// SlackMs to the deadline, while Remaining never shows more than the TTL.
func TestSlackExtendsDeadline(t *testing.T) {
	h := newHarness(t)
	r := h.must(fsm.Grant{ID: 1, TTL: 2, SlackMs: 300})
	if r.Lease.Remaining != 2 {
		t.Fatalf("remaining %d with slack, want the TTL (2)", r.Lease.Remaining)
	}
	h.must(fsm.Grant{ID: 2, TTL: 2, SlackMs: -50}) // negative slack is ignored
	h.must(fsm.Grant{ID: 3, TTL: 2})
	if r := h.must(fsm.Tick{ElapsedMs: 1999}); r.Expired != 0 {
		t.Fatalf("early expiry: %s", fmtResult(r))
	}
	if r := h.must(fsm.Tick{ElapsedMs: 1}); r.Expired != 2 {
		t.Fatalf("at 2000 ms: %s", fmtResult(r))
	}
	if ls, ok := h.state().Lease(1); !ok || ls.Remaining != 1 {
		t.Fatalf("lease with slack at 2000 ms: %+v %v", ls, ok)
	}
	if r := h.must(fsm.Tick{ElapsedMs: 299}); r.Expired != 0 {
		t.Fatalf("slack lease expired early: %s", fmtResult(r))
	}
	if r := h.must(fsm.Tick{ElapsedMs: 1}); r.Expired != 1 {
		t.Fatalf("slack lease not expired at 2300 ms: %s", fmtResult(r))
	}

	h.must(fsm.Grant{ID: 4, TTL: 5}) // clock 2300, deadline 7300
	h.must(fsm.Tick{ElapsedMs: 1000})
	r = h.must(fsm.KeepAlive{IDs: []int64{4, 99}, SlackMs: 700}) // deadline 3300+5000+700
	if want := []fsm.LeaseStatus{{ID: 4, TTL: 5, Remaining: 5}}; !reflect.DeepEqual(r.Renewed, want) || !reflect.DeepEqual(r.NotFound, []int64{99}) {
		t.Fatalf("keepalive with slack: %s", fmtResult(r))
	}
	h.reopen() // the deadline, slack included, is persisted
	expectExpiryIn(t, h, 4, 5700, "clock+ttl+slack")
}

// The largest lease ID ever granted survives revocation, expiry and a
// reopen: the leader picks new IDs above it, so none is issued twice.
func TestMaxLeaseIDSurvivesRevokeAndReopen(t *testing.T) {
	h := newHarness(t)
	h.must(fsm.Grant{ID: 900, TTL: 10})
	h.must(fsm.Grant{ID: 70, TTL: 2})
	h.must(fsm.Revoke{ID: 900})
	h.must(fsm.Tick{ElapsedMs: 3000})
	if h.state().LeaseCount() != 0 {
		t.Fatalf("leases left: %d", h.state().LeaseCount())
	}
	if got := h.state().MaxLeaseID(); got != 900 {
		t.Fatalf("MaxLeaseID = %d, want 900", got)
	}
	h.reopen()
	if got := h.state().MaxLeaseID(); got != 900 {
		t.Fatalf("after reopen MaxLeaseID = %d, want 900", got)
	}
	if r := h.do(fsm.Grant{ID: 900, TTL: 10}); r.Err != nil {
		t.Fatalf("an explicit re-grant of a revoked ID is the client's choice: %v", r.Err)
	}
}

// expectExpiryIn ticks ms-1 milliseconds, which lease id (the only one
// due) must outlive, showing 1 s remaining, then 1 more, at which it must
// expire: its deadline is exactly ms away. at names the deadline.
func expectExpiryIn(t *testing.T, h *harness, id, ms int64, at string) {
	t.Helper()
	if r := h.must(fsm.Tick{ElapsedMs: ms - 1}); r.Expired != 0 {
		t.Fatalf("lease %d expired before %s: %s", id, at, fmtResult(r))
	}
	if ls, ok := h.state().Lease(id); !ok || ls.Remaining != 1 {
		t.Fatalf("lease %d at 1 ms before %s: %+v %v, want 1 s remaining", id, at, ls, ok)
	}
	if r := h.must(fsm.Tick{ElapsedMs: 1}); r.Expired != 1 {
		t.Fatalf("lease %d not expired at %s: %s", id, at, fmtResult(r))
	}
}

// TestLeasePastItsDeadlineIsNotRenewed: a tick that expires more leases
// than its limit leaves the rest, their deadline passed, for the next
// ticks. Until those apply, such a lease is expired, not alive: a
// keep-alive that arrived in between used to renew it to a full TTL and a
// put used to attach a new key to it, so a lease that had gone unrenewed
// for longer than its TTL came back with its keys. Entries proposed
// before the rule (without fsm.StrictDeadlines) apply as they did then.
func TestLeasePastItsDeadlineIsNotRenewed(t *testing.T) {
	h := pastDeadline(t)
	before := body(h.state())
	r := h.must(fsm.StrictDeadlines(fsm.KeepAlive{IDs: []int64{2}, SlackMs: 100}))
	if len(r.Renewed) != 0 || !reflect.DeepEqual(r.NotFound, []int64{2}) {
		t.Fatalf("keep-alive of a lease past its deadline: %s", fmtResult(r))
	}
	for _, c := range []fsm.Command{
		putL("/k3", "v", 2),
		putL("/k2", "w", 2),
		fsm.Txn{Ops: []fsm.Command{put("/t", "v"), putL("/k4", "v", 2)}},
	} {
		if r := h.do(fsm.StrictDeadlines(c)); !errors.Is(r.Err, fsm.ErrLeaseNotFound) {
			t.Fatalf("%#v: %s", c, fmtResult(r))
		}
	}
	if after := body(h.state()); after != before {
		t.Fatalf("the refused commands changed the state:\n%s", diffLines(before, after))
	}
	// The next tick expires it, with its key.
	if r := h.must(fsm.Tick{Limit: 1}); r.Expired != 1 || r.More {
		t.Fatalf("draining tick: %s", fmtResult(r))
	}
	h.absent("/k2")
	if _, ok := h.state().Lease(2); ok {
		t.Fatal("lease 2 still alive")
	}

	// An older build's entries replay as they applied then, on every
	// replica alike.
	old := pastDeadline(t)
	if r := old.must(fsm.KeepAlive{IDs: []int64{2}, SlackMs: 100}); len(r.Renewed) != 1 {
		t.Fatalf("an older build's keep-alive of a lease past its deadline: %s", fmtResult(r))
	}
	old.must(putL("/k3", "v", 2))
}

// pastDeadline is a state in which lease 2 (key /k2) is past its deadline
// but still in the table: the tick that expired lease 1 reached its limit.
func pastDeadline(t *testing.T) *harness {
	h := newHarness(t)
	h.must(fsm.Grant{ID: 1, TTL: 2})
	h.must(fsm.Grant{ID: 2, TTL: 2})
	h.must(putL("/k2", "v", 2))
	if r := h.must(fsm.Tick{ElapsedMs: 2500, Limit: 1}); r.Expired != 1 || !r.More {
		t.Fatalf("tick: %s", fmtResult(r))
	}
	return h
}

// TestDropOldLease: a write with DropOldLease (the Redis port's) that
// takes a key off the lease named after it, leaving that lease without
// keys, drops the lease in the same entry; a loop of SET k v EX n used to
// pile up one keyless lease per write until each one's TTL ran out.
// Leases with other keys, or named otherwise, stay; entries without the
// flag apply as before; the outcome survives a restart's replay.
func TestDropOldLease(t *testing.T) {
	setEx := func(key string, id int64) fsm.Txn { // SET key v EX 10
		return fsm.Txn{Ops: []fsm.Command{
			fsm.Grant{ID: id, TTL: 10, Name: key},
			fsm.Put{Key: key, Value: []byte("v"), Lease: id, Strict: true, DropOldLease: true},
		}}
	}
	leases := func(h *harness) []int64 {
		var ids []int64
		h.state().Leases(0, func(l fsm.LeaseStatus) bool {
			ids = append(ids, l.ID)
			return true
		})
		return ids
	}
	h := newHarness(t)
	for id := int64(1); id <= 5; id++ {
		h.must(setEx("/k", id))
		if got := leases(h); !reflect.DeepEqual(got, []int64{id}) {
			t.Fatalf("after SET EX number %d: leases %v", id, got)
		}
	}
	// SET without a TTL, PERSIST (a put without a lease), DEL.
	h.must(fsm.Put{Key: "/k", Value: []byte("w"), DropOldLease: true})
	h.must(setEx("/k", 6))
	h.must(fsm.Txn{Ops: []fsm.Command{fsm.Delete{Key: "/k", DropOldLease: true}}})
	h.must(setEx("/k", 7))
	h.must(fsm.Delete{Key: "/k", DropOldLease: true})
	if got := leases(h); len(got) != 0 {
		t.Fatalf("leases left: %v", got)
	}

	// A lease that keeps another key, or is named otherwise, stays.
	h.must(setEx("/a", 10))
	h.must(putL("/b", "v", 10)) // over HTTP, on /a's lease
	h.must(setEx("/a", 11))
	h.must(fsm.Grant{ID: 12, TTL: 10, Name: "svc"})
	h.must(putL("/c", "v", 12))
	h.must(fsm.Put{Key: "/c", Value: []byte("v"), DropOldLease: true})
	if got := leases(h); !reflect.DeepEqual(got, []int64{10, 11, 12}) {
		t.Fatalf("leases %v, want 10 11 12", got)
	}
	// In a txn, a later operation putting a key on the lease keeps it.
	h.must(fsm.Txn{Ops: []fsm.Command{
		fsm.Put{Key: "/a", Value: []byte("v"), DropOldLease: true},
		fsm.Put{Key: "/d", Value: []byte("v"), Lease: 11},
	}})
	if ks := h.state().LeaseKeys(11); !reflect.DeepEqual(ks, []string{"/d"}) {
		t.Fatalf("lease 11 keys %q", ks)
	}
	// A refused write drops nothing.
	h.must(setEx("/e", 13))
	if r := h.do(fsm.Put{Key: "/e", DropOldLease: true, HasCAS: true, CAS: 1}); !errors.Is(r.Err, fsm.ErrCASFailed) {
		t.Fatalf("stale put: %v", r.Err)
	}
	if _, ok := h.state().Lease(13); !ok {
		t.Fatal("a refused put dropped the lease")
	}

	// An entry written before the flag leaves the lease, as it did.
	h.must(fsm.Txn{Ops: []fsm.Command{fsm.Grant{ID: 20, TTL: 10, Name: "/old"}, putL("/old", "v", 20)}})
	h.must(put("/old", "w"))
	if _, ok := h.state().Lease(20); !ok {
		t.Fatal("a put without the flag dropped the lease")
	}

	want := body(h.state())
	h.reopen()
	if got := body(h.state()); got != want {
		t.Fatalf("replay differs:\n%s", diffLines(want, got))
	}
}
