package fsm_test

import (
	"bytes"
	"fmt"
	"math"
	"math/rand"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/raft"
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
			if !ok {
				r.NotFound = append(r.NotFound, id)
				continue
			}
			l.deadline = m.clock + l.ttl*1000 + max(c.SlackMs, 0)
			m.leases[id] = l
			r.Renewed = append(r.Renewed, m.status(id))
		}
		return r
	case fsm.Put:
		if _, ok := m.leases[c.Lease]; c.Lease != 0 && !ok {
			return fail(fsm.ErrLeaseNotFound)
		}
		if err := m.cas(c.HasCAS, c.CAS, c.Key); err != nil {
			return fail(err)
		}
		prev := m.kvOf(c.Key)
		if c.IfChanged && prev != nil && prev.Lease == c.Lease && bytes.Equal(prev.Value, c.Value) {
			return fsm.Result{Revision: m.rev, Prev: prev}
		}
		m.store(c.Key, append([]byte(nil), c.Value...), c.Lease)
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
			if err != nil {
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
			_, live := m.leases[op.Lease]
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
		}
		if err != nil {
			return fsm.Result{Err: err, Revision: m.rev}
		}
	}
	out := []fsm.Result{}
	for _, op := range c.Ops {
		switch op := op.(type) {
		case fsm.Grant:
			out = append(out, m.apply(op))
		case fsm.Put:
			out = append(out, m.apply(op))
		case fsm.Delete:
			out = append(out, m.apply(op))
		}
	}
	return fsm.Result{Revision: m.rev, Ops: out}
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

// workload is a generated log with what the model says each entry returns.
type workload struct {
	logs    []*raft.Log
	results []string   // fmtResult per entry
	events  [][]string // events per entry
	dumps   []string   // model state after each entry
}

type workloadKey struct {
	seed int64
	n    int
}

var (
	workloadsMu sync.Mutex
	workloads   = map[workloadKey]*workload{}
	finalModels = map[workloadKey]*model{}
)

// cachedWorkload returns genWorkload(seed, n), generating it once per test
// binary. Callers must not modify the result.
func cachedWorkload(seed int64, n int) (*workload, *model) {
	workloadsMu.Lock()
	defer workloadsMu.Unlock()
	k := workloadKey{seed, n}
	if w, ok := workloads[k]; ok {
		return w, finalModels[k]
	}
	w, m := genWorkload(seed, n)
	workloads[k], finalModels[k] = w, m
	return w, m
}

// The workload TestDeterminism applies.
const determinismSeed, determinismEntries = 20240601, 3000

