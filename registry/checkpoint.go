package registry

import "time"

// runCheckpointer owns the state machine's background checkpoint: at the
// first change after a checkpoint it waits CheckpointInterval (or until the
// state machine says enough entries piled up), then commits one. It never
// writes while nothing changes, so an idle member makes no disk writes.
// The acknowledgement path never waits on it: entries are durable in the
// raft log before they apply.
func (n *Node) runCheckpointer() {
	defer n.wg.Done()
	wanted := n.fsm.CheckpointWanted()
	for {
		select {
		case <-n.stop:
			return
		case <-wanted:
		}
		t := time.NewTimer(n.cfg.CheckpointInterval)
		select {
		case <-t.C:
		case <-wanted: // enough entries piled up
		case <-n.stop:
			t.Stop()
			return // Close commits the last checkpoint
		}
		t.Stop()
		start := time.Now()
		if err := n.fsm.Checkpoint(); err != nil {
			return // the state machine failed: watchFSM stops the node
		}
		n.met.checkpointDuration.Observe(time.Since(start).Seconds())
	}
}
