package registry

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"github.com/rosterhq/roster/fsm"
)

// A leader that loses leadership answers the entries it appended but did
// not see commit with raft.ErrLeadershipLost. Such an entry may still
// commit under the next leader, or be replaced by it. Rather than answer
// "outcome unknown", the proposer waits (bounded by its deadline) until
// this member, now a follower that keeps applying what the next leader
// commits, has applied that index, and looks at what holds it:
//
//   - its own entry: the write committed, and the state machine's result
//     is answered as if it had committed under this member's leadership;
//   - another entry, or a committed entry before it of a later term than
//     the proposer's entry (the next leader's log may end before the
//     index): the write was truncated and can never commit (committed
//     entries never change): a refusal, nothing changed;
//   - the wait runs out: ErrTimeout, as before.
//
// "Its own entry" must be exact: the same command bytes from another
// client (two increments of one key) may take the index. So every
// proposal carries a nonce in raft.Log.Extensions, which raft stores and
// replicates with the entry and the state machine never reads (an older
// member applies such entries exactly as before). The hot path pays a
// 16-byte nonce per proposal and two atomic operations per applied batch:
// waiters register only after raft gave up on their entry.

// fateNonceLen is the nonce's size: 8 random bytes per node, 8 of a
// counter.
const fateNonceLen = 16

// fatePoll is how often a waiter looks at raft's applied index: for
// entries the state machine never sees (the next leader's no-op, which
// is what usually replaces a lost entry).
const fatePoll = 5 * time.Millisecond

// fates tracks the entries whose proposers wait for their fate.
type fates struct {
	prefix [8]byte
	seq    atomic.Uint64
	// seen is the highest index handed to the state machine's ApplyBatch
	// (committed), stored before armed is read: a waiter that registers
	// after its entry went by sees that here.
	seen  atomic.Uint64
	armed atomic.Int32 // waiters registered: the state machine looks only then

	// restoredTo is the highest index a snapshot restored on this member
	// covered. raft installs a leader's snapshot without clearing this
	// member's log below it (it keeps TrailingLogs entries), so entries
	// there may be ones that never committed: at or below restoredTo the
	// log is no witness of what committed, only the state machine's own
	// answer is (logWitnesses).
	restoredTo atomic.Uint64

	mu      sync.Mutex
	waiters map[uint64]*fateWaiter // by log index
}

// fateWaiter is one proposer waiting for the entry at its index.
type fateWaiter struct {
	nonce []byte
	done  chan struct{} // closed once resolved (under fates.mu)
	ours  bool          // the entry at the index is the proposer's
	res   fsm.Result    // its result, when ours
}

func newFates() (*fates, error) {
	f := &fates{waiters: map[uint64]*fateWaiter{}}
	if _, err := rand.Read(f.prefix[:]); err != nil {
		return nil, fmt.Errorf("registry: proposal nonce: %w", err)
	}
	return f, nil
}

// nonce is a fresh nonce for one proposal.
func (f *fates) nonce() []byte {
	b := make([]byte, fateNonceLen)
	copy(b, f.prefix[:])
	binary.BigEndian.PutUint64(b[8:], f.seq.Add(1))
	return b
}

// applied is called by the state machine wrapper after each batch with
// its results.
func (f *fates) applied(logs []*raft.Log, res []interface{}) {
	if len(logs) == 0 {
		return
	}
	f.seen.Store(logs[len(logs)-1].Index)
	if f.armed.Load() == 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, l := range logs {
		w := f.waiters[l.Index]
		if w == nil {
			continue
		}
		delete(f.waiters, l.Index)
		w.ours = bytes.Equal(l.Extensions, w.nonce)
		if r, ok := res[i].(fsm.Result); ok && w.ours {
			w.res = r
		} else if w.ours {
			w.res = fsm.Result{Err: fmt.Errorf("registry: unexpected apply response %T", res[i])}
		}
		close(w.done)
	}
}

