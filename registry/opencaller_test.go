package registry

import (
	"errors"
	"testing"
	"time"

	"github.com/rosterhq/roster/fsm"
	"github.com/rosterhq/roster/internal/testutil"
)

// TestForwardedWriteWithoutCallerOnceAccessControlled: members started
// without access control (no -auth) serve writes without a token while
// the replicated state has no admin token. A follower that lags, and has
// not applied the first admin token the leader applied, lets a client's
// write in unchecked and forwards it without a caller: the leader, whose
// state has access control on, refuses it (401), changing nothing;
// writes, batches, transactions, keep-alives and membership changes
// alike. Before the first admin token the same writes go through.
func TestForwardedWriteWithoutCallerOnceAccessControlled(t *testing.T) {
	tc, hold := startHeldAuthCluster(t, "")
	ctx := ctxT(t, 60*time.Second)
	leader := tc.leader()
	f := tc.followers(leader)[0]

	// Before access control: forwarded without a caller, and done.
	ls, err := f.Grant(ctx, 60, "", 0)
	if err != nil {
		t.Fatalf("grant through a follower before access control: %v", err)
	}
	if _, err := f.Put(ctx, fsm.Put{Key: "/open/before", Value: []byte("v"), Lease: ls.ID}); err != nil {
		t.Fatalf("put through a follower before access control: %v", err)
	}
	if _, _, err := f.KeepAlive(ctx, []int64{ls.ID}); err != nil {
		t.Fatalf("keep-alive through a follower before access control: %v", err)
	}
	testutil.Eventually(t, 10*time.Second, f.ID()+" to apply the put", func() bool {
		_, ok := f.fsm.State().Get("/open/before")
		return ok
	})

	hold(f.ID())
	admin, _, err := leader.CreateToken(ctx, "admin", []string{fsm.RootRole})
	if err != nil {
		t.Fatal(err)
	}
	if !leader.fsm.State().AccessControlled() || f.fsm.State().AccessControlled() {
		t.Fatal("want access control on in the leader's state and not yet in the follower's")
	}
	before := leader.fsm.State()
	joinReq := JoinRequest{ID: "n9", RaftAddr: "127.0.0.1:1", HTTPAddr: "127.0.0.1:2"}
	writes := []struct {
		name string
		do   func() error
	}{
		{"put", func() error {
			_, err := f.Put(ctx, fsm.Put{Key: "/open/after", Value: []byte("v")})
			return err
		}},
		{"delete", func() error {
			_, err := f.Delete(ctx, fsm.Delete{Key: "/open/before"})
			return err
		}},
		{"incr", func() error {
			_, err := f.Incr(ctx, "/open/ctr", 1)
			return err
		}},
		{"grant", func() error {
			_, err := f.Grant(ctx, 60, "", 0)
			return err
		}},
		{"revoke", func() error {
			_, err := f.Revoke(ctx, ls.ID)
			return err
		}},
		{"txn", func() error {
			_, err := f.Txn(ctx, []fsm.Command{fsm.Put{Key: "/open/txn", Value: []byte("v")}})
			return err
		}},
		{"batch", func() error {
			var errs []error
			for _, r := range f.Batch(ctx, []fsm.Command{fsm.Put{Key: "/open/b1", Value: []byte("v")}, fsm.Incr{Key: "/open/b2", By: 1}}) {
				errs = append(errs, r.Err)
			}
			if !errors.Is(errs[0], ErrUnauthenticated) {
				return errs[0]
			}
			return errs[1]
		}},
		{"keep-alive", func() error {
			_, _, err := f.KeepAlive(ctx, []int64{ls.ID})
			return err
		}},
		{"role", func() error { return f.PutRole(ctx, fsm.Role{Name: "planted", Admin: true}) }},
		{"delete token", func() error { return f.DeleteToken(ctx, admin.ID) }},
		{"add member", func() error { return f.AddMember(ctx, JoinRequest{ID: "n9", RaftAddr: "127.0.0.1:1"}) }},
		{"update member", func() error { return f.UpdateMember(ctx, joinReq) }},
		{"remove member", func() error { return f.RemoveMember(ctx, tc.followers(leader)[1].ID()) }},
	}
	for _, w := range writes {
		if err := w.do(); !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("%s forwarded without a caller once the leader has access control on: %v; want %v", w.name, err, ErrUnauthenticated)
		}
	}
	after := leader.fsm.State()
	if after.Revision() != before.Revision() {
		t.Errorf("the refused writes moved the revision from %d to %d", before.Revision(), after.Revision())
	}
	if _, ok := after.Role("planted"); ok {
		t.Error("a refused role was written")
	}
	if _, ok := after.Token(admin.ID); !ok {
		t.Error("a refused token deletion deleted")
	}
	if len(after.Members()) != len(before.Members()) {
		t.Errorf("members %v, were %v", after.Members(), before.Members())
	}
	if cf := leader.raft.GetConfiguration(); cf.Error() != nil || len(cf.Configuration().Servers) != 3 {
		t.Errorf("configuration %v %v, want the three members", cf.Configuration().Servers, cf.Error())
	}
}
