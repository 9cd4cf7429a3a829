package fsm_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/rosterhq/roster/fsm"
)

func put(key, value string) fsm.Put { return fsm.Put{Key: key, Value: []byte(value)} }

func putL(key, value string, leaseID int64) fsm.Put {
	return fsm.Put{Key: key, Value: []byte(value), Lease: leaseID}
}

// body is a dump without its applied index: what a command that "changes
// nothing" must leave alone (applying any entry moves the applied index).
func body(s *fsm.State) string {
	d := dump(s)
	return d[strings.IndexByte(d, ' ')+1:]
}

func keysOf(s *fsm.State, prefix, after string) []string {
	ks := []string{}
	s.Range(prefix, after, func(kv *fsm.KV) bool {
		ks = append(ks, kv.Key)
		return true
	})
	return ks
}

func TestPutGetAndKVRevisions(t *testing.T) {
	h := newHarness(t)
	r := h.must(put("/a", "1"))
	if r.Revision != 1 || r.Prev != nil {
		t.Fatalf("first put: %s", fmtResult(r))
	}
	want := fsm.KV{Key: "/a", Value: []byte("1"), CreateRevision: 1, ModRevision: 1, Version: 1}
	if got := *h.get("/a"); !reflect.DeepEqual(got, want) {
		t.Fatalf("get /a = %s, want %s", fmtKV(&got), fmtKV(&want))
	}
	if r := h.must(put("/b", "x")); r.Revision != 2 {
		t.Fatalf("second put revision %d", r.Revision)
	}
	r = h.must(put("/a", "2"))
	if r.Revision != 3 || fmtKV(r.Prev) != fmtKV(&want) {
		t.Fatalf("overwrite: %s", fmtResult(r))
	}
	got := h.get("/a")
	if got.CreateRevision != 1 || got.ModRevision != 3 || got.Version != 2 || string(got.Value) != "2" {
		t.Fatalf("after overwrite: %s", fmtKV(got))
	}
	// A delete ends the key's life: recreating starts a new one.
	if r := h.must(fsm.Delete{Key: "/a"}); r.Revision != 4 || r.Deleted != 1 || r.Prev.ModRevision != 3 {
		t.Fatalf("delete: %s", fmtResult(r))
	}
	h.absent("/a")
	h.must(put("/a", "3"))
	if got := h.get("/a"); got.CreateRevision != 5 || got.ModRevision != 5 || got.Version != 1 {
		t.Fatalf("recreated: %s", fmtKV(got))
	}
	// Binary and empty values are stored as given.
	bin := []byte{0, 0xff, 1, 0x80}
	h.must(fsm.Put{Key: "/bin", Value: bin})
	if got := h.get("/bin"); string(got.Value) != string(bin) {
		t.Fatalf("binary value %x", got.Value)
	}
	h.must(fsm.Put{Key: "/empty"})
	if got := h.get("/empty"); len(got.Value) != 0 || got.Version != 1 {
		t.Fatalf("empty value %s", fmtKV(got))
	}
	s := h.state()
	if s.Revision() != 7 || s.KeyCount() != 4 {
		t.Fatalf("revision %d keys %d", s.Revision(), s.KeyCount())
	}
	// The same holds after the index is rebuilt from bbolt.
	before := dump(s)
	h.reopen()
	sameDump(t, "reopen", before, dump(h.state()))
}

