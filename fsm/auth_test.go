package fsm_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"reflect"
	"testing"

	"github.com/rosterhq/roster/fsm"
)

func hashOfSecret(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }

func root() fsm.PutToken {
	return fsm.PutToken{Token: fsm.Token{ID: "root", Name: "root", Roles: []string{fsm.RootRole}, Hash: hashOfSecret("root-secret")}, IfNone: true}
}

var apiRole = fsm.Role{Name: "api", Rules: []fsm.Rule{{Prefix: "/services/api/", Read: true, Write: true}, {Prefix: "/config/", Read: true}}}

// authDump is the access control state in a comparable form.
func authDump(s *fsm.State) [2]any { return [2]any{s.Roles(), s.Tokens()} }

func TestAuthCommandsRoundTrip(t *testing.T) {
	for _, c := range []fsm.Command{
		fsm.PutRole{Role: apiRole},
		fsm.PutRole{Role: fsm.Role{Name: "ops", Admin: true}},
		fsm.DeleteRole{Name: "api"},
		fsm.PutToken{Token: root().Token},
		root(),
		fsm.DeleteToken{ID: "a1b2"},
	} {
		got, err := fsm.Decode(fsm.Encode(c))
		if err != nil || !reflect.DeepEqual(got, c) {
			t.Errorf("%#v: decoded %#v, %v", c, got, err)
		}
	}
	// Strict: an unknown field inside a rule is an error, not skipped.
	b := fsm.Encode(fsm.PutRole{Role: fsm.Role{Name: "x", Rules: []fsm.Rule{{Prefix: "/a", Read: true}}}})
	bad := append(bytes.Clone(b), 0x12, 0x02, 0x20, 0x01) // a rule {4: 1}
	if _, err := fsm.Decode(bad); !errors.Is(err, fsm.ErrDecode) {
		t.Errorf("unknown rule field decoded: %v", err)
	}
}

