package fsm_test

import (
	"bytes"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/rosterhq/roster/fsm"
)

// model is an independent, map-based reference implementation of the
// semantics in DESIGN.md and API.md. It is slow and obvious on purpose.
type model struct {
	applied uint64
	rev     int64
	clock   int64
	maxID   int64
	kv      map[string]mKV
	leases  map[int64]mLease
	members map[string]fsm.Member
	events  []string
}

type mKV struct {
	value                   []byte
	create, mod, ver, lease int64
}

type mLease struct {
	ttl      int64
	name     string
	deadline int64
}

func newModel() *model {
	return &model{kv: map[string]mKV{}, leases: map[int64]mLease{}, members: map[string]fsm.Member{}}
}

func (m *model) kvOf(key string) *fsm.KV {
	v, ok := m.kv[key]
	if !ok {
		return nil
	}
	return &fsm.KV{Key: key, Value: v.value, CreateRevision: v.create, ModRevision: v.mod, Version: v.ver, Lease: v.lease}
}

func (m *model) sortedKeys() []string {
	ks := make([]string, 0, len(m.kv))
	for k := range m.kv {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func (m *model) leaseIDs() []int64 {
	ids := make([]int64, 0, len(m.leases))
	for id := range m.leases {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

func (m *model) leaseKeys(id int64) []string {
	ks := []string{}
	for _, k := range m.sortedKeys() {
		if m.kv[k].lease == id {
			ks = append(ks, k)
		}
	}
	return ks
}

func remainingSecs(deadline, clock int64) int64 {
	left := deadline - clock
	if left <= 0 {
		return 0
	}
	return int64(math.Ceil(float64(left) / 1000))
}

// remaining never shows more than the TTL, though slack may put the
// deadline further out.
func (m *model) remaining(id int64) int64 {
	l := m.leases[id]
	return min(remainingSecs(l.deadline, m.clock), l.ttl)
}

// alive: the lease exists and, under the strict rule, its deadline has
// not passed (a tick at its limit leaves expired leases for the next).
func (m *model) alive(id int64, strict bool) bool {
	l, ok := m.leases[id]
	return ok && (!strict || l.deadline > m.clock)
}

func (m *model) status(id int64) fsm.LeaseStatus {
	l := m.leases[id]
	return fsm.LeaseStatus{ID: id, TTL: l.ttl, Remaining: m.remaining(id), Name: l.name}
}

func (m *model) del(key string) { m.delFor(key, false) }

// delFor deletes a key; expired marks a delete by lease expiry.
func (m *model) delFor(key string, expired bool) {
	prev := m.kvOf(key)
	m.rev++
	delete(m.kv, key)
	m.events = append(m.events, fmtEvent(fsm.Event{Type: fsm.EventDelete, KV: &fsm.KV{Key: key, ModRevision: m.rev}, Prev: prev, Expired: expired}))
}

func (m *model) store(key string, value []byte, leaseID int64) {
	prev := m.kvOf(key)
	m.rev++
	v := mKV{value: value, create: m.rev, mod: m.rev, ver: 1, lease: leaseID}
	if prev != nil {
		v.create, v.ver = prev.CreateRevision, prev.Version+1
	}
	m.kv[key] = v
	m.events = append(m.events, fmtEvent(fsm.Event{Type: fsm.EventPut, KV: m.kvOf(key), Prev: prev}))
}

func (m *model) cas(has bool, want int64, key string) error {
	if !has {
		return nil
	}
	var cur int64
	if v, ok := m.kv[key]; ok {
		cur = v.mod
	}
	if cur != want {
		return &fsm.CASError{Current: cur}
	}
	return nil
}

// apply applies one command and returns the result the FSM must return.
func (m *model) apply(c fsm.Command) fsm.Result {
	fail := func(err error) fsm.Result { return fsm.Result{Err: err, Revision: m.rev} }
	switch c := c.(type) {
	case fsm.Grant:
		if _, ok := m.leases[c.ID]; ok {
			return fail(fsm.ErrLeaseExists)
		}
		m.leases[c.ID] = mLease{ttl: c.TTL, name: c.Name, deadline: m.clock + c.TTL*1000 + max(c.SlackMs, 0)}
		m.maxID = max(m.maxID, c.ID)
		return fsm.Result{Revision: m.rev, Lease: m.status(c.ID)}
	case fsm.Revoke:
		if _, ok := m.leases[c.ID]; !ok {
			return fail(fsm.ErrLeaseNotFound)
		}
		keys := m.leaseKeys(c.ID)
		delete(m.leases, c.ID)
		for _, k := range keys {
			m.del(k)
		}
		return fsm.Result{Revision: m.rev, Deleted: int64(len(keys))}
	case fsm.KeepAlive:
		r := fsm.Result{Revision: m.rev, Renewed: []fsm.LeaseStatus{}, NotFound: []int64{}}
		for _, id := range c.IDs {
			l, ok := m.leases[id]
			if !ok || (c.Strict && l.deadline <= m.clock) {
				r.NotFound = append(r.NotFound, id)
				continue
			}
			l.deadline = m.clock + l.ttl*1000 + max(c.SlackMs, 0)
			m.leases[id] = l
			r.Renewed = append(r.Renewed, m.status(id))
		}
		return r
	case fsm.Put:
		if c.Lease != 0 && !m.alive(c.Lease, c.Strict) {
			return fail(fsm.ErrLeaseNotFound)
		}
		if err := m.cas(c.HasCAS, c.CAS, c.Key); err != nil {
			return fail(err)
		}
		prev := m.kvOf(c.Key)
		if (c.Only == fsm.PutIfAbsent && prev != nil) || (c.Only == fsm.PutIfPresent && prev == nil) {
			return fsm.Result{Revision: m.rev, Prev: prev}
		}
		if c.IfChanged && prev != nil && prev.Lease == c.Lease && bytes.Equal(prev.Value, c.Value) {
			return fsm.Result{Revision: m.rev, Prev: prev}
		}
		m.store(c.Key, append([]byte(nil), c.Value...), c.Lease)
		if c.DropOldLease && prev != nil && prev.Lease != c.Lease {
			m.dropOldLease(prev)
		}
		return fsm.Result{Revision: m.rev, Prev: prev}
	case fsm.Delete:
		if !c.Prefix {
			if err := m.cas(c.HasCAS, c.CAS, c.Key); err != nil {
				return fail(err)
			}
			prev := m.kvOf(c.Key)
			if prev == nil {
				return fsm.Result{Revision: m.rev}
			}
			m.del(c.Key)
			if c.DropOldLease {
				m.dropOldLease(prev)
			}
			return fsm.Result{Revision: m.rev, Deleted: 1, Prev: prev}
		}
		var n int64
		for _, k := range m.sortedKeys() {
			if strings.HasPrefix(k, c.Key) {
				m.del(k)
				n++
			}
		}
		return fsm.Result{Revision: m.rev, Deleted: n}
	case fsm.Incr:
		prev := m.kvOf(c.Key)
		var cur, leaseID int64
		if prev != nil {
			n, err := strconv.ParseInt(string(prev.Value), 10, 64)
			if err != nil || (c.Canonical && strconv.FormatInt(n, 10) != string(prev.Value)) {
				return fail(fsm.ErrInvalidArgument)
			}
			cur, leaseID = n, prev.Lease
		}
		sum := cur + c.By
		if (c.By > 0 && sum < cur) || (c.By < 0 && sum > cur) {
			return fail(fsm.ErrInvalidArgument)
		}
		if prev != nil && c.By == 0 {
			return fsm.Result{Revision: m.rev, Value: cur, Prev: prev}
		}
		m.store(c.Key, []byte(strconv.FormatInt(sum, 10)), leaseID)
		return fsm.Result{Revision: m.rev, Value: sum, Prev: prev}
	case fsm.Tick:
		if c.ElapsedMs > 0 {
			m.clock += c.ElapsedMs
		}
		var due []int64
		for _, id := range m.leaseIDs() {
			if m.leases[id].deadline <= m.clock {
				due = append(due, id)
			}
		}
		sort.SliceStable(due, func(i, j int) bool { return m.leases[due[i]].deadline < m.leases[due[j]].deadline })
		n := len(due)
		if c.Limit > 0 && int64(n) > c.Limit {
			n = int(c.Limit)
		}
		var keys []string
		for _, id := range due[:n] {
			keys = append(keys, m.leaseKeys(id)...)
			delete(m.leases, id)
		}
		sort.Strings(keys)
		for _, k := range keys {
			m.delFor(k, true)
		}
		return fsm.Result{Revision: m.rev, Expired: int64(n), Deleted: int64(len(keys)), More: n < len(due)}
	case fsm.Txn:
		return m.txn(c)
	case fsm.SetMember:
		m.members[c.Member.ID] = c.Member
		return fsm.Result{Revision: m.rev}
	case fsm.DelMember:
		delete(m.members, c.ID)
		return fsm.Result{Revision: m.rev}
	case fsm.Check:
		return fail(fsm.ErrInvalidArgument) // only inside a Txn
	}
	panic(fmt.Sprintf("model: unknown command %T", c))
}

// txn checks every operation of a Txn first (no key twice, no prefix
// delete, conditions against the state before the Txn, leases granted by
// earlier operations count), then applies them in order.
func (m *model) txn(c fsm.Txn) fsm.Result {
	granted := map[int64]bool{}
	seen := map[string]bool{}
	for _, op := range c.Ops {
		var err error
		switch op := op.(type) {
		case fsm.Grant:
			if _, ok := m.leases[op.ID]; ok || granted[op.ID] {
				err = fsm.ErrLeaseExists
			}
			granted[op.ID] = true
		case fsm.Put:
			live := m.alive(op.Lease, op.Strict)
			switch {
			case seen[op.Key]:
				err = fsm.ErrInvalidArgument
			case op.Lease != 0 && !live && !granted[op.Lease]:
				err = fsm.ErrLeaseNotFound
			default:
				err = m.cas(op.HasCAS, op.CAS, op.Key)
			}
			seen[op.Key] = true
		case fsm.Delete:
			if seen[op.Key] || op.Prefix {
				err = fsm.ErrInvalidArgument
			} else {
				err = m.cas(op.HasCAS, op.CAS, op.Key)
			}
			seen[op.Key] = true
		case fsm.Incr: // no condition; its own failure fails only it
			if seen[op.Key] {
				err = fsm.ErrInvalidArgument
			}
			seen[op.Key] = true
		case fsm.Check:
			if seen[op.Key] {
				err = fsm.ErrInvalidArgument
			} else {
				err = m.cas(true, op.ModRevision, op.Key)
			}
			seen[op.Key] = true
		}
		if err != nil {
			return fsm.Result{Err: err, Revision: m.rev}
		}
	}
	out := []fsm.Result{}
	var left []*fsm.KV // keys a DropOldLease write took off their lease
	var unused []int64 // leases granted here for a put with Only not made
	for _, op := range c.Ops {
		switch op := op.(type) {
		case fsm.Grant:
			out = append(out, m.apply(op))
		case fsm.Put:
			if prev := m.kvOf(op.Key); (op.Only == fsm.PutIfAbsent && prev != nil) || (op.Only == fsm.PutIfPresent && prev == nil) {
				if granted[op.Lease] {
					unused = append(unused, op.Lease)
				}
			}
			drop := op.DropOldLease
			op.DropOldLease = false
			r := m.apply(op)
			if prev := r.Prev; drop && prev != nil && prev.Lease != 0 && prev.Lease != op.Lease {
				left = append(left, prev)
			}
			out = append(out, r)
		case fsm.Delete:
			drop := op.DropOldLease
			op.DropOldLease = false
			r := m.apply(op)
			if drop && r.Prev != nil {
				left = append(left, r.Prev)
			}
			out = append(out, r)
		case fsm.Check:
			out = append(out, fsm.Result{Revision: m.rev})
		case fsm.Incr:
			out = append(out, m.apply(op))
		}
	}
	// After every operation: a later one may put a key on the lease.
	for _, prev := range left {
		m.dropOldLease(prev)
	}
	for _, id := range unused {
		if _, ok := m.leases[id]; ok && len(m.leaseKeys(id)) == 0 {
			delete(m.leases, id)
		}
	}
	return fsm.Result{Revision: m.rev, Ops: out}
}

// dropOldLease drops the lease prev's key left when it is named after
// the key and has no keys (fsm.Put.DropOldLease).
func (m *model) dropOldLease(prev *fsm.KV) {
	if l, ok := m.leases[prev.Lease]; ok && l.name == prev.Key && len(m.leaseKeys(prev.Lease)) == 0 {
		delete(m.leases, prev.Lease)
	}
}

// dump renders the model exactly as dump renders a State.
func (m *model) dump() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "applied=%d revision=%d clock=%d max_lease_id=%d keys=%d leases=%d\n", m.applied, m.rev, m.clock, m.maxID, len(m.kv), len(m.leases))
	for _, k := range m.sortedKeys() {
		v := m.kv[k]
		fmt.Fprintf(&sb, "kv %q value=%x create=%d mod=%d version=%d lease=%d\n", k, v.value, v.create, v.mod, v.ver, v.lease)
	}
	byLease := map[int64][]string{}
	for _, k := range m.sortedKeys() {
		if id := m.kv[k].lease; id != 0 {
			byLease[id] = append(byLease[id], k)
		}
	}
	for _, id := range m.leaseIDs() {
		l := m.leases[id]
		keys := byLease[id]
		if keys == nil {
			keys = []string{}
		}
		fmt.Fprintf(&sb, "lease %d ttl=%d remaining=%d name=%q keys=%q\n", id, l.ttl, m.remaining(id), l.name, keys)
	}
	ids := make([]string, 0, len(m.members))
	for id := range m.members {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		mb := m.members[id]
		fmt.Fprintf(&sb, "member %q raft=%q http=%q node=%d\n", mb.ID, mb.RaftAddr, mb.HTTPAddr, mb.Node)
	}
	return sb.String()
}