func TestRange(t *testing.T) {
	h := newHarness(t)
	for _, k := range []string{"/q", "/p/b", "/pq", "/p/a", "/p", "/o/z", "/p/a/x"} {
		h.must(put(k, k))
	}
	s := h.state()
	cases := []struct {
		prefix, after string
		want          []string
	}{
		{"/p", "", []string{"/p", "/p/a", "/p/a/x", "/p/b", "/pq"}}, // plain byte prefix
		{"/p/", "", []string{"/p/a", "/p/a/x", "/p/b"}},
		{"/p", "/p/a", []string{"/p/a/x", "/p/b", "/pq"}},
		{"/p", "/p/a/x", []string{"/p/b", "/pq"}},
		{"/p", "/a", []string{"/p", "/p/a", "/p/a/x", "/p/b", "/pq"}}, // after before the prefix
		{"/p", "/pz", []string{}},
		{"/p", "/p/0", []string{"/p/a", "/p/a/x", "/p/b", "/pq"}}, // after need not exist
		{"/zz", "", []string{}},
		{"/", "", []string{"/o/z", "/p", "/p/a", "/p/a/x", "/p/b", "/pq", "/q"}},
		{"", "", []string{"/o/z", "/p", "/p/a", "/p/a/x", "/p/b", "/pq", "/q"}},
	}
	for _, tc := range cases {
		if got := keysOf(s, tc.prefix, tc.after); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Range(%q, %q) = %q, want %q", tc.prefix, tc.after, got, tc.want)
		}
	}
	// fn returning false stops the scan.
	n := 0
	s.Range("/", "", func(*fsm.KV) bool { n++; return n < 2 })
	if n != 2 {
		t.Fatalf("Range did not stop: %d calls", n)
	}
}

