package fsm

// Preview applies c to a private copy-on-write clone of s exactly as
// ApplyBatch applies an entry holding c, and returns c's result and the
// state c leaves. Nothing else sees it: s is not changed (any goroutine
// may preview a published State, concurrently with the apply goroutine
// and other previews), and the live state, the checkpoint's change set,
// the bbolt store, the event history and the observer never hear of it.
// The state returned has s's applied index; it is immutable too, and a
// next command previews on it (a sequence of commands, each seeing the
// ones before it).
//
// Preview c as it would be proposed: with today's rules
// (StrictDeadlines), and with the lease IDs its proposer chose (a grant
// of ID 0, or a put naming a placeholder, previews as the state machine
// would apply it: a lease of ID 0, a lease not found). Like Apply it
// validates nothing the proposer validates (key syntax, value size).
func (s *State) Preview(c Command) (Result, *State) {
	b := newBatch(s.clone())
	return b.apply(c), b.s
}
