package fsm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"
	bolt "go.etcd.io/bbolt"
)

// Config configures an FSM.
type Config struct {
	// Path is the bbolt file holding the checkpoint (created when absent).
	Path string
	// NoSync skips fsync of the state file. Only for tests and benchmarks:
	// the raft log is the durable record, but an unsynced bbolt file can
	// be torn by a power loss.
	NoSync bool
	// WatchHistory is how many recent events History keeps for watches
	// (default DefaultWatchHistory).
	WatchHistory int
	// CheckpointEntries is how many applied entries make a checkpoint
	// wanted at once rather than at the owner's next interval (default
	// DefaultCheckpointEntries).
	CheckpointEntries int
	// JournalBytes bounds the checkpoint's journal (journal.go): a
	// checkpoint whose changes would take it past this size merges them
	// into the state file's buckets instead. 0 means DefaultJournalBytes; a
	// negative value turns the journal off (every checkpoint writes in
	// place). At most MaxJournalBytes.
	JournalBytes int
	// WatchHistoryBytes bounds the keys and values those events hold
	// (default DefaultWatchHistoryBytes).
	WatchHistoryBytes int64
	Logger            *slog.Logger
	// Failpoint, when set, is called at each crash point (see Failpoints)
	// with its name; tests make it kill the process.
	Failpoint func(name string)
}

// Observer is told about every published batch, once it is visible to
// readers, on the apply goroutine: it must not block.
type Observer func(s *State, events []Event)

// FSM is Roster's replicated state machine: a raft.BatchingFSM whose live
// state is an in-memory copy-on-write index, checkpointed to bbolt in the
// background (see doc.go).
//
// Apply never reads the clock, draws random numbers, starts goroutines or
// lets map order decide an outcome; everything it needs travels in the
// command.
type FSM struct {
	cfg Config
	log *slog.Logger

	dbMu sync.RWMutex // guards db against Restore swapping it
	db   *bolt.DB

	cur atomic.Pointer[State]

	// Change tracking for the checkpoint. dirtyMu is held only to record a
	// batch's changes together with publishing its state, and to swap both
	// out: never across I/O.
	dirtyMu sync.Mutex
	dirty   changeSet
	pending int           // entries applied since the last checkpoint
	wanted  chan struct{} // cap 1: a checkpoint is wanted

	ckptMu      sync.Mutex    // one checkpoint (or restore) at a time
	durable     atomic.Uint64 // applied index of the state file
	checkpoints atomic.Int64  // checkpoint transactions committed
	merges      atomic.Int64  // of which merges
	// releaseWarned: a failure to release mapped pages was logged once.
	releaseWarned atomic.Bool

	// Under ckptMu: the journal's size (the records it holds are read
	// back from it by the next merge).
	journalBytes int
	journalBufs  journalBufs
	// placedSinceRelease counts the records checkpoints wrote in place
	// since the mapped pages were last released.
	placedSinceRelease int

	notifyMu sync.Mutex
	notify   chan struct{} // closed whenever cur changes

	failOnce sync.Once
	failed   chan struct{}
	failErr  atomic.Pointer[error]

	history *History

	expired  atomic.Int64
	observer atomic.Pointer[Observer]

	closeOnce sync.Once
}

var (
	_ raft.BatchingFSM = (*FSM)(nil)
)

// DefaultCheckpointEntries is Config.CheckpointEntries' default.
const DefaultCheckpointEntries = 10_000

// Open opens (or creates) the state file and loads it into memory.
func Open(cfg Config) (*FSM, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.CheckpointEntries <= 0 {
		cfg.CheckpointEntries = DefaultCheckpointEntries
	}
	if cfg.JournalBytes == 0 {
		cfg.JournalBytes = DefaultJournalBytes
	}
	if cfg.JournalBytes > MaxJournalBytes {
		return nil, invalid("journal bound of %d bytes: at most %d (a checkpoint's changes are one bbolt value)", cfg.JournalBytes, MaxJournalBytes)
	}
	db, err := openDB(cfg.Path, cfg.NoSync)
	if err != nil {
		return nil, err
	}
	// Everything loadState allocates stays live: collecting while it runs
	// only burns CPU on a restart (a fifth of the load of a million keys).
	gc := debug.SetGCPercent(-1)
	s, journalBytes, err := loadState(db)
	debug.SetGCPercent(gc)
	if err != nil {
		db.Close()
		return nil, err
	}
	f := &FSM{cfg: cfg, log: cfg.Logger, db: db, notify: make(chan struct{}), failed: make(chan struct{}),
		wanted: make(chan struct{}, 1), history: NewHistory(cfg.WatchHistory, cfg.WatchHistoryBytes, s.revision)}
	f.cur.Store(s)
	f.durable.Store(s.applied)
	f.journalBytes = journalBytes
	f.releaseMapped()
	return f, nil
}

