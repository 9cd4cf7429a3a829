package registry

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/rosterhq/roster/fsm"
	"github.com/rosterhq/roster/internal/testutil"
)

// TestForwardedKeepAlivesAndMemberChangesCheckedByTheLeader: a follower
// whose state machine has not applied a token's deletion, or the
// narrowing of a role, still takes the token as it was, but the leader
// refuses the keep-alives and membership changes it forwards for it. In
// one forwarded keep-alive group merging several callers' renewals, only
// the renewals of the callers that may no longer renew their leases are
// refused, each with its own error; the others' are renewed. Those made
// for no token are refused too: a member lets a request in without one
// only while access control is off in its state, and the leader's has it
// on (TestForwardedWriteWithoutCallerOnceAccessControlled).
func TestForwardedKeepAlivesAndMemberChangesCheckedByTheLeader(t *testing.T) {
	const rootSecret = "root-secret-of-the-ka-caller-test"
	tc, hold := startHeldAuthCluster(t, rootSecret)
	ctx := ctxT(t, 60*time.Second)
	leader := tc.leader()
	fs := tc.followers(leader)
	f, other := fs[0], fs[1]
	testutil.Eventually(t, 10*time.Second, "root token created", func() bool {
		return leader.fsm.State().TokenCount() > 0
	})
	for _, r := range []fsm.Role{
		{Name: "api", Rules: []fsm.Rule{{Prefix: "/services/", Read: true, Write: true}}},
		{Name: "narrowed", Rules: []fsm.Rule{{Prefix: "/services/", Read: true, Write: true}}},
		{Name: "ops", Admin: true},
	} {
		if err := leader.PutRole(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	secrets := map[string]string{}
	ids := map[string]string{}
	for name, role := range map[string]string{"gone": "api", "narrowed": "narrowed", "kept": "api", "ops": "ops"} {
		tok, secret, err := leader.CreateToken(ctx, name, []string{role})
		if err != nil {
			t.Fatal(err)
		}
		secrets[name], ids[name] = secret, tok.ID
	}
	grant := func(key string) int64 {
		t.Helper()
		l, err := leader.Grant(ctx, 600, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := leader.Put(ctx, fsm.Put{Key: key, Value: []byte("x"), Lease: l.ID}); err != nil {
			t.Fatal(err)
		}
		return l.ID
	}
	la, lb := grant("/services/a"), grant("/services/b")
	st, err := f.Read(ctx, false) // f has applied the tokens and leases
	if err != nil {
		t.Fatal(err)
	}
	p := map[string]*Principal{}
	for name, secret := range secrets {
		if p[name], err = Authenticate(st, secret); err != nil {
			t.Fatal(err)
		}
	}

	hold(f.ID())
	if err := leader.DeleteToken(ctx, ids["gone"]); err != nil {
		t.Fatal(err)
	}
	for _, r := range []fsm.Role{
		{Name: "narrowed", Rules: []fsm.Rule{{Prefix: "/services/ok/", Read: true, Write: true}}},
		{Name: "ops", Rules: []fsm.Rule{{Prefix: "/", Read: true}}},
	} {
		if err := leader.PutRole(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if q, err := f.Authenticate(secrets["ops"]); err != nil || !q.Admin() {
		t.Fatalf("the held follower applied the changes: %v", err)
	}

	// Through the API, one caller at a time.
	if _, _, err := f.KeepAlive(WithCaller(ctx, p["gone"]), []int64{la}); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("keep-alive for a deleted token: %v, want ErrUnauthenticated", err)
	}
	if _, _, err := f.KeepAlive(WithCaller(ctx, p["narrowed"]), []int64{lb}); !errors.Is(err, ErrPermissionDenied) {
		t.Errorf("keep-alive for a narrowed token: %v, want ErrPermissionDenied", err)
	}
	if renewed, _, err := f.KeepAlive(WithCaller(ctx, p["kept"]), []int64{la, lb}); err != nil || len(renewed) != 2 {
		t.Errorf("keep-alive for a token that may renew: %v %v", renewed, err)
	}

	// One group of several callers, as the follower's batcher makes it.
	req := func(caller string, ids ...int64) *kaRequest {
		return &kaRequest{ids: ids, caller: caller, resp: make(chan kaResponse, 1)}
	}
	group := []*kaRequest{
		req(ids["gone"], la),
		req(ids["narrowed"], lb),
		req(ids["kept"], la),
		req("", lb, 1<<40),
		req(ids["narrowed"], lb),
		req("", la),
	}
	f.forwardKeepAliveGroup(ctx, group, 7)
	for i, want := range []error{ErrUnauthenticated, ErrPermissionDenied, nil, ErrUnauthenticated, ErrPermissionDenied, ErrUnauthenticated} {
		r := <-group[i].resp
		switch {
		case want != nil && !errors.Is(r.err, want):
			t.Errorf("request %d: %v, want %v", i, r.err, want)
		case want == nil && r.err != nil:
			t.Errorf("request %d: %v, want renewed", i, r.err)
		case want == nil:
			for _, id := range group[i].ids {
				if _, ok := r.byID[id]; !ok && id != 1<<40 {
					t.Errorf("request %d: lease %d not renewed: %v", i, id, r.byID)
				}
			}
		}
	}

	// Membership changes: admin only, as the leader has the tables.
	join := JoinRequest{ID: "n9", RaftAddr: "127.0.0.1:1", HTTPAddr: "127.0.0.1:2"}
	if err := f.AddMember(WithCaller(ctx, p["ops"]), join); !errors.Is(err, ErrPermissionDenied) {
		t.Errorf("add member for a token no longer admin: %v, want ErrPermissionDenied", err)
	}
	if err := f.RemoveMember(WithCaller(ctx, p["ops"]), other.ID()); !errors.Is(err, ErrPermissionDenied) {
		t.Errorf("remove member for a token no longer admin: %v, want ErrPermissionDenied", err)
	}
	if err := f.AddMember(WithCaller(ctx, p["gone"]), join); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("add member for a deleted token: %v, want ErrUnauthenticated", err)
	}
	rootP, err := Authenticate(st, rootSecret)
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := leader.fsm.State().Member(other.ID())
	if err := f.UpdateMember(WithCaller(ctx, rootP), JoinRequest{ID: other.ID(), RaftAddr: other.RaftAddr(), HTTPAddr: rec.HTTPAddr}); err != nil {
		t.Errorf("update member for the root token: %v", err)
	}
	if n := len(leader.raft.GetConfiguration().Configuration().Servers); n != 3 {
		t.Errorf("the configuration has %d members, want 3", n)
	}
}

// TestKeepAliveAsCodec: the payload of kindKeepAliveAs decodes to what
// was encoded; a truncated or padded one, or a lease ID that is not
// positive, is refused.
func TestKeepAliveAsCodec(t *testing.T) {
	in := []kaEntry{{caller: "0123456789abcdef", ids: []int64{1, 1 << 62}}, {caller: "", ids: []int64{7}}}
	b := encodeKeepAliveAs(42, in)
	applied, out, err := decodeKeepAliveAs(b)
	if err != nil || applied != 42 || fmt.Sprint(out) != fmt.Sprint(in) {
		t.Fatalf("decoded %d %v %v, want 42 %v", applied, out, err, in)
	}
	for i := range len(b) {
		if _, _, err := decodeKeepAliveAs(b[:i]); err == nil {
			t.Errorf("a payload cut at %d of %d bytes decoded", i, len(b))
		}
	}
	if _, _, err := decodeKeepAliveAs(append(b, 0)); err == nil {
		t.Error("a payload with a trailing byte decoded")
	}
	if _, _, err := decodeKeepAliveAs(encodeKeepAliveAs(1, []kaEntry{{ids: []int64{0}}})); err == nil {
		t.Error("lease id 0 decoded")
	}
}
