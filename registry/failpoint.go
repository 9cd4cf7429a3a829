package registry

import (
	"github.com/hashicorp/raft"
	"github.com/rosterhq/roster/fsm"
)

// Crash points of the node, besides the state machine's (fsm.Failpoints).
// Config.Failpoint is called with the name at each; unset it costs a nil
// check.
const (
	// FailCommitBeforeAck: a client's write committed and applied on the
	// leader; its answer has not reached the caller. (The leader's own
	// ticks and member records do not pass here.)
	FailCommitBeforeAck = "commit-before-ack"
	// FailCompactBefore: raft is about to delete log entries covered by a
	// snapshot.
	FailCompactBefore = "compact-before"
	// FailCompactAfter: raft deleted them.
	FailCompactAfter = "compact-after"
)

// Failpoints lists every crash point a node has, the state machine's
// included.
func Failpoints() []string {
	return append(fsm.Failpoints(), FailCommitBeforeAck, FailCompactBefore, FailCompactAfter)
}

func (n *Node) failpoint(name string) {
	if n.cfg.Failpoint != nil {
		n.cfg.Failpoint(name)
	}
}

// compactHookStore calls the compaction crash points around DeleteRange,
// the only way raft removes entries from the log. It wraps the log store
// only when a failpoint hook is set.
type compactHookStore struct {
	raft.LogStore
	failpoint func(string)
}

func (s compactHookStore) DeleteRange(min, max uint64) error {
	s.failpoint(FailCompactBefore)
	err := s.LogStore.DeleteRange(min, max)
	if err == nil {
		s.failpoint(FailCompactAfter)
	}
	return err
}