// TestRevisionMoves lists, per kind of command, how far it moves the store
// revision. Commands that fail must also leave the state alone.
func TestRevisionMoves(t *testing.T) {
	const A, B = 100, 200
	setup := []fsm.Command{
		fsm.Grant{ID: A, TTL: 2}, fsm.Grant{ID: B, TTL: 60},
		put("/k", "v"), put("/n", "41"), put("/s", "text"),
		putL("/l/2", "x", A), putL("/l/1", "x", A), putL("/l/3", "x", A),
		put("/p/a", "1"), put("/p/b", "2"), put("/p/c", "3"),
		put("/k", "v"), // mod revision 10, version 2
	}
	cases := []struct {
		name  string
		cmd   fsm.Command
		delta int64
		err   string
		noop  bool // the state must not change beyond the applied index
	}{
		{"put new", put("/new", "v"), 1, "ok", false},
		{"put existing", put("/k", "w"), 1, "ok", false},
		{"put same value", put("/k", "v"), 1, "ok", false},
		{"put ifchanged identical", fsm.Put{Key: "/k", Value: []byte("v"), IfChanged: true}, 0, "ok", true},
		{"put ifchanged new value", fsm.Put{Key: "/k", Value: []byte("w"), IfChanged: true}, 1, "ok", false},
		{"put ifchanged new lease", fsm.Put{Key: "/k", Value: []byte("v"), Lease: B, IfChanged: true}, 1, "ok", false},
		{"put ifchanged absent", fsm.Put{Key: "/x", Value: []byte("v"), IfChanged: true}, 1, "ok", false},
		{"put unknown lease", putL("/k", "w", 999), 0, "lease_not_found", true},
		{"put cas ok", fsm.Put{Key: "/k", Value: []byte("w"), HasCAS: true, CAS: 10}, 1, "ok", false},
		{"put cas stale", fsm.Put{Key: "/k", Value: []byte("w"), HasCAS: true, CAS: 1}, 0, "cas(current=10)", true},
		{"put cas future", fsm.Put{Key: "/k", Value: []byte("w"), HasCAS: true, CAS: 11}, 0, "cas(current=10)", true},
		{"put cas0 existing", fsm.Put{Key: "/k", Value: []byte("w"), HasCAS: true}, 0, "cas(current=10)", true},
		{"put cas0 absent", fsm.Put{Key: "/x", Value: []byte("w"), HasCAS: true}, 1, "ok", false},
		{"put cas on absent", fsm.Put{Key: "/x", Value: []byte("w"), HasCAS: true, CAS: 3}, 0, "cas(current=0)", true},
		{"put cas ignored without HasCAS", fsm.Put{Key: "/k", Value: []byte("w"), CAS: 3}, 1, "ok", false},
		{"delete existing", fsm.Delete{Key: "/k"}, 1, "ok", false},
		{"delete absent", fsm.Delete{Key: "/x"}, 0, "ok", true},
		{"delete cas ok", fsm.Delete{Key: "/k", HasCAS: true, CAS: 10}, 1, "ok", false},
		{"delete cas stale", fsm.Delete{Key: "/k", HasCAS: true, CAS: 4}, 0, "cas(current=10)", true},
		{"delete cas0 existing", fsm.Delete{Key: "/k", HasCAS: true}, 0, "cas(current=10)", true},
		{"delete cas on absent", fsm.Delete{Key: "/x", HasCAS: true, CAS: 1}, 0, "cas(current=0)", true},
		{"delete cas0 absent", fsm.Delete{Key: "/x", HasCAS: true}, 0, "ok", true},
		{"delete prefix", fsm.Delete{Key: "/p/", Prefix: true}, 3, "ok", false},
		{"delete prefix none", fsm.Delete{Key: "/zz", Prefix: true}, 0, "ok", true},
		{"delete prefix all", fsm.Delete{Key: "/", Prefix: true}, 9, "ok", false},
		{"incr existing", fsm.Incr{Key: "/n", By: 1}, 1, "ok", false},
		{"incr absent", fsm.Incr{Key: "/x", By: 1}, 1, "ok", false},
		{"incr by 0 existing", fsm.Incr{Key: "/n"}, 0, "ok", true},
		{"incr non-integer", fsm.Incr{Key: "/s", By: 1}, 0, "invalid_argument", true},
		{"grant", fsm.Grant{ID: 300, TTL: 10}, 0, "ok", false},
		{"grant duplicate", fsm.Grant{ID: A, TTL: 10}, 0, "lease_exists", true},
		{"keepalive", fsm.KeepAlive{IDs: []int64{A, B, 999}}, 0, "ok", true}, // clock 0: same deadlines
		{"keepalive unknown", fsm.KeepAlive{IDs: []int64{999}}, 0, "ok", true},
		{"keepalive at same clock", fsm.KeepAlive{IDs: []int64{A}}, 0, "ok", true},
		{"revoke with keys", fsm.Revoke{ID: A}, 3, "ok", false},
		{"revoke without keys", fsm.Revoke{ID: B}, 0, "ok", false},
		{"revoke unknown", fsm.Revoke{ID: 999}, 0, "lease_not_found", true},
		{"tick zero", fsm.Tick{}, 0, "ok", true},
		{"tick nothing due", fsm.Tick{ElapsedMs: 1999}, 0, "ok", false},
		{"tick expiring", fsm.Tick{ElapsedMs: 2000}, 3, "ok", false},
		{"set member", fsm.SetMember{Member: fsm.Member{ID: "m1"}}, 0, "ok", false},
		{"del member unknown", fsm.DelMember{ID: "m1"}, 0, "ok", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			for _, c := range setup {
				h.must(c)
			}
			before := h.state()
			r := h.do(tc.cmd)
			after := h.state()
			if got := errClass(r.Err); got != tc.err {
				t.Fatalf("error %s (%v), want %s", got, r.Err, tc.err)
			}
			// The Redis port answers an overflow with its own text.
			if over := strings.Contains(tc.name, "flow"); errors.Is(r.Err, fsm.ErrOverflow) != over {
				t.Fatalf("errors.Is(%v, ErrOverflow) = %v, want %v", r.Err, !over, over)
			}
			if d := after.Revision() - before.Revision(); d != tc.delta {
				t.Fatalf("revision moved by %d, want %d", d, tc.delta)
			}
			if r.Revision != after.Revision() {
				t.Fatalf("result revision %d, state revision %d", r.Revision, after.Revision())
			}
			if after.AppliedIndex() != before.AppliedIndex()+1 {
				t.Fatalf("applied index %d -> %d", before.AppliedIndex(), after.AppliedIndex())
			}
			if a, b := body(before), body(after); tc.noop && a != b {
				t.Fatalf("state changed:\n%s", diffLines(a, b))
			} else if !tc.noop && a == b {
				t.Fatalf("state did not change")
			}
		})
	}
}

