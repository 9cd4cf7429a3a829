package fsm

import (
	"fmt"

	"github.com/rosterhq/roster/internal/boltmap"
)

// Checkpoint crash points.
const (
	// FailCheckpointBeforeCommit: a checkpoint's records are about to be
	// committed to the state file.
	FailCheckpointBeforeCommit = "checkpoint-before-commit"
	// FailCheckpointAfterCommit: the checkpoint is committed (and synced).
	FailCheckpointAfterCommit = "checkpoint-after-commit"
	// FailCheckpointBeforeMerge: the checkpoint about to be committed is a
	// merge (records in place, the journal emptied); the before-commit
	// point follows it.
	FailCheckpointBeforeMerge = "checkpoint-before-merge"
	// FailCheckpointAfterMerge: a merge is committed (and synced).
	FailCheckpointAfterMerge = "checkpoint-after-merge"
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
	// Append the changes to the journal, or merge when the journal would
	// outgrow its bound (or is off): see journal.go. Without changes (a
	// tick) only the meta values move.
	var journal []byte
	if changes.len() > 0 && f.cfg.JournalBytes > 0 {
		journal = f.journalBufs.encode(s, &changes, f.cfg.JournalBytes-f.journalBytes)
	}
	merge := journal == nil && changes.len() > 0
	if merge {
		f.failpoint(FailCheckpointBeforeMerge)
	}
	f.failpoint(FailCheckpointBeforeCommit)
	f.dbMu.RLock()
	err := writeCheckpoint(f.db, s, &changes, journal, merge && f.journalBytes > 0)
	if err == nil {
		if merge {
			f.placedSinceRelease += changes.len()
		}
		if !merge || f.placedSinceRelease >= releaseRecords {
			f.releaseMapped()
		}
	}
	f.dbMu.RUnlock()
	if err != nil {
		err = fmt.Errorf("checkpoint at index %d: %w", s.applied, err)
		f.fail(err)
		return f.Err()
	}
	f.failpoint(FailCheckpointAfterCommit)
	switch {
	case merge:
		f.failpoint(FailCheckpointAfterMerge)
		f.journalBytes = 0
		f.merges.Add(1)
	case journal != nil:
		f.journalBytes += len(journal)
	}
	f.durable.Store(s.applied)
	f.checkpoints.Add(1)
	return nil
}

// releaseRecords is how many records checkpoints write in place before one
// releases the pages they read through bbolt's map: each may have read its
// own leaf (8 MiB for releaseRecords), and a page read again after a
// release faults back in. Releasing after every checkpoint of 500 random
// writes in place (the journal off) made it 58 % dearer. A journal append
// reads few pages, and releasing after each costs nothing measurable; a
// merge counts the records it writes in place like any other (one of the
// default 16 MiB journal writes far more than releaseRecords).
const releaseRecords = 2048

// releaseMapped drops the state file's pages that bbolt read through its
// map from the resident set (see internal/boltmap): a merge reads the
// leaves of every key it writes, a load the whole file, and nothing serves
// requests from the file. dbMu is held; so is ckptMu, or the FSM is not
// yet shared.
func (f *FSM) releaseMapped() {
	f.placedSinceRelease = 0
	if err := boltmap.Release(f.db); err != nil && f.releaseWarned.CompareAndSwap(false, true) {
		f.log.Warn("state file pages stay resident", "error", err)
	}
}

// Merges counts the checkpoints since Open that wrote their records in
// place and emptied the journal.
func (f *FSM) Merges() int64 { return f.merges.Load() }

// DurableIndex is the applied index of the last committed checkpoint: the
// state file holds every entry up to it.
func (f *FSM) DurableIndex() uint64 { return f.durable.Load() }

// Checkpoints counts the checkpoint transactions committed since Open.
func (f *FSM) Checkpoints() int64 { return f.checkpoints.Load() }