// restored records that a snapshot covering up to index idx was restored.
func (f *fates) restored(idx uint64) {
	for {
		cur := f.restoredTo.Load()
		if idx <= cur || f.restoredTo.CompareAndSwap(cur, idx) {
			return
		}
	}
}

// logWitnesses reports whether this member's log entry at index i, which
// it has applied, is the committed one. An entry applied through
// AppendEntries is: raft truncates a conflicting entry before it appends
// and commits only what matches the leader. An index a restored snapshot
// covers may still hold an entry that never committed. A caller reads the
// applied index before asking: raft moves it past a snapshot only after
// Restore returned, so a restore that moved it is seen here.
func (f *fates) logWitnesses(i uint64) bool { return i > f.restoredTo.Load() }

// fateFSM is the state machine as raft sees it: the node's, with the
// fates told about every applied batch and every restored snapshot.
type fateFSM struct {
	raft.BatchingFSM
	f *fates
	// applied is the index the state machine's state includes: after a
	// restore, the snapshot's.
	applied func() uint64
}

// Restore records the index the restored state covers before raft moves
// its applied index there. A failed restore records too: the state may be
// the new one (reopenAfter), and recording more than needed only turns
// a log-based answer into "unknown".
func (s fateFSM) Restore(rc io.ReadCloser) error {
	err := s.BatchingFSM.Restore(rc)
	s.f.restored(s.applied())
	return err
}

func (s fateFSM) ApplyBatch(logs []*raft.Log) []interface{} {
	res := s.BatchingFSM.ApplyBatch(logs)
	s.f.applied(logs, res)
	return res
}

func (s fateFSM) Apply(l *raft.Log) interface{} { return s.ApplyBatch([]*raft.Log{l})[0] }

// errTruncated is the refusal for an entry the next leader replaced.
func (n *Node) errTruncated(idx uint64) error {
	return fmt.Errorf("%w (leadership changed; entry %d was replaced by the next leader, nothing changed)", n.notLeader(), idx)
}

// lostLeadership reports whether raft answered an appended entry's future
// with the loss of leadership: the entry's fate can be learned.
func lostLeadership(f raft.ApplyFuture, err error) bool {
	return errors.Is(err, raft.ErrLeadershipLost) && f.Index() != 0
}

// learnFate waits, until deadline, ctx or shutdown, for this member to
// apply index idx, which held the entry with nonce when this member led,
// and answers that entry's outcome (see the top of the file).
func (n *Node) learnFate(ctx context.Context, idx uint64, nonce []byte, deadline time.Time) (fsm.Result, error) {
	return n.watchFate(idx, nonce).wait(ctx, deadline)
}

// fateWatch is one proposer's registered wait for the fate of its entry.
// Registering is cheap and immediate; the wait may come later, so that a
// batch registers every entry it lost before waiting for the first: the
// state machine applies consecutive entries together, and a waiter that
// registers after its entry went by learns only whose entry it was.
type fateWatch struct {
	n      *Node
	idx    uint64
	nonce  []byte
	term   uint64 // our entry's term, 0 if not known
	w      *fateWaiter
	missed bool  // idx was applied before the waiter was registered
	err    error // the wait's answer without waiting
}

// watchFate registers the wait for the entry at idx with nonce. Every
// watch must be waited for (wait), which unregisters it.
func (n *Node) watchFate(idx uint64, nonce []byte) *fateWatch {
	f := n.fates
	fw := &fateWatch{n: n, idx: idx, nonce: nonce}
	// Our entry's term, read while the log most likely still holds it
	// (the next leader has yet to be elected and to replace it); 0 if it
	// was replaced already.
	var l raft.Log
	if n.logs.GetLog(idx, &l) == nil && bytes.Equal(l.Extensions, nonce) {
		fw.term = l.Term
	}
	w := &fateWaiter{nonce: nonce, done: make(chan struct{})}
	f.mu.Lock()
	if old := f.waiters[idx]; old != nil {
		// An earlier proposal of this member at the same index still
		// waits: its entry was replaced, and this member led again and
		// proposed there anew. Rare; answer the unknown rather than guess.
		f.mu.Unlock()
		fw.err = fmt.Errorf("%w: leadership lost with entry %d in flight", ErrTimeout, idx)
		return fw
	}
	f.waiters[idx] = w
	f.armed.Add(1)
	f.mu.Unlock()
	fw.w = w
	if f.seen.Load() >= idx {
		// The state machine may have applied idx before the waiter was
		// registered: its result is lost, but not whose entry it was.
		f.mu.Lock()
		select {
		case <-w.done:
		default:
			delete(f.waiters, idx)
			fw.missed = true
		}
		f.mu.Unlock()
	}
	return fw
}