// genWorkload draws n entries mixing every command, deterministically from
// seed, using the model to aim CAS revisions, lease IDs and IfChanged
// values at the current state often enough to exercise both outcomes.
func genWorkload(seed int64, n int) (*workload, *model) {
	rng := rand.New(rand.NewSource(seed))
	m := newModel()
	w := &workload{}
	nextID := int64(1000)
	randKey := func() string {
		if rng.Intn(10) == 0 {
			return fmt.Sprintf("/n/%d", rng.Intn(4))
		}
		return fmt.Sprintf("/%c/%d", 'a'+rng.Intn(3), rng.Intn(40))
	}
	existingKey := func() string {
		ks := m.sortedKeys()
		if len(ks) == 0 || rng.Intn(5) == 0 {
			return randKey()
		}
		return ks[rng.Intn(len(ks))]
	}
	liveLease := func() int64 {
		ids := m.leaseIDs()
		if len(ids) == 0 {
			return 0
		}
		return ids[rng.Intn(len(ids))]
	}
	someLease := func() int64 { // mostly live, sometimes dead or never granted
		switch rng.Intn(20) {
		case 0:
			return nextID + 1 + int64(rng.Intn(5))
		case 1:
			return 1000 + int64(rng.Intn(int(nextID-999)))
		}
		return liveLease()
	}
	randValue := func() []byte {
		switch rng.Intn(4) {
		case 0:
			return []byte(strconv.Itoa(rng.Intn(200) - 100))
		case 1:
			return nil
		}
		b := make([]byte, 1+rng.Intn(12))
		rng.Read(b)
		return b
	}
	randSlack := func() int64 {
		switch rng.Intn(8) {
		case 0, 1, 2:
			return int64(rng.Intn(1500))
		case 3:
			return -int64(rng.Intn(1000)) // ignored
		}
		return 0
	}
	modOf := func(key string) int64 {
		if v, ok := m.kv[key]; ok {
			return v.mod
		}
		return 0
	}
	for i := 0; i < n; i++ {
		idx := uint64(i + 1)
		var c fsm.Command
		p := rng.Intn(1100) // 1000 and up: a Txn
		switch {
		case p < 10: // not a command: only moves the applied index
			m.applied = idx
			typ := raft.LogNoop
			if rng.Intn(2) == 0 {
				typ = raft.LogConfiguration
			}
			w.logs = append(w.logs, &raft.Log{Index: idx, Term: 1, Type: typ})
			w.results = append(w.results, fmtResult(fsm.Result{Revision: m.rev}))
			w.events = append(w.events, nil)
			w.dumps = append(w.dumps, m.dump())
			continue
		case p < 90:
			g := fsm.Grant{TTL: 2 + int64(rng.Intn(19)), Name: fmt.Sprintf("/svc/%d", rng.Intn(3))}
			if rng.Intn(15) == 0 && len(m.leases) > 0 {
				g.ID = liveLease() // duplicate
			} else {
				nextID += 1 + int64(rng.Intn(3))
				g.ID = nextID
			}
			g.SlackMs = randSlack()
			c = g
		case p < 450:
			key := randKey()
			if rng.Intn(2) == 0 {
				key = existingKey()
			}
			pt := fsm.Put{Key: key, Value: randValue()}
			if rng.Intn(2) == 0 {
				pt.Lease = someLease()
			}
			if rng.Intn(6) == 0 {
				pt.HasCAS = true
				switch rng.Intn(4) {
				case 0:
					pt.CAS = 0
				case 1:
					pt.CAS = modOf(key) + int64(rng.Intn(3)) - 1
				default:
					pt.CAS = modOf(key)
				}
			}
			if rng.Intn(6) == 0 {
				pt.IfChanged = true
				if v, ok := m.kv[key]; ok && rng.Intn(2) == 0 {
					pt.Value, pt.Lease = append([]byte(nil), v.value...), v.lease
				}
			}
			c = pt
		case p < 510:
			d := fsm.Delete{Key: existingKey()}
			if rng.Intn(3) == 0 {
				d.HasCAS = true
				d.CAS = modOf(d.Key)
				if rng.Intn(3) == 0 {
					d.CAS += int64(rng.Intn(5)) - 2
				}
			}
			c = d
		case p < 525:
			prefixes := []string{"/a/", "/b/1", "/c", "/a/1", "/zz", "/n/", "/b/"}
			if rng.Intn(40) == 0 {
				prefixes = []string{"/"}
			}
			c = fsm.Delete{Key: prefixes[rng.Intn(len(prefixes))], Prefix: true}
		case p < 600:
			in := fsm.Incr{Key: fmt.Sprintf("/n/%d", rng.Intn(4)), By: int64(rng.Intn(11) - 5)}
			switch rng.Intn(20) {
			case 0:
				in.Key = existingKey()
			case 1:
				in.By = math.MaxInt64
			case 2:
				in.By = math.MinInt64
			}
			c = in
		case p < 700:
			seen := map[int64]bool{}
			var ids []int64
			for j := rng.Intn(4) + 1; j > 0; j-- {
				id := someLease()
				if id != 0 && !seen[id] {
					seen[id] = true
					ids = append(ids, id)
				}
			}
			c = fsm.KeepAlive{IDs: ids, SlackMs: randSlack()}
		case p < 870:
			t := fsm.Tick{ElapsedMs: int64(rng.Intn(300)), Limit: int64(rng.Intn(4))}
			if rng.Intn(5) == 0 {
				t.ElapsedMs = 0
			}
			if rng.Intn(30) == 0 {
				t.ElapsedMs = int64(rng.Intn(6000))
			}
			c = t
		case p < 930:
			id := liveLease()
			if rng.Intn(8) == 0 || id == 0 {
				id = someLease() + 1
			}
			c = fsm.Revoke{ID: id}
		case p < 975:
			id := fmt.Sprintf("m%d", rng.Intn(5))
			c = fsm.SetMember{Member: fsm.Member{ID: id, RaftAddr: fmt.Sprintf("10.0.0.%d:8101", rng.Intn(9)), HTTPAddr: "h", Node: int64(rng.Intn(1024))}}
		case p < 1000:
			c = fsm.DelMember{ID: fmt.Sprintf("m%d", rng.Intn(5))}
		default:
			c = genTxn(rng, randKey, existingKey, someLease, randValue, modOf, &nextID, liveLease)
		}
		m.events = nil
		r := m.apply(c)
		m.applied = idx
		w.logs = append(w.logs, &raft.Log{Index: idx, Term: 1 + idx/1000, Type: raft.LogCommand, Data: fsm.Encode(c)})
		w.results = append(w.results, fmtResult(r))
		w.events = append(w.events, m.events)
		w.dumps = append(w.dumps, m.dump())
	}
	return w, m
}

