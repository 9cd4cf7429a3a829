package registry

import (
	"testing"

	"github.com/rosterhq/roster/fsm"
)

// Every keep-alive and put this member proposes, a txn's puts included,
// carries the rule that a lease past its deadline is gone, whatever a
// forwarding member (perhaps of an older build) sent.
func TestProposalsCarryTheStrictDeadlineRule(t *testing.T) {
	for _, c := range []fsm.Command{
		fsm.KeepAlive{IDs: []int64{1}},
		fsm.Put{Key: "/a", Lease: 1},
		fsm.Txn{Ops: []fsm.Command{fsm.Grant{ID: 2, TTL: 5}, fsm.Put{Key: "/b", Lease: 2}, fsm.Delete{Key: "/c"}}},
	} {
		got, err := fsm.Decode(encodeProposal(c))
		if err != nil {
			t.Fatalf("%#v: %v", c, err)
		}
		var strict []bool
		for _, op := range append([]fsm.Command{got}, txnOps(got)...) {
			switch op := op.(type) {
			case fsm.KeepAlive:
				strict = append(strict, op.Strict)
			case fsm.Put:
				strict = append(strict, op.Strict)
			}
		}
		if len(strict) == 0 {
			t.Fatalf("%#v: nothing to check", got)
		}
		for _, s := range strict {
			if !s {
				t.Fatalf("proposed %#v without the strict rule", got)
			}
		}
	}
}

func TestProposalsDetachDeletedRoles(t *testing.T) {
	got, err := fsm.Decode(encodeProposal(fsm.DeleteRole{Name: "api"}))
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := got.(fsm.DeleteRole); !ok || !d.Detach || d.Name != "api" {
		t.Fatalf("proposed %#v, want a DeleteRole of api with Detach", got)
	}
}

func txnOps(c fsm.Command) []fsm.Command {
	if t, ok := c.(fsm.Txn); ok {
		return t.Ops
	}
	return nil
}
