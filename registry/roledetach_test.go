package registry_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/rosterhq/roster/fsm"
)

// TestDeletedRoleLeavesItsTokens: a role deleted through a member leaves
// every token that named it, so a role created later under the same name
// is not silently granted to tokens made before (etcd takes a deleted
// role off every user). The tables are the same after a restart and after
// a replay of the whole log into a new state file.
func TestDeletedRoleLeavesItsTokens(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	n := openNode(t, dir, 50*time.Millisecond)
	for _, r := range []fsm.Role{
		{Name: "api", Rules: []fsm.Rule{{Prefix: "/services/api/", Read: true}}},
		{Name: "ro", Rules: []fsm.Rule{{Prefix: "/config/", Read: true}}},
	} {
		if err := n.PutRole(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	both, _, err := n.CreateToken(ctx, "both", []string{"api", "ro"})
	if err != nil {
		t.Fatal(err)
	}
	only, _, err := n.CreateToken(ctx, "only", []string{"api"})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.DeleteRole(ctx, "api"); err != nil {
		t.Fatal(err)
	}
	// A new role under the old name, much wider than the old one.
	if err := n.PutRole(ctx, fsm.Role{Name: "api", Rules: []fsm.Rule{{Prefix: "/", Read: true, Write: true}}}); err != nil {
		t.Fatal(err)
	}
	check := func(what string, n interface{ FSM() *fsm.FSM }) {
		t.Helper()
		st := n.FSM().State()
		for id, want := range map[string][]string{both.ID: {"ro"}, only.ID: nil} {
			tok, ok := st.Token(id)
			if !ok || !slices.Equal(tok.Roles, want) {
				t.Fatalf("%s: token %s has roles %q (found %v), want %q: the new role of the deleted one's name is granted to it", what, id, tok.Roles, ok, want)
			}
		}
	}
	check("after the deletion", n)
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	n = openNode(t, dir, 50*time.Millisecond)
	check("after a restart", n)
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	// Without the state file the whole log replays.
	if err := os.Remove(filepath.Join(dir, "state.db")); err != nil {
		t.Fatal(err)
	}
	n = openNode(t, dir, 50*time.Millisecond)
	check("after a replay of the log", n)
}