// genTxn draws a Txn of 1..5 operations, aiming most of them at
// conditions that hold so that whole Txns apply as often as they fail.
func genTxn(rng *rand.Rand, randKey, existingKey func() string, someLease func() int64, randValue func() []byte,
	modOf func(string) int64, nextID *int64, liveLease func() int64) fsm.Txn {
	var t fsm.Txn
	var grants []int64
	used := map[string]bool{}
	for j := rng.Intn(5) + 1; j > 0; j-- {
		key := randKey()
		if rng.Intn(2) == 0 {
			key = existingKey()
		}
		if used[key] && rng.Intn(10) != 0 { // now and then a key twice
			continue
		}
		used[key] = true
		cas := func() (bool, int64) {
			if rng.Intn(3) != 0 {
				return false, 0
			}
			if rng.Intn(8) == 0 {
				return true, modOf(key) + 1 // stale
			}
			return true, modOf(key)
		}
		switch k := rng.Intn(10); {
		case k < 2:
			*nextID += 1 + int64(rng.Intn(3))
			id := *nextID
			if taken := liveLease(); taken != 0 && rng.Intn(15) == 0 {
				id = taken
			}
			grants = append(grants, id)
			t.Ops = append(t.Ops, fsm.Grant{ID: id, TTL: 2 + int64(rng.Intn(10)), Name: "/txn", SlackMs: int64(rng.Intn(800))})
		case k < 7:
			pt := fsm.Put{Key: key, Value: randValue(), IfChanged: rng.Intn(8) == 0}
			pt.HasCAS, pt.CAS = cas()
			switch {
			case len(grants) > 0 && rng.Intn(2) == 0:
				pt.Lease = grants[rng.Intn(len(grants))]
			case rng.Intn(3) == 0:
				pt.Lease = someLease()
			}
			t.Ops = append(t.Ops, pt)
		default:
			d := fsm.Delete{Key: key, Prefix: rng.Intn(40) == 0}
			if !d.Prefix {
				d.HasCAS, d.CAS = cas()
			}
			t.Ops = append(t.Ops, d)
		}
	}
	return t
}

// TestModelWorkloadCoversEveryOutcome checks the workload TestDeterminism
// applies exercises every command and outcome.
func TestModelWorkloadCoversEveryOutcome(t *testing.T) {
	w, _ := cachedWorkload(determinismSeed, determinismEntries)
	seen := map[string]int{}
	for i, l := range w.logs {
		if l.Type != raft.LogCommand {
			seen["noop"]++
			continue
		}
		c, _ := fsm.Decode(l.Data)
		kind := fmt.Sprintf("%T", c)
		seen[kind]++
		r := w.results[i]
		class := r[len("err="):strings.IndexByte(r, ' ')]
		if strings.HasPrefix(class, "cas") {
			class = "cas"
		}
		seen[kind+"/"+class]++
		if strings.Contains(r, "more=true") {
			seen["tick/more"]++
		}
		if strings.Contains(r, "expired=") && !strings.Contains(r, "expired=0 ") {
			seen["tick/expired"]++
		}
	}
	for _, k := range []string{
		"noop", "fsm.Grant/ok", "fsm.Grant/lease_exists", "fsm.Put/ok", "fsm.Put/cas", "fsm.Put/lease_not_found",
		"fsm.Delete/ok", "fsm.Delete/cas", "fsm.Incr/ok", "fsm.Incr/invalid_argument", "fsm.KeepAlive/ok",
		"fsm.Tick/ok", "tick/more", "tick/expired", "fsm.Revoke/ok", "fsm.Revoke/lease_not_found",
		"fsm.SetMember/ok", "fsm.DelMember/ok",
		"fsm.Txn/ok", "fsm.Txn/cas", "fsm.Txn/lease_not_found", "fsm.Txn/lease_exists", "fsm.Txn/invalid_argument",
	} {
		if seen[k] == 0 {
			t.Errorf("workload never produces %s (seen %v)", k, seen)
		}
	}
}