func TestAuthApply(t *testing.T) {
	h := newHarness(t)
	// The root token goes in once: IfNone makes a second bootstrap a no-op error.
	h.must(root())
	if r := h.do(root()); !errors.Is(r.Err, fsm.ErrTokenExists) {
		t.Fatalf("second IfNone root: %v", r.Err)
	}
	rev := h.state().Revision()
	h.must(fsm.PutRole{Role: apiRole})
	h.must(fsm.PutToken{Token: fsm.Token{ID: "t1", Name: "api-registrar", Roles: []string{"api"}, Hash: hashOfSecret("s1")}})
	if h.state().Revision() != rev {
		t.Fatalf("auth changes moved the store revision to %d", h.state().Revision())
	}
	tok, ok := h.state().TokenByHash(hashOfSecret("s1"))
	if !ok || tok.ID != "t1" || tok.Name != "api-registrar" {
		t.Fatalf("token by hash: %+v %v", tok, ok)
	}
	if _, ok := h.state().TokenByHash(hashOfSecret("s2")); ok {
		t.Fatal("an unknown secret found a token")
	}
	r, ok := h.state().Role("api")
	if !ok || !reflect.DeepEqual(r, apiRole) {
		t.Fatalf("role: %+v", r)
	}
	if r, _ := h.state().Role(fsm.RootRole); !r.Admin {
		t.Fatal("the built-in root role is not admin")
	}

	// Refusals change nothing.
	before := authDump(h.state())
	for _, c := range []struct {
		cmd  fsm.Command
		want error
	}{
		{fsm.PutToken{Token: fsm.Token{ID: "t1", Name: "dup", Roles: []string{"api"}, Hash: hashOfSecret("s9")}}, fsm.ErrTokenExists},
		{fsm.PutToken{Token: fsm.Token{ID: "t2", Name: "same secret", Roles: []string{"api"}, Hash: hashOfSecret("s1")}}, fsm.ErrTokenExists},
		{fsm.PutToken{Token: fsm.Token{ID: "t3", Name: "ghost", Roles: []string{"nope"}, Hash: hashOfSecret("s3")}}, fsm.ErrInvalidArgument},
		{fsm.PutToken{Token: fsm.Token{ID: "t4", Name: "short hash", Roles: []string{"api"}, Hash: []byte{1}}}, fsm.ErrInvalidArgument},
		{fsm.PutRole{Role: fsm.Role{Name: fsm.RootRole}}, fsm.ErrInvalidArgument},
		{fsm.PutRole{Role: fsm.Role{Name: "bad name"}}, fsm.ErrInvalidArgument},
		{fsm.PutRole{Role: fsm.Role{Name: "r", Rules: []fsm.Rule{{Prefix: "nope", Read: true}}}}, fsm.ErrInvalidArgument},
		{fsm.PutRole{Role: fsm.Role{Name: "r", Rules: []fsm.Rule{{Prefix: "/a"}}}}, fsm.ErrInvalidArgument},
		{fsm.DeleteRole{Name: "absent"}, fsm.ErrRoleNotFound},
		{fsm.DeleteToken{ID: "absent"}, fsm.ErrTokenNotFound},
		// The root token is the only admin: deleting it would lock everyone out.
		{fsm.DeleteToken{ID: "root"}, fsm.ErrInvalidArgument},
	} {
		if r := h.do(c.cmd); !errors.Is(r.Err, c.want) {
			t.Errorf("%#v: %v, want %v", c.cmd, r.Err, c.want)
		}
		if got := authDump(h.state()); !reflect.DeepEqual(got, before) {
			t.Fatalf("%#v changed the tables:\n%v\n%v", c.cmd, before, got)
		}
	}

	// A second admin makes the root token deletable; then the ops role
	// cannot lose admin, nor be deleted, while its token is the last admin.
	h.must(fsm.PutRole{Role: fsm.Role{Name: "ops", Admin: true}})
	h.must(fsm.PutToken{Token: fsm.Token{ID: "t5", Name: "ops", Roles: []string{"ops", "api"}, Hash: hashOfSecret("s5")}})
	h.must(fsm.DeleteToken{ID: "root"})
	if r := h.do(fsm.PutRole{Role: fsm.Role{Name: "ops"}}); !errors.Is(r.Err, fsm.ErrInvalidArgument) {
		t.Fatalf("removing the last admin role's flag: %v", r.Err)
	}
	if r := h.do(fsm.DeleteRole{Name: "ops"}); !errors.Is(r.Err, fsm.ErrInvalidArgument) {
		t.Fatalf("deleting the last admin role: %v", r.Err)
	}
	// A deleted role leaves its name on tokens but grants nothing.
	h.must(fsm.DeleteRole{Name: "api"})
	if tok, _ := h.state().TokenByHash(hashOfSecret("s1")); !reflect.DeepEqual(tok.Roles, []string{"api"}) {
		t.Fatalf("token roles after the role's deletion: %v", tok.Roles)
	}
	if _, ok := h.state().Role("api"); ok {
		t.Fatal("deleted role still there")
	}
	h.must(fsm.DeleteToken{ID: "t1"})
	if _, ok := h.state().TokenByHash(hashOfSecret("s1")); ok {
		t.Fatal("a deleted token is still found by its secret")
	}

	// Everything survives a reopen (bbolt) and a snapshot restore.
	want := authDump(h.state())
	h.reopen()
	if got := authDump(h.state()); !reflect.DeepEqual(got, want) {
		t.Fatalf("after reopen:\n%v\nwant\n%v", got, want)
	}
	data := snapshotBytes(t, h.f)
	other := newHarness(t)
	other.must(fsm.PutRole{Role: fsm.Role{Name: "stale", Rules: []fsm.Rule{{Prefix: "/", Read: true}}}})
	if err := other.f.Restore(readCloser(data)); err != nil {
		t.Fatal(err)
	}
	if got := authDump(other.state()); !reflect.DeepEqual(got, want) {
		t.Fatalf("after restore:\n%v\nwant\n%v", got, want)
	}
	if _, ok := other.state().TokenByHash(hashOfSecret("s5")); !ok {
		t.Fatal("restored state lost the hash index")
	}
}

// TestAuthBatchDeterministic applies the same auth commands in one batch
// and one by one: same tables, same results.
func TestAuthBatchDeterministic(t *testing.T) {
	cmds := []fsm.Command{
		root(),
		fsm.PutRole{Role: apiRole},
		fsm.PutRole{Role: fsm.Role{Name: "b", Rules: []fsm.Rule{{Prefix: "/b/", Write: true}}}},
		fsm.PutToken{Token: fsm.Token{ID: "x", Name: "x", Roles: []string{"api", "b"}, Hash: hashOfSecret("x")}},
		fsm.DeleteRole{Name: "b"},
		fsm.DeleteToken{ID: "root"}, // refused: x is not admin
		fsm.PutToken{Token: fsm.Token{ID: "y", Name: "y", Roles: []string{"b"}, Hash: hashOfSecret("y")}}, // refused: b is gone
	}
	one, each := newHarness(t), newHarness(t)
	r1 := one.apply(cmds...)
	for i, c := range cmds {
		r2 := each.do(c)
		if errClass(r1[i].Err) != errClass(r2.Err) {
			t.Errorf("command %d: batch %v, alone %v", i, r1[i].Err, r2.Err)
		}
	}
	if !reflect.DeepEqual(authDump(one.state()), authDump(each.state())) {
		t.Fatalf("batch and single applies differ")
	}
	one.reopen()
	if !reflect.DeepEqual(authDump(one.state()), authDump(each.state())) {
		t.Fatalf("batch state not persisted as applied")
	}
}
