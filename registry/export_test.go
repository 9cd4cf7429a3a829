package registry

import (
	"testing"

	"github.com/rosterhq/roster/fsm"
)

// HeldFollower is, for the front ends' tests in package registry_test, a
// three-member access-controlled cluster whose Follower is held behind:
// it has not applied Token, created through Leader (role "api": read and
// write under /services/), until Release. RootSecret is the root token.
type HeldFollower struct {
	Leader, Follower *Node
	Other            *Node // the third member
	Token            fsm.Token
	Secret           string
	RootSecret       string
	Release          func()
	// Waits is how many requests wait on Follower for a token it does not
	// know (ReadForUnknownToken).
	Waits func() int64
}

const heldRootSecret = "root-secret-of-the-token-wait-test"

// StartHeldFollower starts a HeldFollower.
func StartHeldFollower(t *testing.T) HeldFollower {
	hc, leader, f, tok, secret := tokenOnHeldFollower(t, nil)
	var other *Node
	for _, n := range hc.nodes {
		if n != leader && n != f {
			other = n
		}
	}
	return HeldFollower{
		Leader: leader, Follower: f, Other: other, Token: tok, Secret: secret, RootSecret: heldRootSecret,
		Release: hc.releaseHold, Waits: f.tokenWaits.Load,
	}
}
