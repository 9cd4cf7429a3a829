package fsm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"
	bolt "go.etcd.io/bbolt"
)

// Config configures an FSM.
type Config struct {
	// Path is the bbolt file holding the state (created when absent).
	Path string
	// NoSync skips fsync of the state file. Only for tests and benchmarks:
	// the raft log is the durable record, but an unsynced bbolt file can
	// be torn by a power loss.
	NoSync bool
	// WatchHistory is how many recent events History keeps for watches
	// (default DefaultWatchHistory).
	WatchHistory int
	Logger       *slog.Logger
	// Failpoint, when set, is called at each crash point (see Failpoints)
	// with its name; tests make it kill the process.
	Failpoint func(name string)
}

// Observer is told about every published batch, after it is durable and
// visible to readers, on the apply goroutine: it must not block.
type Observer func(s *State, events []Event)

// FSM is Roster's replicated state machine: a raft.BatchingFSM over bbolt
// with an in-memory copy-on-write index that serves every read.
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

// Open opens (or creates) the state file and loads it into memory.
func Open(cfg Config) (*FSM, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	db, err := openDB(cfg.Path, cfg.NoSync)
	if err != nil {
		return nil, err
	}
	s, err := loadState(db)
	if err != nil {
		db.Close()
		return nil, err
	}
	f := &FSM{cfg: cfg, log: cfg.Logger, db: db, notify: make(chan struct{}), failed: make(chan struct{}),
		history: NewHistory(cfg.WatchHistory, s.revision)}
	f.cur.Store(s)
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

// publish makes s the state readers see. restored means s replaced the
// state wholesale (snapshot restore): the event history is reset.
func (f *FSM) publish(s *State, events []Event, restored bool) {
	f.cur.Store(s)
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

// ApplyBatch applies entries in one bbolt transaction and publishes the new
// state once it is durable. Entries at or below the applied index are
// skipped: raft replays the log after its last snapshot on restart, and the
// bbolt state may already include them.
func (f *FSM) ApplyBatch(logs []*raft.Log) []interface{} {
	out := make([]interface{}, len(logs))
	if err := f.Err(); err != nil {
		for i := range out {
			out[i] = Result{Err: err}
		}
		return out
	}
	b := newBatch(f.cur.Load().clone())
	changed := false
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
			changed = true
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
		changed = true
		b.s.applied = l.Index
		out[i] = b.apply(cmd)
	}
	if !changed {
		if fatal != nil {
			f.fail(fatal)
		}
		return out
	}
	f.dbMu.RLock()
	err := writeBatch(f.db, b)
	f.dbMu.RUnlock()
	if err != nil {
		f.fail(fmt.Errorf("persist entries up to %d: %w", b.s.applied, err))
		for j := range out {
			out[j] = Result{Err: f.Err()}
		}
		return out
	}
	f.expired.Add(b.expired)
	f.publish(b.s, b.events, false)
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
	tmp := f.cfg.Path + ".restore"
	if err := readSnapshot(rc, tmp, f.failpoint); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("fsm: restore: %w", err)
	}
	// Check the snapshot opens and loads before touching the live file.
	probe, err := openDB(tmp, true)
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("fsm: restore: %w", err)
	}
	if _, err := loadState(probe); err != nil {
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
		return f.reopenAfter(fmt.Errorf("fsm: restore: rename: %w", err))
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

// reopenAfter reopens the state file (dbMu held) and publishes its state.
func (f *FSM) reopenAfter(cause error) error {
	db, err := openDB(f.cfg.Path, f.cfg.NoSync)
	if err != nil {
		f.fail(err)
		return errors.Join(cause, err)
	}
	f.db = db
	s, err := loadState(db)
	if err != nil {
		f.fail(err)
		return errors.Join(cause, err)
	}
	f.publish(s, nil, true)
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
