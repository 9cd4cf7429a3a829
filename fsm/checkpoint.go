package fsm

import "fmt"

// Checkpoint crash points.
const (
	// FailCheckpointBeforeCommit: a checkpoint's records are about to be
	// committed to the state file.
	FailCheckpointBeforeCommit = "checkpoint-before-commit"
	// FailCheckpointAfterCommit: the checkpoint is committed (and synced).
	FailCheckpointAfterCommit = "checkpoint-after-commit"
)

// CheckpointWanted receives a value when a checkpoint is wanted: at the
// first change after a checkpoint (the owner then waits its interval, so
// changes are committed in batches) and when CheckpointEntries entries have
// piled up (the owner should not wait). Nothing arrives while nothing
// changes: an idle member writes nothing.
func (f *FSM) CheckpointWanted() <-chan struct{} { return f.wanted }

// Checkpoint commits every record changed since the last checkpoint, as
// found in the current state, with that state's applied index, in one
// transaction; with nothing changed it writes nothing. A failure stops the
// state machine: the changes it held are no longer tracked.
//
// The owner (registry) calls it from its own goroutine on its own timer;
// Snapshot calls it too, so that the log raft compacts after a snapshot is
// never needed to rebuild the state file.
func (f *FSM) Checkpoint() error {
	f.ckptMu.Lock()
	defer f.ckptMu.Unlock()
	if err := f.Err(); err != nil {
		return err
	}
	f.dirtyMu.Lock()
	changes := f.dirty
	f.dirty = changeSet{}
	f.pending = 0
	s := f.cur.Load()
	f.dirtyMu.Unlock()
	if s.applied == f.durable.Load() && changes.len() == 0 {
		return nil
	}
	f.failpoint(FailCheckpointBeforeCommit)
	f.dbMu.RLock()
	err := writeCheckpoint(f.db, s, &changes)
	f.dbMu.RUnlock()
	if err != nil {
		err = fmt.Errorf("checkpoint at index %d: %w", s.applied, err)
		f.fail(err)
		return f.Err()
	}
	f.failpoint(FailCheckpointAfterCommit)
	f.durable.Store(s.applied)
	f.checkpoints.Add(1)
	return nil
}

// DurableIndex is the applied index of the last committed checkpoint: the
// state file holds every entry up to it.
func (f *FSM) DurableIndex() uint64 { return f.durable.Load() }

// Checkpoints counts the checkpoint transactions committed since Open.
func (f *FSM) Checkpoints() int64 { return f.checkpoints.Load() }