func TestCASErrorShape(t *testing.T) {
	h := newHarness(t)
	h.must(put("/k", "v"))
	r := h.do(fsm.Put{Key: "/k", Value: []byte("w"), HasCAS: true, CAS: 7})
	var ce *fsm.CASError
	if !errors.As(r.Err, &ce) || ce.Current != 1 {
		t.Fatalf("err %#v, want *CASError{Current: 1}", r.Err)
	}
	if !errors.Is(r.Err, fsm.ErrCASFailed) || errors.Is(r.Err, fsm.ErrKeyNotFound) {
		t.Fatalf("errors.Is mismatch for %v", r.Err)
	}
	if !strings.Contains(r.Err.Error(), "1") {
		t.Fatalf("message %q lacks the current revision", r.Err)
	}
	if r.Prev != nil {
		t.Fatalf("failed CAS returned prev %s", fmtKV(r.Prev))
	}
	// A CAS matching the current mod revision succeeds and chains.
	for i := 0; i < 3; i++ {
		cur := h.get("/k").ModRevision
		if r := h.do(fsm.Put{Key: "/k", Value: []byte{byte(i)}, HasCAS: true, CAS: cur}); r.Err != nil || r.Prev.ModRevision != cur {
			t.Fatalf("cas chain %d: %s", i, fmtResult(r))
		}
	}
	// Lease existence is checked before CAS: an unknown lease wins.
	r = h.do(fsm.Put{Key: "/k", Lease: 5, HasCAS: true, CAS: 1})
	if !errors.Is(r.Err, fsm.ErrLeaseNotFound) {
		t.Fatalf("unknown lease + bad cas: %v", r.Err)
	}
}

func TestIncr(t *testing.T) {
	cases := []struct {
		name    string
		initial *string // nil: absent
		by      int64
		want    int64  // new value when ok
		err     string // "ok" or class
		delta   int64
	}{
		{"absent", nil, 5, 5, "ok", 1},
		{"absent negative", nil, -5, -5, "ok", 1},
		{"absent by zero", nil, 0, 0, "ok", 1},
		{"absent by max", nil, math.MaxInt64, math.MaxInt64, "ok", 1},
		{"existing", ptr("10"), -3, 7, "ok", 1},
		{"existing negative", ptr("-10"), 25, 15, "ok", 1},
		{"by zero existing", ptr("10"), 0, 10, "ok", 0},
		{"to max", ptr("9223372036854775806"), 1, math.MaxInt64, "ok", 1},
		{"to min", ptr("-9223372036854775807"), -1, math.MinInt64, "ok", 1},
		{"overflow", ptr("9223372036854775807"), 1, 0, "invalid_argument", 0},
		{"overflow big", ptr("2"), math.MaxInt64, 0, "invalid_argument", 0},
		{"underflow", ptr("-9223372036854775808"), -1, 0, "invalid_argument", 0},
		{"underflow by min", ptr("-1"), math.MinInt64, 0, "invalid_argument", 0},
		{"zero by min", ptr("0"), math.MinInt64, math.MinInt64, "ok", 1},
		{"not a number", ptr("abc"), 1, 0, "invalid_argument", 0},
		{"empty value", ptr(""), 1, 0, "invalid_argument", 0},
		{"spaces", ptr(" 1"), 1, 0, "invalid_argument", 0},
		{"float", ptr("1.5"), 1, 0, "invalid_argument", 0},
		{"beyond int64", ptr("99999999999999999999"), 1, 0, "invalid_argument", 0},
		{"not a number by zero", ptr("abc"), 0, 0, "invalid_argument", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			if tc.initial != nil {
				h.must(put("/n", *tc.initial))
			}
			before := h.state()
			r := h.do(fsm.Incr{Key: "/n", By: tc.by})
			after := h.state()
			if got := errClass(r.Err); got != tc.err {
				t.Fatalf("error %s (%v), want %s", got, r.Err, tc.err)
			}
			if d := after.Revision() - before.Revision(); d != tc.delta {
				t.Fatalf("revision moved by %d, want %d", d, tc.delta)
			}
			if tc.err != "ok" || tc.delta == 0 {
				if a, b := body(before), body(after); a != b {
					t.Fatalf("state changed:\n%s", diffLines(a, b))
				}
			}
			if tc.err != "ok" {
				return
			}
			if r.Value != tc.want {
				t.Fatalf("value %d, want %d", r.Value, tc.want)
			}
			if got := string(h.get("/n").Value); got != fmt.Sprint(tc.want) {
				t.Fatalf("stored %q, want %d", got, tc.want)
			}
		})
	}
}