// applyWorkload applies the workload in batches whose sizes come from
// sizes, checking every result, every event and the state after every
// batch against the model.
func applyWorkload(t *testing.T, h *harness, w *workload, sizes func() int) {
	t.Helper()
	applyWorkloadRange(t, h, w, 0, len(w.logs), sizes)
}

// applyWorkloadRange applies entries [from, to) of the workload.
func applyWorkloadRange(t *testing.T, h *harness, w *workload, from, to int, sizes func() int) {
	t.Helper()
	for i := from; i < to; {
		n := sizes()
		if i+n > to {
			n = to - i
		}
		rs := h.applyLogs(w.logs[i : i+n])
		var wantEvents []string
		for j, r := range rs {
			if got := fmtResult(r); got != w.results[i+j] {
				t.Fatalf("entry %d (%s):\n got  %s\n want %s", i+j+1, describe(w.logs[i+j]), got, w.results[i+j])
			}
			wantEvents = append(wantEvents, w.events[i+j]...)
		}
		var gotEvents []string
		for _, e := range h.takeEvents() {
			gotEvents = append(gotEvents, fmtEvent(e))
		}
		if strings.Join(gotEvents, "\n") != strings.Join(wantEvents, "\n") {
			t.Fatalf("entries %d..%d: events\n got  %q\n want %q", i+1, i+n, gotEvents, wantEvents)
		}
		i += n
		sameDump(t, fmt.Sprintf("after entry %d", i), w.dumps[i-1], dump(h.state()))
	}
}

func describe(l *raft.Log) string {
	if l.Type != raft.LogCommand {
		return l.Type.String()
	}
	c, err := fsm.Decode(l.Data)
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("%#v", c)
}

// TestDeterminism applies one long random workload to two FSMs, one entry
// per batch and in random batches of 1..200, checks both against the
// reference model after every batch, then reopens both from bbolt and
// replays the log over them.
func TestDeterminism(t *testing.T) {
	const entries = determinismEntries
	w, m := cachedWorkload(determinismSeed, entries)
	want := m.dump()
	t.Logf("final state: %d keys, %d leases, revision %d, clock %d ms, hash %s",
		len(m.kv), len(m.leases), m.rev, m.clock, hashOf(want))

	one := newHarness(t)
	applyWorkload(t, one, w, func() int { return 1 })

	rng := rand.New(rand.NewSource(7))
	many := newHarness(t)
	applyWorkload(t, many, w, func() int { return 1 + rng.Intn(200) })

	sameDump(t, "one-by-one", want, dump(one.state()))
	sameDump(t, "batched", want, dump(many.state()))
	if one.f.Expired() != many.f.Expired() {
		t.Fatalf("Expired() %d vs %d", one.f.Expired(), many.f.Expired())
	}

	// The index rebuilt from bbolt equals the live one.
	for _, h := range []*harness{one, many} {
		h.reopen()
		sameDump(t, "reopened", want, dump(h.state()))
	}

	// Replaying the log (raft does after a restart) changes nothing.
	for _, sz := range []int{1, 64, entries} {
		applyWorkloadReplay(t, many, w, sz)
		sameDump(t, fmt.Sprintf("replayed in batches of %d", sz), want, dump(many.state()))
	}
	if evs := many.takeEvents(); len(evs) != 0 {
		t.Fatalf("replay emitted %d events", len(evs))
	}
	many.reopen()
	sameDump(t, "reopened after replay", want, dump(many.state()))
}

func applyWorkloadReplay(t *testing.T, h *harness, w *workload, size int) {
	t.Helper()
	for i := 0; i < len(w.logs); i += size {
		end := min(i+size, len(w.logs))
		for j, r := range h.applyLogs(w.logs[i:end]) {
			if r.Err != nil {
				t.Fatalf("replayed entry %d: %v", i+j+1, r.Err)
			}
		}
	}
}

// TestDeterminismSeeds runs shorter workloads from other seeds.
func TestDeterminismSeeds(t *testing.T) {
	for seed := int64(1); seed <= 4; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			w, m := genWorkload(seed, 800)
			rng := rand.New(rand.NewSource(seed))
			h := newHarness(t)
			applyWorkload(t, h, w, func() int { return 1 + rng.Intn(50) })
			h.reopen()
			sameDump(t, "reopened", m.dump(), dump(h.state()))
		})
	}
}