// Close closes the state file. It is idempotent.
func (f *FSM) Close() error {
	var err error
	f.closeOnce.Do(func() {
		f.dbMu.Lock()
		defer f.dbMu.Unlock()
		err = f.db.Close()
	})
	return err
}

// State returns the latest applied state. It is immutable: read it freely.
func (f *FSM) State() *State { return f.cur.Load() }

// History is the log of recent events that watches follow.
func (f *FSM) History() *History { return f.history }

// SetObserver installs the function told about every published batch.
func (f *FSM) SetObserver(o Observer) { f.observer.Store(&o) }

// Expired counts the leases expired by ticks since this FSM was opened.
func (f *FSM) Expired() int64 { return f.expired.Load() }

// Failed is closed when the state machine stopped on a fatal error.
func (f *FSM) Failed() <-chan struct{} { return f.failed }

// Err returns the fatal error, if any.
func (f *FSM) Err() error {
	if p := f.failErr.Load(); p != nil {
		return *p
	}
	return nil
}

func (f *FSM) fail(err error) {
	f.failOnce.Do(func() {
		err = fmt.Errorf("%w: %w", ErrFailed, err)
		f.failErr.Store(&err)
		f.log.Error("state machine stopped: this member must be restarted or replaced", "error", err)
		close(f.failed)
	})
}

// Changed returns a channel closed at the next publish of a new state.
func (f *FSM) Changed() <-chan struct{} {
	f.notifyMu.Lock()
	defer f.notifyMu.Unlock()
	return f.notify
}

// WaitApplied blocks until the state includes raft index idx.
func (f *FSM) WaitApplied(ctx context.Context, idx uint64) error {
	for {
		f.notifyMu.Lock()
		ch := f.notify
		f.notifyMu.Unlock()
		if f.cur.Load().applied >= idx {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-f.failed:
			return f.Err()
		}
	}
}

// publish makes s the state readers see and records the batch's changes
// for the next checkpoint, together: a checkpoint that takes the changes
// also takes a state that includes them. restored means s replaced the
// state wholesale (snapshot restore): the event history is reset.
func (f *FSM) publish(s *State, b *batch, entries int, restored bool) {
	f.dirtyMu.Lock()
	f.cur.Store(s)
	var want bool
	if b != nil {
		f.dirty.addTouched(b.touched)
		before := f.pending
		f.pending += entries
		// Wanted when the first change since a checkpoint arrives (the
		// owner then waits its interval) and when enough piled up.
		want = before == 0 || before < f.cfg.CheckpointEntries && f.pending >= f.cfg.CheckpointEntries
	}
	f.dirtyMu.Unlock()
	if want {
		select {
		case f.wanted <- struct{}{}:
		default:
		}
	}
	var events []Event
	if b != nil {
		events = b.events
	}
	if restored {
		f.history.reset(s.revision)
	} else {
		f.history.append(events)
	}
	f.notifyMu.Lock()
	close(f.notify)
	f.notify = make(chan struct{})
	f.notifyMu.Unlock()
	if o := f.observer.Load(); o != nil && *o != nil {
		(*o)(s, events)
	}
}

// Apply applies one entry; raft uses ApplyBatch, this is for completeness.
func (f *FSM) Apply(l *raft.Log) interface{} { return f.ApplyBatch([]*raft.Log{l})[0] }

