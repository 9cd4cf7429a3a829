package registry

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
)

// A front end checks a request's token against its own member's replica
// (API.md: an access control change is in force on a member once it has
// applied it). A follower that has not yet applied a token's deletion
// would take the token's writes for as long as it lags, though the leader
// it forwards them to applied the deletion long ago. So a write made for
// a token carries the token's ID (WithCaller) to the leader, with the
// index the follower's replica had applied, and the leader, once it has
// applied as far, refuses the write when the token is gone: its state is
// then at least as new as the one the follower checked against.
//
// Only the token's existence is checked there; the roles a token names are
// judged by the front end, from the member's replica.

type callerKey struct{}

// WithCaller marks the writes made with ctx as made for the token p (nil:
// none). A follower forwarding them has the leader check that the token
// still exists in its newer state.
func WithCaller(ctx context.Context, p *Principal) context.Context {
	if p == nil || p.TokenID == "" {
		return ctx
	}
	return context.WithValue(ctx, callerKey{}, p.TokenID)
}

// callerOf is the token ID WithCaller put in ctx.
func callerOf(ctx context.Context) (string, bool) {
	id, ok := ctx.Value(callerKey{}).(string)
	return id, ok
}

// withCaller wraps a request of kind for the leader when ctx carries a
// caller: kindProposeAs / kindBatchAs, whose payload is the applied index
// of this member's replica (uvarint), the token ID (uvarint length, then
// the bytes), then the payload of kind.
func (n *Node) withCaller(ctx context.Context, kind byte, payload []byte) (byte, []byte) {
	id, ok := callerOf(ctx)
	if !ok {
		return kind, payload
	}
	switch kind {
	case kindPropose:
		return kindProposeAs, encodeCaller(n.fsm.State().AppliedIndex(), id, payload)
	case kindBatch:
		return kindBatchAs, encodeCaller(n.fsm.State().AppliedIndex(), id, payload)
	}
	return kind, payload
}

// encodeCaller is the payload of kindProposeAs / kindBatchAs.
func encodeCaller(applied uint64, id string, payload []byte) []byte {
	b := make([]byte, 0, 2*binary.MaxVarintLen64+len(id)+len(payload))
	b = binary.AppendUvarint(b, applied)
	b = binary.AppendUvarint(b, uint64(len(id)))
	return append(append(b, id...), payload...)
}

// decodeCaller splits the payload of kindProposeAs / kindBatchAs.
func decodeCaller(p []byte) (applied uint64, id string, rest []byte, err error) {
	applied, n := binary.Uvarint(p)
	if n <= 0 {
		return 0, "", nil, errors.New("bad applied index")
	}
	p = p[n:]
	l, n := binary.Uvarint(p)
	if n <= 0 || l > uint64(len(p)-n) {
		return 0, "", nil, errors.New("bad token id")
	}
	p = p[n:]
	return applied, string(p[:l]), p[l:], nil
}

// checkCaller runs on the leader for a forwarded write made for the token
// id, checked by a follower whose replica had applied up to applied: once
// this member has applied as far, the token must still exist. Either
// refusal proposed nothing.
func (n *Node) checkCaller(ctx context.Context, applied uint64, id string) error {
	if err := n.waitApplied(ctx, applied); err != nil {
		return fmt.Errorf("%w: the leader has not applied index %d: %v", ErrNoLeader, applied, err)
	}
	if _, ok := n.fsm.State().Token(id); !ok {
		return fmt.Errorf("%w: the token was deleted", ErrUnauthenticated)
	}
	return nil
}
