package fsm_test

import (
	"fmt"
	"math"
	"math/rand"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/rosterhq/roster/fsm"
)

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
			if rng.Intn(4) == 0 { // integers Redis does not read as such
				return []byte([]string{"+7", "007", "-0", "00", "-01"}[rng.Intn(5)])
			}
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
			// Mostly today's rule; entries of older builds lack it.
			pt := fsm.Put{Key: key, Value: randValue(), Strict: rng.Intn(4) != 0, DropOldLease: rng.Intn(3) == 0}
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
			d := fsm.Delete{Key: existingKey(), DropOldLease: rng.Intn(3) == 0}
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
			in := fsm.Incr{Key: fmt.Sprintf("/n/%d", rng.Intn(4)), By: int64(rng.Intn(11) - 5), Canonical: rng.Intn(2) == 0}
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
			c = fsm.KeepAlive{IDs: ids, SlackMs: randSlack(), Strict: rng.Intn(4) != 0}
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
	if rng.Intn(4) == 0 {
		// The Redis port's SET k v EX n: a lease named after the key,
		// the key put on it, the lease it leaves dropped when keyless.
		key := existingKey()
		*nextID += 1 + int64(rng.Intn(3))
		return fsm.Txn{Ops: []fsm.Command{
			fsm.Grant{ID: *nextID, TTL: 2 + int64(rng.Intn(10)), Name: key, SlackMs: int64(rng.Intn(800))},
			fsm.Put{Key: key, Value: randValue(), Lease: *nextID, Strict: true, DropOldLease: true, Only: fsm.PutIf(rng.Intn(3))},
		}}
	}
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
			pt := fsm.Put{Key: key, Value: randValue(), IfChanged: rng.Intn(8) == 0, Strict: rng.Intn(4) != 0, DropOldLease: rng.Intn(3) == 0}
			pt.HasCAS, pt.CAS = cas()
			if rng.Intn(4) == 0 { // the Redis port's EXEC: SET … NX|XX at apply time
				pt.Only = fsm.PutIf(1 + rng.Intn(2))
			}
			switch {
			case len(grants) > 0 && rng.Intn(2) == 0:
				pt.Lease = grants[rng.Intn(len(grants))]
			case rng.Intn(3) == 0:
				pt.Lease = someLease()
			}
			t.Ops = append(t.Ops, pt)
		case k < 8 && rng.Intn(2) == 0:
			// The Redis port's compare of a key only read or watched.
			ck := fsm.Check{Key: key, ModRevision: modOf(key)}
			if rng.Intn(4) == 0 {
				ck.ModRevision += int64(rng.Intn(3)) - 1 // stale, or absent when 0
			}
			t.Ops = append(t.Ops, ck)
		case k < 9 && rng.Intn(2) == 0:
			// The Redis port's EXEC: an increment evaluated at apply
			// time, failing alone on a value that is no integer.
			if rng.Intn(2) == 0 {
				key = fmt.Sprintf("/n/%d", rng.Intn(4))
				if used[key] {
					continue
				}
				used[key] = true
			}
			t.Ops = append(t.Ops, fsm.Incr{Key: key, By: int64(rng.Intn(11) - 5), Canonical: rng.Intn(4) != 0})
		default:
			d := fsm.Delete{Key: key, Prefix: rng.Intn(25) == 0}
			if !d.Prefix {
				d.HasCAS, d.CAS = cas()
				d.DropOldLease = rng.Intn(3) == 0
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
		if txn, ok := c.(fsm.Txn); ok {
			// A failed compare comes from a Check when no other
			// operation compares.
			checks, compares := 0, 0
			for j, op := range txn.Ops {
				switch op := op.(type) {
				case fsm.Incr:
					if strings.Contains(r, " ops=[") && class == "ok" {
						if opErr(r, j) {
							seen["txn-incr/failed-alone"]++
						} else {
							seen["txn-incr/ok"]++
						}
					}
				case fsm.Check:
					checks++
				case fsm.Put:
					compares += boolInt(op.HasCAS)
					if op.Only != fsm.PutAlways && class == "ok" {
						seen["txn-put-only/"+strconv.FormatBool(opWrote(r, j, op.Only))]++
					}
				case fsm.Delete:
					compares += boolInt(op.HasCAS)
				}
			}
			switch {
			case checks > 0 && class == "ok":
				seen["txn-check/ok"]++
			case checks > 0 && compares == 0 && class == "cas":
				seen["txn-check/cas"]++
			}
		}
		switch c.(type) {
		case fsm.Put, fsm.Delete, fsm.Txn:
			if i > 0 && leasesIn(w.dumps[i]) < leasesIn(w.dumps[i-1]) {
				seen["drop-old-lease"]++ // a write took a key off its lease, and the lease went
			}
		}
	}
	for _, k := range []string{
		"noop", "fsm.Grant/ok", "fsm.Grant/lease_exists", "fsm.Put/ok", "fsm.Put/cas", "fsm.Put/lease_not_found",
		"fsm.Delete/ok", "fsm.Delete/cas", "fsm.Incr/ok", "fsm.Incr/invalid_argument", "fsm.KeepAlive/ok",
		"fsm.Tick/ok", "tick/more", "tick/expired", "fsm.Revoke/ok", "fsm.Revoke/lease_not_found",
		"fsm.SetMember/ok", "fsm.DelMember/ok",
		"fsm.Txn/ok", "fsm.Txn/cas", "fsm.Txn/lease_not_found", "fsm.Txn/lease_exists", "fsm.Txn/invalid_argument",
		"drop-old-lease", "txn-check/ok", "txn-check/cas",
		"txn-incr/ok", "txn-incr/failed-alone", "txn-put-only/true", "txn-put-only/false",
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

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// leasesIn is the lease count of a model dump.
func leasesIn(dump string) int {
	_, rest, _ := strings.Cut(dump, " leases=")
	n, _ := strconv.Atoi(rest[:strings.IndexByte(rest, '\n')])
	return n
}

// opResult is the rendering (fmtResult) of operation j's result within
// the rendered Txn result r.
func opResult(r string, j int) string {
	i := strings.Index(r, " ops=[")
	if i < 0 {
		return ""
	}
	parts := strings.Split(strings.TrimSuffix(r[i+len(" ops=["):], "]"), "} {err=")
	if j >= len(parts) {
		return ""
	}
	return "err=" + strings.TrimPrefix(strings.TrimPrefix(parts[j], "{"), "err=")
}

// opErr says whether operation j of the rendered Txn result r failed.
func opErr(r string, j int) bool { return !strings.HasPrefix(opResult(r, j), "err=ok ") }

// opWrote says whether the put with Only at j of the rendered Txn result
// r wrote: its condition held, as its previous value shows.
func opWrote(r string, j int, only fsm.PutIf) bool {
	absent := strings.Contains(opResult(r, j), " prev=<nil> ")
	return absent == (only == fsm.PutIfAbsent)
}