// wait waits for the watched entry's fate until deadline, ctx or
// shutdown, and unregisters the watch.
func (fw *fateWatch) wait(ctx context.Context, deadline time.Time) (fsm.Result, error) {
	if fw.err != nil {
		return fsm.Result{}, fw.err
	}
	n, f, w, idx, nonce := fw.n, fw.n.fates, fw.w, fw.idx, fw.nonce
	defer func() {
		f.mu.Lock()
		if f.waiters[idx] == w {
			delete(f.waiters, idx)
		}
		f.armed.Add(-1)
		f.mu.Unlock()
	}()
	missed, term := fw.missed, fw.term
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	tick := time.NewTicker(fatePoll)
	defer tick.Stop()
	for {
		if !missed {
			select {
			case <-w.done:
				if !w.ours {
					return fsm.Result{}, n.errTruncated(idx)
				}
				return w.res, w.res.Err
			default:
			}
		}
		if a := n.raft.AppliedIndex(); a >= idx || missed {
			// idx is committed: what the log holds there is final, unless a
			// snapshot restored here covers it (then nothing here will
			// apply idx either).
			if !f.logWitnesses(idx) {
				return fsm.Result{}, fmt.Errorf("%w: leadership lost with entry %d in flight; a snapshot installed here covers it, its fate is not known here", ErrTimeout, idx)
			}
			switch ours, err := n.logHolds(idx, nonce); {
			case err == nil && !ours:
				return fsm.Result{}, n.errTruncated(idx)
			case missed:
				return fsm.Result{}, fmt.Errorf("%w: leadership lost with entry %d in flight; it committed, its result is not known here", ErrTimeout, idx)
			}
			// Ours: the state machine answers the waiter shortly.
		} else if term != 0 && a > 0 && f.logWitnesses(a) {
			// The next leader's log may end before idx (nothing written
			// since its no-op). Terms never decrease along a log: a
			// committed entry before idx of a later term than ours means
			// that every log that will ever be committed differs from
			// ours before idx.
			var l raft.Log
			if n.logs.GetLog(a, &l) == nil && l.Term > term {
				return fsm.Result{}, n.errTruncated(idx)
			}
		}
		select {
		case <-w.done:
		case <-tick.C:
		case <-ctx.Done():
			return fsm.Result{}, fmt.Errorf("%w: leadership lost with the write in flight: %v", ErrTimeout, ctx.Err())
		case <-timer.C:
			return fsm.Result{}, fmt.Errorf("%w: leadership lost with the write in flight; entry %d not applied here in time", ErrTimeout, idx)
		case <-n.raftDown:
			// Not n.stop: Close first hands leadership over, and the entry
			// may commit and apply here before raft shuts down.
			return fsm.Result{}, fmt.Errorf("%w: the node shut down with the write in flight", ErrTimeout)
		}
	}
}

// logHolds reports whether the committed entry at idx in this member's
// log is the one that carries nonce.
func (n *Node) logHolds(idx uint64, nonce []byte) (bool, error) {
	var l raft.Log
	if err := n.logs.GetLog(idx, &l); err != nil {
		return false, err // compacted into a snapshot, or closed: unknown
	}
	return bytes.Equal(l.Extensions, nonce), nil
}
