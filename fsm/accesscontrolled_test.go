package fsm_test

import (
	"testing"

	"github.com/rosterhq/roster/fsm"
)

// TestAccessControlledFollowsAdminTokens: the replicated state has access
// control on exactly while some token has admin rights. A token without
// admin (made where access control is off) does not turn it on; the root
// token does, and so does an admin role given later; once on, no change
// turns it off (the last admin token cannot go); and a member that reloads
// its state from its checkpoint, replays its log, or installs a snapshot
// finds it as it was.
func TestAccessControlledFollowsAdminTokens(t *testing.T) {
	h := newHarness(t)
	if h.state().AccessControlled() {
		t.Fatal("a new state has access control on")
	}
	h.must(fsm.PutRole{Role: apiRole})
	h.must(fsm.PutToken{Token: fsm.Token{ID: "t1", Name: "api", Roles: []string{"api"}, Hash: hashOfSecret("s1")}})
	if h.state().AccessControlled() {
		t.Fatal("a token without admin rights turned access control on")
	}
	h.must(fsm.PutRole{Role: fsm.Role{Name: "api", Admin: true}}) // t1 is now admin
	if !h.state().AccessControlled() {
		t.Fatal("a token given an admin role did not turn access control on")
	}
	h.must(fsm.PutToken{Token: root().Token})
	h.must(fsm.DeleteToken{ID: "t1"})
	for _, c := range []fsm.Command{fsm.DeleteToken{ID: "root"}, fsm.DeleteRole{Name: "api"}} {
		h.do(c) // refused or not, access control stays on
		if !h.state().AccessControlled() {
			t.Fatalf("%#v turned access control off", c)
		}
	}
	if _, ok := h.state().Token("root"); !ok {
		t.Fatal("the last admin token was deleted")
	}

	h.checkpoint()
	h.reopen()
	if !h.state().AccessControlled() {
		t.Fatal("access control off after the state was reloaded")
	}
	h2 := newHarness(t)
	if err := h2.restore(snapshotBytes(t, h.f)); err != nil {
		t.Fatal(err)
	}
	if !h2.state().AccessControlled() {
		t.Fatal("access control off after a snapshot was installed")
	}
	// Replayed from the log alone (no checkpoint): the same.
	h3 := newHarness(t)
	h3.must(root())
	h3.reopen()
	if !h3.state().AccessControlled() {
		t.Fatal("access control off after the log was replayed")
	}
}
