package fsm

import (
	"strings"
	"sync"

	"github.com/rosterhq/roster/lease"
	"github.com/tidwall/btree"
)

// KV is one stored key. Published KVs are immutable.
type KV struct {
	Key            string
	Value          []byte
	CreateRevision int64
	ModRevision    int64
	Version        int64
	Lease          int64
}

// LeaseStatus describes a lease as of the lease clock of the state it was
// read from.
type LeaseStatus struct {
	ID        int64
	TTL       int64
	Remaining int64
	Name      string
}

func kvLess(a, b *KV) bool { return a.Key < b.Key }

// State is one version of the replicated state: the result of applying
// every entry up to Applied. A State handed out by FSM.State is never
// modified, so readers use it without locks.
type State struct {
	applied  uint64
	revision int64
	clock    int64
	// maxLeaseID is the largest lease ID ever granted (live or not): new
	// IDs are chosen above it, so none is ever issued twice.
	maxLeaseID int64
	kv         *btree.BTreeG[*KV]
	leases     *lease.Table
	members    []Member // sorted by ID; replaced, never modified in place
	auth       *authTables
	// cloneMu makes clones of this State one at a time: copying a
	// tidwall/btree writes the source tree's header (Copy gives it a new
	// isolation ID), and a published State is cloned by the apply
	// goroutine and by any number of previews (preview.go).
	cloneMu *sync.Mutex
}

func newState() *State {
	return &State{kv: newKVTree(), leases: lease.NewTable(), members: []Member{}, auth: newAuthTables(), cloneMu: new(sync.Mutex)}
}

// newKVTree is the ordered index of keys: copy-on-write, no locks (see
// lease.newTree for why tidwall/btree).
func newKVTree() *btree.BTreeG[*KV] {
	return btree.NewBTreeGOptions(kvLess, btree.Options{Degree: 32, NoLocks: true})
}

// clone returns a copy-on-write copy in O(1); the receiver must not be
// written to afterwards. Any goroutine may clone a published State.
func (s *State) clone() *State {
	s.cloneMu.Lock()
	defer s.cloneMu.Unlock()
	c := *s
	c.kv = s.kv.Copy()
	c.leases = s.leases.Clone()
	c.cloneMu = new(sync.Mutex)
	return &c
}

// AppliedIndex is the raft index of the last entry this state includes.
func (s *State) AppliedIndex() uint64 { return s.applied }

// Revision is the store revision: it moves once per changed key.
func (s *State) Revision() int64 { return s.revision }

// Clock is the replicated lease clock in milliseconds.
func (s *State) Clock() int64 { return s.clock }

// MaxLeaseID is the largest lease ID ever granted in this state's history
// (0 when none); the leader chooses new IDs above it.
func (s *State) MaxLeaseID() int64 { return s.maxLeaseID }

// KeyCount is the number of keys stored.
func (s *State) KeyCount() int { return s.kv.Len() }

// LeaseCount is the number of live leases.
func (s *State) LeaseCount() int { return s.leases.Len() }

// Get returns the KV stored at key.
func (s *State) Get(key string) (*KV, bool) { return s.kv.Get(&KV{Key: key}) }

// Range calls fn for every key that starts with prefix and sorts after
// after (all of them when after is ""), in key order, until fn returns false.
func (s *State) Range(prefix, after string, fn func(*KV) bool) {
	start := prefix
	if after >= start {
		start = after + "\x00"
	}
	s.kv.Ascend(&KV{Key: start}, func(kv *KV) bool {
		if !strings.HasPrefix(kv.Key, prefix) {
			return false
		}
		return fn(kv)
	})
}

// Lease returns the lease with the given ID.
func (s *State) Lease(id int64) (LeaseStatus, bool) {
	l, ok := s.leases.Get(id)
	if !ok {
		return LeaseStatus{}, false
	}
	return s.status(l), true
}

// leaseAlive reports whether lease id may take keys: it exists and, under
// the strict rule (StrictDeadlines), its deadline has not passed. A lease
// past its deadline stays in the table until a tick removes it (a tick
// expires at most its limit), and must not take new keys meanwhile, nor
// be renewed (lease.Table.Renew).
func (s *State) leaseAlive(id int64, strict bool) bool {
	l, ok := s.leases.Get(id)
	return ok && (!strict || l.Deadline > s.clock)
}

func (s *State) status(l *lease.Lease) LeaseStatus {
	// The deadline may include slack for ticks not yet applied; a lease
	// never shows more than its TTL remaining.
	return LeaseStatus{ID: l.ID, TTL: l.TTL, Remaining: min(l.Remaining(s.clock), l.TTL), Name: l.Name}
}

// LeaseRemainingMs is the time a lease has left, in milliseconds of the
// lease clock, never more than its TTL (the Redis port's PTTL).
func (s *State) LeaseRemainingMs(id int64) (int64, bool) {
	l, ok := s.leases.Get(id)
	if !ok {
		return 0, false
	}
	return min(max(l.Deadline-s.clock, 0), l.TTL*1000), true
}

// NextExpiry is the lease-clock time (ms) at which the earliest lease
// expires, if any lease is alive.
func (s *State) NextExpiry() (int64, bool) { return s.leases.NextDeadline() }

// LeaseKeys lists the keys attached to a lease, in key order.
func (s *State) LeaseKeys(id int64) []string { return s.leases.Keys(id) }

// Leases calls fn for each lease with an ID above after, in ID order, until
// fn returns false.
func (s *State) Leases(after int64, fn func(LeaseStatus) bool) {
	s.leases.Ascend(after, func(l *lease.Lease) bool { return fn(s.status(l)) })
}

// Members returns the replicated member metadata, sorted by ID.
func (s *State) Members() []Member { return append([]Member(nil), s.members...) }

// Member returns one member's metadata.
func (s *State) Member(id string) (Member, bool) {
	for _, m := range s.members {
		if m.ID == id {
			return m, true
		}
	}
	return Member{}, false
}
