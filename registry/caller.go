package registry

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/rosterhq/roster/fsm"
)

// A front end checks a request's token against its own member's replica
// (API.md: an access control change is in force on a member once it has
// applied it). A follower that has not yet applied a token's deletion, or
// a change of its roles, would take the token's writes for as long as it
// lags, though the leader it forwards them to applied the change long
// ago. So a write made for a token carries the token's ID (WithCaller) to
// the leader, with the index the follower's replica had applied, and the
// leader, once it has applied as far (its state is then at least as new
// as the one the follower checked against), refuses the write when the
// token is gone, or when its roles no longer let it make the write
// (mayWrite: the rules both front ends check, MayApply in access.go). The
// follower checked the same, and what the write's answer shows (a put's
// prev), from its replica; for a token whose roles did not change, the
// leader's check passes whatever the follower let through.

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
// caller: kindProposeAs / kindBatchAs / kindMemberAs, whose payload is the
// applied index of this member's replica (uvarint), the token ID (uvarint
// length, then the bytes), then the payload of kind (for kindMemberAs,
// kind's byte first). Keep-alives name their callers per request
// (kacaller.go).
func (n *Node) withCaller(ctx context.Context, kind byte, payload []byte) (byte, []byte) {
	id, ok := callerOf(ctx)
	if !ok {
		if openKind(kind) {
			return kindOpen, append([]byte{kind}, payload...)
		}
		return kind, payload
	}
	switch kind {
	case kindPropose:
		return kindProposeAs, encodeCaller(n.fsm.State().AppliedIndex(), id, payload)
	case kindBatch:
		return kindBatchAs, encodeCaller(n.fsm.State().AppliedIndex(), id, payload)
	case kindAddMember, kindRemoveMember, kindUpdateMember:
		return kindMemberAs, encodeCaller(n.fsm.State().AppliedIndex(), id, append([]byte{kind}, payload...))
	}
	return kind, payload
}

// A write made for no caller is one this member's front end let in
// unchecked, access control being off in its state: the first admin
// token may have been applied on the leader already, and not here yet
// (a lagging member started without -auth). Such a write goes as
// kindOpen, and a leader whose state has access control on refuses it
// (checkOpen), as its own front end would refuse a request without a
// token. A member forwards nothing of its own over these kinds (its
// joins and metadata go through the HTTP API with a token; a leader
// records members itself), so every write of no caller is a client's.
// The plain kinds are what a member of a version before kindOpen sends,
// checked by it alone as before, and what a leader too old to know
// kindOpen gets (callOrPlain).

// openKind reports whether kind is a write that goes as kindOpen when
// made for no caller.
func openKind(kind byte) bool {
	switch kind {
	case kindPropose, kindBatch, kindAddMember, kindRemoveMember, kindUpdateMember:
		return true
	}
	return false
}

// checkOpen runs on the leader for a forwarded write made for no caller:
// refused, proposing nothing, once this member's state has access control
// on.
func (n *Node) checkOpen() error {
	if n.fsm.State().AccessControlled() {
		return fmt.Errorf("%w: access control is on in the cluster, and the member that forwarded this write, which had not applied that yet, let it in without a token", ErrUnauthenticated)
	}
	return nil
}

// encodeCaller is the payload of kindProposeAs / kindBatchAs.
func encodeCaller(applied uint64, id string, payload []byte) []byte {
	b := make([]byte, 0, 2*binary.MaxVarintLen64+len(id)+len(payload))
	b = binary.AppendUvarint(b, applied)
	b = binary.AppendUvarint(b, uint64(len(id)))
	return append(append(b, id...), payload...)
}

// unknownKind starts a leader's answer to a request kind it does not know,
// having done nothing; members before caller.go answer so to kindProposeAs
// and kindBatchAs.
const unknownKind = "unknown request kind"

// callOrPlain sends a request to the leader at addr; a request made for a
// token that the leader does not know how to take (a member of an older
// version, during a rolling upgrade) is sent again as the plain request,
// checked by this member alone as before; plain reports that it was.
func callOrPlain(ctx context.Context, p *peerClient, addr string, kind byte, payload []byte, plainKind byte, plainPayload []byte) (resp []byte, plain bool, err error) {
	resp, err = p.call(ctx, addr, kind, payload)
	if kind != plainKind && isUnknownKind(err) {
		resp, err = p.call(ctx, addr, plainKind, plainPayload)
		return resp, true, err
	}
	return resp, false, err
}

// isUnknownKind reports whether err is the leader's answer to a kind it
// does not know: an answer of classOther (not a peerError, nor an fsm
// error, whose texts may quote a key) that begins so.
func isUnknownKind(err error) bool {
	var pe *peerError
	return err != nil && !errors.As(err, &pe) && strings.HasPrefix(err.Error(), otherPrefix+unknownKind)
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
// this member has applied as far, the token must still exist, and what it
// may do is returned. Either refusal proposed nothing.
func (n *Node) checkCaller(ctx context.Context, applied uint64, id string) (*Principal, error) {
	if err := n.waitApplied(ctx, applied); err != nil {
		return nil, fmt.Errorf("%w: the leader has not applied index %d: %v", ErrNoLeader, applied, err)
	}
	st := n.fsm.State()
	t, ok := st.Token(id)
	if !ok {
		return nil, fmt.Errorf("%w: the token was deleted", ErrUnauthenticated)
	}
	return principalOf(st, t), nil
}

// batchAs is batchHere for the writes of p: each one p may no longer make
// fails alone, as the front end would have refused it.
func (n *Node) batchAs(ctx context.Context, p *Principal, cmds []fsm.Command) []BatchResult {
	if p == nil {
		return n.batchHere(ctx, cmds)
	}
	out := make([]BatchResult, len(cmds))
	var idx []int
	var ok []fsm.Command
	for i, c := range cmds {
		if err := n.mayWrite(p, c); err != nil {
			out[i].Err = err
			continue
		}
		idx, ok = append(idx, i), append(ok, c)
	}
	if len(ok) > 0 {
		for j, r := range n.batchHere(ctx, ok) {
			out[idx[j]] = r
		}
	}
	return out
}
