package fsm

// Crash points. A test sets Config.Failpoint to a function that kills the
// process when it is called with a chosen name, then checks that the member
// recovers a consistent state on restart. Unset (nil), a point costs one
// nil check.
const (
	// FailSnapshotPersistStart: raft asked for the snapshot to be written;
	// nothing is in the sink yet.
	FailSnapshotPersistStart = "snapshot-persist-start"
	// FailSnapshotPersistWritten: the whole snapshot is in the sink, which
	// is not closed (raft has not made it visible).
	FailSnapshotPersistWritten = "snapshot-persist-written"
	// FailSnapshotPersisted: the sink is closed; raft may now compact the
	// log up to the snapshot.
	FailSnapshotPersisted = "snapshot-persisted"
	// FailRestoreWritten: a received snapshot is in the temporary file,
	// not yet synced.
	FailRestoreWritten = "restore-written"
	// FailRestoreSynced: the temporary file is synced and checked, not yet
	// renamed over the state file.
	FailRestoreSynced = "restore-synced"
	// FailRestoreRenamed: the state file is the snapshot on disk; the
	// in-memory state is not reloaded yet.
	FailRestoreRenamed = "restore-renamed"
	// FailRestoreReloaded: the restored state is loaded and published.
	FailRestoreReloaded = "restore-reloaded"
)

// Failpoints lists every crash point of the state machine.
func Failpoints() []string {
	return []string{
		FailSnapshotPersistStart, FailSnapshotPersistWritten, FailSnapshotPersisted,
		FailRestoreWritten, FailRestoreSynced, FailRestoreRenamed, FailRestoreReloaded,
		FailCheckpointBeforeCommit, FailCheckpointAfterCommit, FailCheckpointBeforeMerge, FailCheckpointAfterMerge,
	}
}

// failpoint calls the configured hook, if any.
func (f *FSM) failpoint(name string) {
	if f.cfg.Failpoint != nil {
		f.cfg.Failpoint(name)
	}
}
