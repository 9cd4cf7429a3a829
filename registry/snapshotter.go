package registry

import (
	"errors"

	"github.com/hashicorp/raft"
)

// Raft decides on its own timer whether a snapshot is due: every one to
// two SnapshotIntervals it looks whether SnapshotThreshold entries came
// since the last. Under a heavy write load the log grows by the write rate
// times that wait in between, and a restart reads back every entry after
// the newest snapshot, one GetLog at a time and twice (raft scans them for
// configuration changes, then hands them to the state machine, which skips
// those under its checkpoint): about 11 µs an entry. So the checkpointer
// also asks raft for a snapshot as soon as a checkpoint lands
// SnapshotThreshold entries past the newest snapshot, which keeps what a
// restart reads back near the threshold whatever the write rate
// (docs/benchmarks.md, "Restart after sustained writes").

// maybeSnapshot starts a snapshot when the checkpoint is SnapshotThreshold
// entries past the newest one known and none is being taken. It never
// blocks the checkpointer: the snapshot runs on a goroutine of the node.
func (n *Node) maybeSnapshot() {
	if n.fsm.DurableIndex() < n.snapIndex.Load()+n.cfg.SnapshotThreshold {
		return
	}
	if !n.snapping.CompareAndSwap(false, true) {
		return
	}
	if !n.goAdd() {
		n.snapping.Store(false)
		return
	}
	go func() {
		defer n.wg.Done()
		defer n.snapping.Store(false)
		at := n.fsm.DurableIndex()
		err := n.waitFuture(n.stopCtx, n.raft.Snapshot())
		switch {
		case err == nil, errors.Is(err, raft.ErrNothingNewToSnapshot):
			n.noteSnapshot()
		case n.stopCtx.Err() != nil:
			// Closing: raft shuts down, and Close commits the checkpoint.
		default:
			// Try again only after another threshold of entries, not at
			// every checkpoint: a failing disk gets one attempt per
			// threshold, and raft's own timer stays the backstop.
			n.log.Warn("snapshot after many entries failed", "index", at, "error", err)
			n.snapIndex.Store(max(n.snapIndex.Load(), at))
		}
	}()
}

// noteSnapshot records the newest snapshot's index, whoever took it.
func (n *Node) noteSnapshot() {
	list, err := n.snaps.List()
	if err == nil && len(list) > 0 {
		n.snapIndex.Store(max(n.snapIndex.Load(), list[0].Index))
	}
}