func ptr(s string) *string { return &s }

// TestIncrCanonical: with Canonical (the Redis port's), only the canonical
// spelling of an int64 is an integer, as Redis's string2ll reads one;
// entries without it take what they took, so an old log replays alike.
func TestIncrCanonical(t *testing.T) {
	for _, v := range []string{"+7", "007", "-0", "00", "-07"} {
		h := newHarness(t)
		h.must(put("/n", v))
		before := body(h.state())
		if r := h.do(fsm.Incr{Key: "/n", By: 1, Canonical: true}); !errors.Is(r.Err, fsm.ErrInvalidArgument) {
			t.Fatalf("canonical incr of %q: %s", v, fmtResult(r))
		}
		if after := body(h.state()); after != before {
			t.Fatalf("refused incr of %q changed the state:\n%s", v, diffLines(before, after))
		}
		h.must(fsm.Incr{Key: "/n", By: 1}) // an entry of an older build
		want := body(h.state())
		h.reopen()
		if got := body(h.state()); got != want {
			t.Fatalf("replay after %q differs:\n%s", v, diffLines(want, got))
		}
	}
	h := newHarness(t)
	for v, want := range map[string]int64{"0": 1, "-7": -6, "120": 121} {
		h.must(put("/n", v))
		if r := h.must(fsm.Incr{Key: "/n", By: 1, Canonical: true}); r.Value != want {
			t.Fatalf("canonical incr of %q: %s", v, fmtResult(r))
		}
	}
}

func TestIncrKeepsLease(t *testing.T) {
	h := newHarness(t)
	h.must(fsm.Grant{ID: 1, TTL: 10})
	h.must(putL("/n", "1", 1))
	r := h.must(fsm.Incr{Key: "/n", By: 2})
	if r.Value != 3 || r.Prev == nil || string(r.Prev.Value) != "1" {
		t.Fatalf("incr: %s", fmtResult(r))
	}
	kv := h.get("/n")
	if kv.Lease != 1 || kv.Version != 2 || kv.CreateRevision != 1 {
		t.Fatalf("after incr: %s", fmtKV(kv))
	}
	if ks := h.state().LeaseKeys(1); !reflect.DeepEqual(ks, []string{"/n"}) {
		t.Fatalf("lease keys %q", ks)
	}
	h.must(fsm.Revoke{ID: 1})
	h.absent("/n")
}

func TestIfChanged(t *testing.T) {
	h := newHarness(t)
	h.must(fsm.Grant{ID: 1, TTL: 10})
	h.must(putL("/k", "v", 1))
	prev := *h.get("/k")
	r := h.must(fsm.Put{Key: "/k", Value: []byte("v"), Lease: 1, IfChanged: true})
	if r.Revision != 1 || h.state().Revision() != 1 {
		t.Fatalf("identical put moved the revision: %s", fmtResult(r))
	}
	if fmtKV(r.Prev) != fmtKV(&prev) || fmtKV(h.get("/k")) != fmtKV(&prev) {
		t.Fatalf("identical put: prev %s, now %s", fmtKV(r.Prev), fmtKV(h.get("/k")))
	}
	// An empty value equals a nil one.
	h.must(fsm.Put{Key: "/e", Value: []byte{}})
	if r := h.must(fsm.Put{Key: "/e", IfChanged: true}); r.Revision != 2 {
		t.Fatalf("empty vs nil value counted as a change: %s", fmtResult(r))
	}
	h.reopen()
	if r := h.must(fsm.Put{Key: "/e", IfChanged: true}); r.Revision != 2 {
		t.Fatalf("after reopen, empty vs nil value counted as a change: %s", fmtResult(r))
	}
	if r := h.must(fsm.Put{Key: "/k", Value: []byte("v"), IfChanged: true}); r.Revision != 3 || h.get("/k").Lease != 0 {
		t.Fatalf("dropping the lease is a change: %s", fmtResult(r))
	}
}

