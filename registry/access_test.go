package registry

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rosterhq/roster/fsm"
)

// TestMayApplyRules: the one rule set of writes, command type by command
// type (Txn nested too), for a read-write token, a write-only one, one
// without rules and admin, against a real member's state: lease 1 holds
// a key the read-write token may write, lease 2 one it may not.
func TestMayApplyRules(t *testing.T) {
	tc := startCluster(t, 1, clusterOpts{})
	n := tc.leader()
	ctx := ctxT(t, 30*time.Second)
	for _, id := range []int64{1, 2} {
		if _, err := n.Grant(ctx, 600, "l", id); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []fsm.Put{
		{Key: "/svc/a", Value: []byte("a"), Lease: 1},
		{Key: "/svc/b", Value: []byte("b"), Lease: 2},
		{Key: "/other/c", Value: []byte("c"), Lease: 2},
		{Key: "/cfg/a", Value: []byte("1")},
	} {
		if _, err := n.Put(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	st := n.fsm.State()
	rw := &Principal{Name: "rw", rules: []fsm.Rule{{Prefix: "/svc/", Read: true, Write: true}, {Prefix: "/cfg/", Read: true}}}
	wo := &Principal{Name: "wo", rules: []fsm.Rule{{Prefix: "/svc/", Write: true}}}
	none := &Principal{Name: "none"}
	admin := &Principal{Name: "admin", admin: true}

	const ok = ""
	// Lease 2's key /other/c, which neither token may read, is not named.
	const other = "write every key attached to lease 2"
	type want struct {
		rw, wo string // "" passes; else the refusal's Op and key ("write /other/x")
	}
	put := func(k string) fsm.Put { return fsm.Put{Key: k, Value: []byte("v")} }
	leased := func(k string, l int64) fsm.Put { p := put(k); p.Lease = l; return p }
	compare := fsm.Check{Key: "/cfg/b"}                     // the Redis port's compare of a key read
	olderCompare := fsm.Delete{Key: "/cfg/b", HasCAS: true} // an older member's: a write now
	for _, tt := range []struct {
		name string
		c    fsm.Command
		a    Answer
		want want
	}{
		{"put", put("/svc/x"), AnswerOutcome, want{ok, ok}},
		{"put elsewhere", put("/other/x"), AnswerOutcome, want{"write /other/x", "write /other/x"}},
		{"put answering prev", put("/svc/x"), AnswerPrev, want{ok, "read /svc/x"}},
		{"put on a lease of its keys", leased("/svc/x", 1), AnswerOutcome, want{ok, ok}},
		{"put on a lease with another's key", leased("/svc/x", 2), AnswerOutcome, want{other, other}},
		{"put on a lease not found", leased("/svc/x", 99), AnswerOutcome, want{ok, ok}},
		{"put on the txn's own grant", leased("/svc/x", TxnLease(0)), AnswerOutcome, want{ok, ok}},
		{"delete", fsm.Delete{Key: "/svc/x"}, AnswerOutcome, want{ok, ok}},
		{"delete answering prev", fsm.Delete{Key: "/svc/x"}, AnswerPrev, want{ok, "read /svc/x"}},
		{"delete elsewhere", fsm.Delete{Key: "/cfg/a"}, AnswerOutcome, want{"write /cfg/a", "write /cfg/a"}},
		{"prefix delete", fsm.Delete{Key: "/svc/", Prefix: true}, AnswerOutcome, want{ok, ok}},
		{"prefix delete wider than the rule", fsm.Delete{Key: "/s", Prefix: true}, AnswerOutcome, want{"delete every key under /s", "delete every key under /s"}},
		{"prefix delete of every key", fsm.Delete{Key: "", Prefix: true}, AnswerOutcome, want{"delete every key under ", "delete every key under "}},
		{"incr", fsm.Incr{Key: "/svc/n", By: 1}, AnswerOutcome, want{ok, "read /svc/n"}},
		{"incr elsewhere", fsm.Incr{Key: "/cfg/n", By: 1}, AnswerOutcome, want{"write /cfg/n", "write /cfg/n"}},
		{"revoke", fsm.Revoke{ID: 1}, AnswerOutcome, want{ok, ok}},
		{"revoke another's lease", fsm.Revoke{ID: 2}, AnswerOutcome, want{other, other}},
		{"keep-alive", fsm.KeepAlive{IDs: []int64{1, 99}}, AnswerOutcome, want{ok, ok}},
		{"keep-alive of another's lease", fsm.KeepAlive{IDs: []int64{1, 2}}, AnswerOutcome, want{other, other}},
		{"grant", fsm.Grant{ID: 5, TTL: 10}, AnswerOutcome, want{ok, ok}},
		{"txn", fsm.Txn{Ops: []fsm.Command{put("/svc/x"), fsm.Delete{Key: "/svc/y"}, fsm.Grant{TTL: 5}}}, AnswerOutcome, want{ok, ok}},
		{"txn with a write elsewhere", fsm.Txn{Ops: []fsm.Command{put("/svc/x"), put("/other/y")}}, AnswerOutcome, want{"write /other/y", "write /other/y"}},
		{"txn nested", fsm.Txn{Ops: []fsm.Command{fsm.Txn{Ops: []fsm.Command{put("/svc/x"), fsm.Incr{Key: "/svc/n"}}}}}, AnswerOutcome, want{ok, "read /svc/n"}},
		// EXEC's apply-time operations need what the plain commands need:
		// an increment read and write, SET … NX|XX write.
		{"txn incr", fsm.Txn{Ops: []fsm.Command{fsm.Incr{Key: "/svc/n", By: 1, Canonical: true}}}, AnswerOutcome, want{ok, "read /svc/n"}},
		{"txn incr elsewhere", fsm.Txn{Ops: []fsm.Command{fsm.Incr{Key: "/cfg/n", By: 1}}}, AnswerOutcome, want{"write /cfg/n", "write /cfg/n"}},
		{"txn put if absent", fsm.Txn{Ops: []fsm.Command{fsm.Put{Key: "/svc/x", Only: fsm.PutIfAbsent}}}, AnswerOutcome, want{ok, ok}},
		{"txn put if present elsewhere", fsm.Txn{Ops: []fsm.Command{fsm.Put{Key: "/cfg/a", Only: fsm.PutIfPresent}}}, AnswerOutcome, want{"write /cfg/a", "write /cfg/a"}},
		{"txn nested, lease", fsm.Txn{Ops: []fsm.Command{fsm.Txn{Ops: []fsm.Command{leased("/svc/x", 2)}}}}, AnswerOutcome, want{other, other}},
		{"txn that only compares a key", fsm.Txn{Ops: []fsm.Command{put("/svc/x"), compare}}, AnswerOutcome, want{ok, "read /cfg/b"}},
		{"txn comparing as an older member did", fsm.Txn{Ops: []fsm.Command{put("/svc/x"), olderCompare}}, AnswerOutcome, want{"write /cfg/b", "write /cfg/b"}},
		{"set member", fsm.SetMember{Member: fsm.Member{ID: "x"}}, AnswerOutcome, want{"change the membership", "change the membership"}},
		{"delete member", fsm.DelMember{ID: "x"}, AnswerOutcome, want{"change the membership", "change the membership"}},
		{"put role", fsm.PutRole{Role: fsm.Role{Name: "r"}}, AnswerOutcome, want{"change access control", "change access control"}},
		{"delete role", fsm.DeleteRole{Name: "r"}, AnswerOutcome, want{"change access control", "change access control"}},
		{"put token", fsm.PutToken{Token: fsm.Token{ID: "t"}}, AnswerOutcome, want{"change access control", "change access control"}},
		{"delete token", fsm.DeleteToken{ID: "t"}, AnswerOutcome, want{"change access control", "change access control"}},
		{"tick", fsm.Tick{ElapsedMs: 1}, AnswerOutcome, want{"propose tick", "propose tick"}},
	} {
		check := func(who *Principal, want string) {
			t.Helper()
			err := MayApply(who, st, tt.c, tt.a)
			if want == ok {
				if err != nil {
					t.Errorf("%s for %s: %v, want allowed", tt.name, who.Name, err)
				}
				return
			}
			var ae *AccessError
			if !errors.Is(err, ErrPermissionDenied) || !errors.As(err, &ae) {
				t.Errorf("%s for %s: %v, want an AccessError (permission denied)", tt.name, who.Name, err)
				return
			}
			if got := strings.TrimSpace(ae.Op + " " + ae.Key); got != strings.TrimSpace(want) || ae.Token != who.Name {
				t.Errorf("%s for %s: refused %q by token %q, want %q", tt.name, who.Name, got, ae.Token, want)
			}
			if !strings.Contains(err.Error(), `token "`+who.Name+`" may not `+ae.Op) {
				t.Errorf("%s: message %q does not name the token and what it may not do", tt.name, err)
			}
		}
		check(rw, tt.want.rw)
		check(wo, tt.want.wo)
		if _, isGrant := tt.c.(fsm.Grant); isGrant {
			check(none, ok) // any valid token may grant
		}
		check(admin, ok)
	}
}

// TestMayApplyMessages: a refusal names the token, what it may not do,
// the key (clipped) and, for a lease, which one.
func TestMayApplyMessages(t *testing.T) {
	p := &Principal{Name: "api"}
	long := "/" + strings.Repeat("k", 100)
	for _, tt := range []struct {
		err  error
		want string
	}{
		{MayApply(p, nil, fsm.Put{Key: "/a"}, AnswerOutcome), `permission denied: token "api" may not write "/a"`},
		{MayApply(p, nil, fsm.Put{Key: long}, AnswerOutcome), `permission denied: token "api" may not write "` + clipKey(long) + `"`},
		{MayApply(p, nil, fsm.Delete{Key: "/p/", Prefix: true}, AnswerOutcome), `permission denied: token "api" may not delete every key under "/p/"`},
		{MayApply(&Principal{Name: "api", rules: []fsm.Rule{{Prefix: "/", Write: true}}}, nil, fsm.Incr{Key: "/n"}, AnswerOutcome),
			`permission denied: token "api" may not read "/n" (incr answers its value)`},
		{MayApply(p, nil, fsm.SetMember{}, AnswerOutcome), `permission denied: token "api" may not change the membership (admin only)`},
		{MayApply(p, nil, fsm.Revoke{ID: 7}, AnswerOutcome), `permission denied: token "api" may not renew lease 7 (its keys are not known here)`},
		{mayChangeMembers(p), `permission denied: token "api" may not change the membership (admin only; its roles changed)`},
	} {
		if tt.err == nil || tt.err.Error() != tt.want {
			t.Errorf("got %v, want %q", tt.err, tt.want)
		}
	}
}

// TestLeaderChecksAttachingToALease: the leader's check of a forwarded
// put refuses attaching a key to a lease the token may not renew, as the
// HTTP front end always did. Before the rules were one set the leader
// checked write on the key only, so a follower's front end that let such
// a put through (the Redis port never checked the lease) had it applied.
// The refusal names the key the token may not write only to a token that
// may read it (fifth bug hunt: it named it to any token).
func TestLeaderChecksAttachingToALease(t *testing.T) {
	tc := startCluster(t, 1, clusterOpts{})
	n := tc.leader()
	ctx := ctxT(t, 30*time.Second)
	if _, err := n.Grant(ctx, 600, "theirs", 2); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Put(ctx, fsm.Put{Key: "/theirs/k", Value: []byte("v"), Lease: 2}); err != nil {
		t.Fatal(err)
	}
	mine := &Principal{Name: "mine", rules: []fsm.Rule{{Prefix: "/mine/", Read: true, Write: true}}}
	err := n.mayWrite(mine, fsm.Put{Key: "/mine/k", Value: []byte("v"), Lease: 2})
	var ae *AccessError
	if !errors.As(err, &ae) || ae.Key != "" || ae.Lease != 0 || strings.Contains(err.Error(), "theirs") ||
		err.Error() != `permission denied: token "mine" may not write every key attached to lease 2 (its roles changed)` {
		t.Fatalf("attaching to another token's lease: %v, want refused naming lease 2 and no key of it", err)
	}
	// A token that may read the key it may not write learns which one.
	reader := &Principal{Name: "reader", rules: []fsm.Rule{{Prefix: "/mine/", Read: true, Write: true}, {Prefix: "/theirs/", Read: true}}}
	err = n.mayWrite(reader, fsm.Put{Key: "/mine/k", Value: []byte("v"), Lease: 2})
	if !errors.As(err, &ae) || ae.Lease != 2 || ae.Key != "/theirs/k" || !strings.HasSuffix(err.Error(), "(its roles changed)") {
		t.Fatalf("attaching to a lease with a key the token may read only: %v, want refused naming /theirs/k on lease 2", err)
	}
	if err := n.mayWrite(mine, fsm.Put{Key: "/mine/k", Value: []byte("v")}); err != nil {
		t.Fatalf("a put on no lease: %v", err)
	}
}
