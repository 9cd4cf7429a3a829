package registry

import (
	"context"
	"errors"
	"fmt"

	"github.com/rosterhq/roster/fsm"
)

// A token is in force on a member once the member has applied it, and a
// front end checks a request's token against its own member's replica.
// A token created through the leader and used at once through a follower
// (or a non-voter) that has not applied it yet would be refused, though
// its creation was acknowledged: so a front end that finds a token
// unknown asks, once, for a linearizable read (Read with stale false: a
// read index from the leader, then a wait until this member has applied
// it), and checks the token again on that state, which holds every token
// whose creation was acknowledged before the request came. Only a token
// unknown there is refused.
//
// A wrong token costs the same read: read indexes are batched (reads.go),
// one round in flight per member whatever the number of waiters, so a
// flood of wrong tokens adds at most one read-index request per member to
// the leader at a time; what it holds is the requests themselves, for
// about a round trip to the leader each. MaxTokenWaits bounds how many
// wait at once on a member; beyond, a request is refused as unknown at
// once, as before this check existed.

// ReadForUnknownToken is a linearizable read for a front end whose
// replica does not know a request's token: the state to check the token
// again against. Its errors: ErrUnknownToken when MaxTokenWaits requests
// wait already; an ErrTimeout when ctx ended first; else ErrNoLeader
// (no leader could confirm the read: the token may well be valid, so the
// answer is the retryable "no leader", not a refusal).
func (n *Node) ReadForUnknownToken(ctx context.Context) (*fsm.State, error) {
	if n.tokenWaits.Add(1) > int64(n.cfg.MaxTokenWaits) {
		n.tokenWaits.Add(-1)
		return nil, fmt.Errorf("%w (and %d requests wait already for tokens this member does not know)", ErrUnknownToken, n.cfg.MaxTokenWaits)
	}
	defer n.tokenWaits.Add(-1)
	st, err := n.Read(ctx, false)
	switch {
	case err == nil:
		return st, nil
	case ctx.Err() != nil:
		return nil, fmt.Errorf("%w: waiting to learn whether the token exists: %v", ErrTimeout, ctx.Err())
	}
	return nil, fmt.Errorf("%w: this member does not know the token and could not ask the leader: %v", ErrNoLeader, err)
}

// AuthenticateLatest resolves a token that st, this member's replica,
// does not know, against a state from ReadForUnknownToken, and returns
// that state too. Any other outcome of Authenticate(st, token) is
// returned as it is.
func (n *Node) AuthenticateLatest(ctx context.Context, st *fsm.State, token string) (*fsm.State, *Principal, error) {
	p, err := Authenticate(st, token)
	if !errors.Is(err, ErrUnknownToken) {
		return st, p, err
	}
	if st, err = n.ReadForUnknownToken(ctx); err != nil {
		return nil, nil, err
	}
	p, err = Authenticate(st, token)
	return st, p, err
}