// ApplyBatch applies entries to the in-memory state and publishes it at
// once: the entries are durable in the raft log already, and the checkpoint
// follows in the background. Entries at or below the applied index are
// skipped without being decoded: raft hands back the log after its last
// snapshot on restart, and the checkpoint may include them already.
func (f *FSM) ApplyBatch(logs []*raft.Log) []interface{} {
	out := make([]interface{}, len(logs))
	if err := f.Err(); err != nil {
		for i := range out {
			out[i] = Result{Err: err}
		}
		return out
	}
	cur := f.cur.Load()
	if len(logs) == 0 || logs[len(logs)-1].Index <= cur.applied {
		for i := range out {
			out[i] = Result{Revision: cur.revision}
		}
		return out
	}
	b := newBatch(cur.clone())
	applied := 0
	// fatal is an entry this replica cannot decode. The entries before it
	// in the batch were committed like it and keep their real results; it
	// and those after it fail, and the state machine stops.
	var fatal error
	for i, l := range logs {
		if l.Index <= b.s.applied {
			out[i] = Result{Revision: b.s.revision}
			continue
		}
		if l.Type != raft.LogCommand {
			applied++
			b.s.applied = l.Index
			out[i] = Result{Revision: b.s.revision}
			continue
		}
		cmd, err := Decode(l.Data)
		if err != nil {
			fatal = fmt.Errorf("entry %d (term %d): %w", l.Index, l.Term, err)
			wrapped := fmt.Errorf("%w: %w", ErrFailed, fatal)
			for j := i; j < len(out); j++ {
				out[j] = Result{Err: wrapped}
			}
			break
		}
		applied++
		b.s.applied = l.Index
		out[i] = b.apply(cmd)
	}
	if applied > 0 {
		f.expired.Add(b.expired)
		f.publish(b.s, b, applied, false)
	}
	if fatal != nil {
		f.fail(fatal)
	}
	return out
}

// Restore replaces the whole state with a snapshot. The stream is written to
// a temporary file, synced, checked and renamed over the state file, so a
// crash at any step leaves either the old or the new state, both usable.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	// No checkpoint may write the old state over the new file.
	f.ckptMu.Lock()
	defer f.ckptMu.Unlock()
	tmp := f.cfg.Path + ".restore"
	if err := readSnapshot(rc, tmp, f.failpoint); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("fsm: restore: %w", err)
	}
	// Check the snapshot is whole, opens and loads before touching the
	// live file.
	if err := checkSnapshotState(tmp); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("fsm: restore: %w", err)
	}
	// Synced like the state file: a snapshot of an older store format is
	// upgraded by this open, and the file is renamed into place next.
	probe, err := openDB(tmp, f.cfg.NoSync)
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("fsm: restore: %w", err)
	}
	if _, _, err := loadState(probe); err != nil {
		probe.Close()
		os.Remove(tmp)
		return fmt.Errorf("fsm: restore: %w", err)
	}
	if err := probe.Close(); err != nil {
		return fmt.Errorf("fsm: restore: %w", err)
	}
	f.failpoint(FailRestoreSynced)

	f.dbMu.Lock()
	defer f.dbMu.Unlock()
	if err := f.db.Close(); err != nil {
		return fmt.Errorf("fsm: restore: close: %w", err)
	}
	if err := os.Rename(tmp, f.cfg.Path); err != nil {
		os.Remove(tmp)
		return f.reopenUnchanged(fmt.Errorf("fsm: restore: rename: %w", err))
	}
	if err := syncDir(filepath.Dir(f.cfg.Path)); err != nil {
		return f.reopenAfter(fmt.Errorf("fsm: restore: %w", err))
	}
	f.failpoint(FailRestoreRenamed)
	err = f.reopenAfter(nil)
	if err == nil {
		f.failpoint(FailRestoreReloaded)
	}
	return err
}

// reopenUnchanged reopens the state file after a restore failed before
// replacing it (dbMu and ckptMu held): the file is as it was, so the live
// state and the changes recorded for the next checkpoint still hold, and
// nothing is published. Reloading the file instead would take the live
// state back to the last checkpoint, dropping the entries applied since.
func (f *FSM) reopenUnchanged(cause error) error {
	db, err := openDB(f.cfg.Path, f.cfg.NoSync)
	if err != nil {
		f.fail(err)
		return errors.Join(cause, err)
	}
	f.db = db
	f.releaseMapped()
	return cause
}

// reopenAfter reopens the state file (dbMu and ckptMu held) and publishes
// its state, which is the checkpoint: the changes recorded for the old
// state are dropped.
func (f *FSM) reopenAfter(cause error) error {
	db, err := openDB(f.cfg.Path, f.cfg.NoSync)
	if err != nil {
		f.fail(err)
		return errors.Join(cause, err)
	}
	f.db = db
	s, journalBytes, err := loadState(db)
	if err != nil {
		f.fail(err)
		return errors.Join(cause, err)
	}
	f.journalBytes = journalBytes
	f.releaseMapped()
	f.dirtyMu.Lock()
	f.dirty = changeSet{}
	f.pending = 0
	f.dirtyMu.Unlock()
	f.durable.Store(s.applied)
	f.publish(s, nil, 0, true)
	f.log.Info("state restored from snapshot", "applied_index", s.applied, "keys", s.KeyCount(), "leases", s.LeaseCount())
	return cause
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
