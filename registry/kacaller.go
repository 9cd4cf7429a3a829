package registry

import (
	"context"
	"encoding/binary"
	"errors"

	"github.com/rosterhq/roster/fsm"
)

// Keep-alives and membership changes forwarded for a token (caller.go does
// the same for other writes). A follower's keep-alive group merges many
// callers' renewals into one forwarded request, so the request carries
// each renewal request's caller (kindKeepAliveAs): the leader, once it has
// applied as far as the follower had, refuses the renewals of a caller
// whose token is gone or may no longer renew them, and renews the rest;
// each refused caller alone gets the refusal. A membership change made for
// a token (kindMemberAs) needs the token to still be admin on the leader.
// A leader too old for these kinds answers that it does not know them and
// gets the plain request, checked by the follower alone, as before.

// kaEntry is one renewal request of a forwarded group: its caller's token
// ID ("" for requests made for no token, which are not checked) and its
// lease IDs.
type kaEntry struct {
	caller string
	ids    []int64
}

// encodeKeepAliveAs is the payload of kindKeepAliveAs: the applied index
// of this member's replica (uvarint), the number of entries (uvarint),
// then each entry: token ID (uvarint length, bytes), number of IDs
// (uvarint), the IDs (uvarint each).
func encodeKeepAliveAs(applied uint64, entries []kaEntry) []byte {
	b := binary.AppendUvarint(nil, applied)
	b = binary.AppendUvarint(b, uint64(len(entries)))
	for _, e := range entries {
		b = binary.AppendUvarint(b, uint64(len(e.caller)))
		b = append(b, e.caller...)
		b = binary.AppendUvarint(b, uint64(len(e.ids)))
		for _, id := range e.ids {
			b = binary.AppendUvarint(b, uint64(id))
		}
	}
	return b
}

func decodeKeepAliveAs(p []byte) (applied uint64, entries []kaEntry, err error) {
	next := func() (uint64, bool) {
		v, n := binary.Uvarint(p)
		if n <= 0 {
			return 0, false
		}
		p = p[n:]
		return v, true
	}
	applied, ok := next()
	count, ok2 := next()
	if !ok || !ok2 || count > uint64(len(p)) {
		return 0, nil, errors.New("bad keep-alive header")
	}
	entries = make([]kaEntry, 0, count)
	for range count {
		l, ok := next()
		if !ok || l > uint64(len(p)) {
			return 0, nil, errors.New("bad caller")
		}
		e := kaEntry{caller: string(p[:l])}
		p = p[l:]
		k, ok := next()
		if !ok || k > uint64(len(p)) {
			return 0, nil, errors.New("bad lease count")
		}
		e.ids = make([]int64, 0, k)
		for range k {
			id, ok := next()
			if !ok || id == 0 || id > 1<<63-1 {
				return 0, nil, errors.New("bad lease id")
			}
			e.ids = append(e.ids, int64(id))
		}
		entries = append(entries, e)
	}
	if len(p) != 0 {
		return 0, nil, errors.New("trailing bytes")
	}
	return applied, entries, nil
}