func TestMembers(t *testing.T) {
	h := newHarness(t)
	m := func(id string, node int64) fsm.Member {
		return fsm.Member{ID: id, RaftAddr: "r-" + id, HTTPAddr: "h-" + id, Node: node}
	}
	h.must(fsm.SetMember{Member: m("node03", 3)})
	h.must(fsm.SetMember{Member: m("node01", 1)})
	h.must(fsm.SetMember{Member: m("node02", 2)})
	changed := m("node01", 11)
	changed.HTTPAddr = "elsewhere"
	h.must(fsm.SetMember{Member: changed})
	h.must(fsm.DelMember{ID: "node02"})
	h.must(fsm.DelMember{ID: "unknown"})
	want := []fsm.Member{changed, m("node03", 3)}
	check := func(what string) {
		t.Helper()
		s := h.state()
		if got := s.Members(); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: members %+v, want %+v", what, got, want)
		}
		if got, ok := s.Member("node01"); !ok || got != changed {
			t.Fatalf("%s: Member(node01) = %+v %v", what, got, ok)
		}
		if _, ok := s.Member("node02"); ok {
			t.Fatalf("%s: node02 still a member", what)
		}
		if s.Revision() != 0 || s.KeyCount() != 0 {
			t.Fatalf("%s: members touched the keyspace: rev %d keys %d", what, s.Revision(), s.KeyCount())
		}
	}
	check("live")
	// Members() hands out a copy.
	h.state().Members()[0].ID = "mutated"
	check("after mutating a copy")
	h.reopen()
	check("reopened")
	h.must(fsm.DelMember{ID: "node01"})
	h.must(fsm.DelMember{ID: "node03"})
	h.reopen()
	if ms := h.state().Members(); len(ms) != 0 {
		t.Fatalf("members %+v after deleting all", ms)
	}
}

func TestNonCommandEntriesOnlyMoveAppliedIndex(t *testing.T) {
	h := newHarness(t)
	h.must(put("/a", "1"))
	before := body(h.state())
	ls := []*raft.Log{
		{Index: h.idx + 1, Term: 1, Type: raft.LogNoop},
		{Index: h.idx + 2, Term: 1, Type: raft.LogConfiguration, Data: []byte("not a command")},
		{Index: h.idx + 3, Term: 2, Type: raft.LogBarrier},
	}
	h.idx += 3
	for _, r := range h.applyLogs(ls) {
		if r.Err != nil {
			t.Fatalf("non-command entry: %v", r.Err)
		}
	}
	if s := h.state(); s.AppliedIndex() != h.idx || body(s) != before {
		t.Fatalf("applied %d (want %d), state:\n%s", s.AppliedIndex(), h.idx, diffLines(before, body(s)))
	}
	h.reopen()
	if h.state().AppliedIndex() != h.idx {
		t.Fatalf("applied index %d after reopen", h.state().AppliedIndex())
	}
}

