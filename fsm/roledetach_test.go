package fsm_test

import (
	"reflect"
	"testing"

	"github.com/rosterhq/roster/fsm"
)

// TestDeleteRoleDetachesItFromTokens: a DeleteRole with Detach (what
// every member proposes now) takes the role's name off every token, as
// etcd takes a deleted role off every user, so a role created later under
// the same name grants nothing to tokens made before; a token whose only
// role it was keeps no role. An entry without Detach (written before the
// flag) applies as it did then: tokens keep the name. Both survive a
// reopen, a snapshot restore and a replay of the log.
func TestDeleteRoleDetachesItFromTokens(t *testing.T) {
	h := newHarness(t)
	h.must(root())
	h.must(fsm.PutRole{Role: apiRole})
	h.must(fsm.PutRole{Role: fsm.Role{Name: "b", Rules: []fsm.Rule{{Prefix: "/b/", Read: true}}}})
	h.must(fsm.PutToken{Token: fsm.Token{ID: "t1", Name: "one", Roles: []string{"api", "b"}, Hash: hashOfSecret("s1")}})
	h.must(fsm.PutToken{Token: fsm.Token{ID: "t2", Name: "two", Roles: []string{"api"}, Hash: hashOfSecret("s2")}})
	h.must(fsm.PutToken{Token: fsm.Token{ID: "t3", Name: "three", Roles: []string{"b"}, Hash: hashOfSecret("s3")}})

	// Old rule: the name stays.
	h.must(fsm.DeleteRole{Name: "b"})
	if tok, _ := h.state().Token("t3"); !reflect.DeepEqual(tok.Roles, []string{"b"}) {
		t.Fatalf("an entry without Detach changed the token's roles: %v", tok.Roles)
	}
	// New rule: the name goes from every token that held it.
	h.must(fsm.DeleteRole{Name: "api", Detach: true})
	want := map[string][]string{"root": {fsm.RootRole}, "t1": {"b"}, "t2": {}, "t3": {"b"}}
	check := func(what string, s *fsm.State) {
		t.Helper()
		for id, roles := range want {
			tok, ok := s.Token(id)
			if !ok || len(tok.Roles) != len(roles) || (len(roles) > 0 && !reflect.DeepEqual(tok.Roles, roles)) {
				t.Fatalf("%s: token %s has roles %q (found %v), want %q", what, id, tok.Roles, ok, roles)
			}
		}
	}
	check("after the deletion", h.state())
	// A new role of the deleted name is not granted to the old tokens.
	h.must(fsm.PutRole{Role: fsm.Role{Name: "api", Rules: []fsm.Rule{{Prefix: "/", Read: true, Write: true}}}})
	check("after a new role of the same name", h.state())

	dumped := authDump(h.state())
	h.reopen()
	check("after reopen", h.state())
	other := newHarness(t)
	if err := other.f.Restore(readCloser(snapshotBytes(t, h.f))); err != nil {
		t.Fatal(err)
	}
	check("after restore", other.state())
	// The same commands replayed in one batch give the same tables.
	replay := newHarness(t)
	replay.apply(
		root(),
		fsm.PutRole{Role: apiRole},
		fsm.PutRole{Role: fsm.Role{Name: "b", Rules: []fsm.Rule{{Prefix: "/b/", Read: true}}}},
		fsm.PutToken{Token: fsm.Token{ID: "t1", Name: "one", Roles: []string{"api", "b"}, Hash: hashOfSecret("s1")}},
		fsm.PutToken{Token: fsm.Token{ID: "t2", Name: "two", Roles: []string{"api"}, Hash: hashOfSecret("s2")}},
		fsm.PutToken{Token: fsm.Token{ID: "t3", Name: "three", Roles: []string{"b"}, Hash: hashOfSecret("s3")}},
		fsm.DeleteRole{Name: "b"},
		fsm.DeleteRole{Name: "api", Detach: true},
		fsm.PutRole{Role: fsm.Role{Name: "api", Rules: []fsm.Rule{{Prefix: "/", Read: true, Write: true}}}},
	)
	check("after a replay", replay.state())
	if got := authDump(replay.state()); !reflect.DeepEqual(got, dumped) {
		t.Fatalf("replay: %v, want %v", got, dumped)
	}

	// The flag round-trips; without it the encoding is as before.
	for _, c := range []fsm.Command{fsm.DeleteRole{Name: "x", Detach: true}, fsm.DeleteRole{Name: "x"}} {
		got, err := fsm.Decode(fsm.Encode(c))
		if err != nil || !reflect.DeepEqual(got, c) {
			t.Errorf("%#v: decoded %#v, %v", c, got, err)
		}
	}
}