// keepAliveAs serves kindKeepAliveAs on the leader: one result per entry
// (a refusal, or nothing), then the renewal of every entry not refused. A
// renewal that fails as a whole (this member no longer leads, say) fails
// the request, as a forwarded keep-alive of no caller would, so that the
// follower tries the next leader.
func (n *Node) keepAliveAs(ctx context.Context, applied uint64, entries []kaEntry) ([]BatchResult, error) {
	if !n.IsLeader() {
		return nil, n.notLeader()
	}
	out := make([]BatchResult, len(entries)+1)
	callers := map[string]*Principal{}
	refused := map[string]error{}
	var ids []int64
	seen := map[int64]struct{}{}
	for i, e := range entries {
		if e.caller == "" {
			// Made for no caller: let in unchecked (caller.go, kindOpen).
			if err := n.checkOpen(); err != nil {
				out[i].Err = err
				continue
			}
		} else {
			p, err := callers[e.caller], refused[e.caller]
			if p == nil && err == nil {
				if p, err = n.checkCaller(ctx, applied, e.caller); err != nil {
					refused[e.caller] = err
				} else {
					callers[e.caller] = p
				}
			}
			if err == nil {
				err = n.mayWrite(p, fsm.KeepAlive{IDs: e.ids})
			}
			if err != nil {
				out[i].Err = err
				continue
			}
		}
		for _, id := range e.ids {
			if _, dup := seen[id]; !dup {
				seen[id] = struct{}{}
				ids = append(ids, id)
			}
		}
	}
	if len(ids) > 0 {
		res, err := n.keepAliveHere(ctx, ids)
		if err != nil {
			return nil, err
		}
		out[len(entries)] = BatchResult{Result: res}
	}
	return out, nil
}

// forwardKeepAliveGroup forwards one group of renewal requests, some made
// for tokens, and answers each request: with its caller's refusal, or
// with the renewal of the rest.
func (n *Node) forwardKeepAliveGroup(ctx context.Context, group []*kaRequest, count int) {
	var entries []kaEntry
	entryOf := make([]int, len(group))
	anon := -1 // the entry of the requests made for no token
	for i, r := range group {
		if r.caller == "" && anon >= 0 {
			entries[anon].ids = append(entries[anon].ids, r.ids...)
			entryOf[i] = anon
			continue
		}
		if r.caller == "" {
			anon = len(entries)
		}
		entryOf[i] = len(entries)
		entries = append(entries, kaEntry{caller: r.caller, ids: append([]int64(nil), r.ids...)})
	}
	ids := kaUnion(group, count)
	n.met.keepAliveBatch.Observe(float64(len(ids)))
	resp, plain, self, err := n.onLeaderAs(ctx, kindKeepAliveAs,
		encodeKeepAliveAs(n.fsm.State().AppliedIndex(), entries), kindPropose, fsm.Encode(fsm.KeepAlive{IDs: ids}))
	var all kaResponse
	var results []BatchResult
	switch {
	case self: // this member leads now: its front end checked the callers
		all = kaAnswer(n.proposeKeepAlive(ctx, ids))
	case err != nil:
		all = kaResponse{err: err}
	case plain: // an older leader renewed them all
		res, derr := fsm.DecodeResult(resp)
		if derr != nil {
			all = kaResponse{err: unknownOutcome("undecodable result from the leader: %v", derr)}
		} else {
			all = kaAnswer(res, res.Err)
		}
	default:
		if results, err = decodeBatchResults(resp, len(entries)+1); err != nil {
			results = nil
			all = kaResponse{err: unknownOutcome("undecodable keep-alive answer from the leader: %v", err)}
		} else {
			last := results[len(entries)]
			all = kaAnswer(last.Result, last.Err)
		}
	}
	for i, r := range group {
		if results != nil && results[entryOf[i]].Err != nil {
			r.resp <- kaResponse{err: results[entryOf[i]].Err}
			continue
		}
		r.resp <- all
	}
}

// kaUnion is the distinct IDs of a group's requests, in order.
func kaUnion(group []*kaRequest, count int) []int64 {
	ids := make([]int64, 0, count)
	seen := make(map[int64]struct{}, count)
	for _, r := range group {
		for _, id := range r.ids {
			if _, dup := seen[id]; !dup {
				seen[id] = struct{}{}
				ids = append(ids, id)
			}
		}
	}
	return ids
}

// kaAnswer is the answer every request of a group gets from its renewal.
func kaAnswer(res fsm.Result, err error) kaResponse {
	if err != nil {
		return kaResponse{err: err}
	}
	r := kaResponse{byID: make(map[int64]fsm.LeaseStatus, len(res.Renewed))}
	for _, st := range res.Renewed {
		r.byID[st.ID] = st
	}
	return r
}