func TestReplayedEntriesAreSkipped(t *testing.T) {
	h := newHarness(t)
	cmds := []fsm.Command{
		fsm.Grant{ID: 1, TTL: 2}, putL("/a", "1", 1), fsm.Incr{Key: "/n", By: 1},
		fsm.Delete{Key: "/a"}, fsm.Tick{ElapsedMs: 3000},
	}
	ls := h.logs(cmds...)
	h.applyLogs(ls)
	want := dump(h.state())
	calls := h.calls
	// Whole batch again, one by one, and in a batch with one new entry.
	h.applyLogs(ls)
	for _, l := range ls {
		r := h.applyLogs([]*raft.Log{l})[0]
		if r.Err != nil || r.Revision != h.state().Revision() {
			t.Fatalf("replayed entry %d: %s", l.Index, fmtResult(r))
		}
	}
	sameDump(t, "replay", want, dump(h.state()))
	if h.calls != calls {
		t.Fatalf("replay published %d times", h.calls-calls)
	}
	next := h.logs(fsm.Incr{Key: "/n", By: 1})
	rs := h.applyLogs(append(ls[2:], next...))
	if rs[len(rs)-1].Value != 2 {
		t.Fatalf("new entry after replayed ones: %s", fmtResult(rs[len(rs)-1]))
	}
	if v := string(h.get("/n").Value); v != "2" {
		t.Fatalf("/n = %s: replayed incr applied again", v)
	}
	h.reopen()
	h.applyLogs(ls)
	if v := string(h.get("/n").Value); v != "2" || h.state().AppliedIndex() != h.idx {
		t.Fatalf("after reopen and replay: /n = %s, applied %d", v, h.state().AppliedIndex())
	}
}

// TestPublishedStateIsImmutable keeps an old State across many changes and
// checks it still reads the same.
func TestPublishedStateIsImmutable(t *testing.T) {
	h := newHarness(t)
	h.must(fsm.Grant{ID: 1, TTL: 2})
	h.must(fsm.Grant{ID: 2, TTL: 10})
	for i := 0; i < 200; i++ {
		h.must(putL(fmt.Sprintf("/k/%03d", i), "v", int64(1+i%2)))
	}
	h.must(fsm.SetMember{Member: fsm.Member{ID: "a"}})
	old := h.state()
	want := dump(old)
	h.apply(
		fsm.Delete{Key: "/k/1", Prefix: true},
		fsm.KeepAlive{IDs: []int64{2}},
		fsm.Tick{ElapsedMs: 2000},
		fsm.Grant{ID: 3, TTL: 5},
		putL("/k/000", "changed", 3),
		fsm.Revoke{ID: 2},
		fsm.DelMember{ID: "a"},
		fsm.Incr{Key: "/n", By: 1},
	)
	if h.state().KeyCount() != 2 {
		t.Fatalf("keys %d", h.state().KeyCount())
	}
	sameDump(t, "old state", want, dump(old))
}

// TestConcurrentReaders reads published states while batches apply; run
// with -race.
func TestConcurrentReaders(t *testing.T) {
	h := newHarness(t)
	h.must(fsm.Grant{ID: 1, TTL: 2})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				s := h.f.State()
				n := 0
				s.Range("/", "", func(kv *fsm.KV) bool { n++; return true })
				if n != s.KeyCount() {
					t.Errorf("range saw %d keys, KeyCount %d", n, s.KeyCount())
					return
				}
				s.Leases(0, func(l fsm.LeaseStatus) bool { _ = s.LeaseKeys(l.ID); return true })
				_, _ = s.Get("/k/5")
			}
		}()
	}
	for i := 0; i < 300; i++ {
		id := int64(i/10 + 2)
		h.apply(
			fsm.Grant{ID: id, TTL: 2},
			putL(fmt.Sprintf("/k/%d", i%50), fmt.Sprint(i), id),
			fsm.Delete{Key: fmt.Sprintf("/k/%d", (i*7)%50)},
			fsm.Tick{ElapsedMs: 150},
		)
	}
	close(stop)
	wg.Wait()
}

func TestWaitApplied(t *testing.T) {
	h := newHarness(t)
	h.must(put("/a", "1"))
	ctx := context.Background()
	if err := h.f.WaitApplied(ctx, 1); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- h.f.WaitApplied(ctx, 3) }()
	h.must(put("/a", "2"))
	h.must(put("/a", "3"))
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := h.f.WaitApplied(cctx, 100); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled wait: %v", err)
	}
	go func() { done <- h.f.WaitApplied(ctx, 100) }()
	h.applyLogs([]*raft.Log{{Index: h.idx + 1, Type: raft.LogCommand, Data: []byte{9}}})
	if err := <-done; !errors.Is(err, fsm.ErrFailed) {
		t.Fatalf("wait on a failed FSM: %v", err)
	}
}
