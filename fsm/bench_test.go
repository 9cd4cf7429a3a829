package fsm_test

import (
	"bytes"
	"fmt"
	"math/rand"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/rosterhq/roster/fsm"
)

// Benchmarks run on a real bbolt file with NoSync, so they measure the state
// machine and bbolt's CPU cost rather than the disk's fsync latency.
//
//	go test -run '^$' -bench . -benchmem ./fsm/ ./lease/

// newBenchHarness is a harness without an event observer.
func newBenchHarness(b *testing.B) *harness {
	h := newHarness(b)
	h.f.SetObserver(nil)
	return h
}

// applyChunked applies commands in batches of chunk entries.
func (h *harness) applyChunked(cmds []fsm.Command, chunk int) {
	for i := 0; i < len(cmds); i += chunk {
		end := min(i+chunk, len(cmds))
		for _, r := range h.apply(cmds[i:end]...) {
			if r.Err != nil {
				h.tb.Fatalf("setup: %v", r.Err)
			}
		}
	}
}

// BenchmarkApplyBatchPuts measures ApplyBatch of 256 puts (256-byte values,
// keys drawn from a 100k key space that is already populated) per op.
func BenchmarkApplyBatchPuts(b *testing.B) {
	const keySpace, batch, valueSize = 100_000, 256, 256
	h := newBenchHarness(b)
	rng := rand.New(rand.NewSource(1))
	value := func() []byte {
		v := make([]byte, valueSize)
		rng.Read(v)
		return v
	}
	key := func(i int) string { return fmt.Sprintf("/services/api/node-%06d", i) }
	setup := make([]fsm.Command, 0, keySpace)
	for i := 0; i < keySpace; i++ {
		setup = append(setup, fsm.Put{Key: key(i), Value: value()})
	}
	h.applyChunked(setup, 10_000)
	// A pool of encoded entries, reused round-robin (ApplyBatch copies
	// what it keeps out of the entry data).
	pool := make([][]byte, 16*batch)
	for i := range pool {
		pool[i] = fsm.Encode(fsm.Put{Key: key(rng.Intn(keySpace)), Value: value()})
	}
	logs := make([]*raft.Log, batch)
	for i := range logs {
		logs[i] = &raft.Log{Type: raft.LogCommand, Term: 1}
	}
	b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(batch * valueSize)
		next := 0
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			for _, l := range logs {
				h.idx++
				l.Index = h.idx
				l.Data = pool[next]
				next = (next + 1) % len(pool)
			}
			h.f.ApplyBatch(logs)
		}
		b.StopTimer()
		b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "puts/s")
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/put")
		if err := h.f.Err(); err != nil {
			b.Fatal(err)
		}
	})
}

// tickBench is an FSM holding `live` leases, each with one key, whose
// deadlines are spread evenly: every `step` ms of lease clock, exactly
// `group` leases fall due. Each time a group expires, a fresh group is
// granted so the number of live leases stays constant.
type tickBench struct {
	h      *harness
	live   int
	group  int
	ttl    int64 // seconds
	step   int64 // ms between two groups' deadlines
	offset int64 // ms of clock since the last group fell due
	nextID int64
	rng    *rand.Rand
}

const benchTTL = 1000 // seconds; deadlines span ttl*1000 ms of lease clock

func newTickBench(b *testing.B, live, group int) *tickBench {
	groups := live / group
	tb := &tickBench{
		h: newBenchHarness(b), live: live, group: group, ttl: benchTTL,
		step: benchTTL * 1000 / int64(groups), nextID: 1 << 40, rng: rand.New(rand.NewSource(1)),
	}
	start := time.Now()
	var cmds []fsm.Command
	for g := 0; g < groups; g++ {
		if g > 0 {
			cmds = append(cmds, fsm.Tick{ElapsedMs: tb.step})
		}
		cmds = tb.grantGroup(cmds)
		if len(cmds) >= 50_000 {
			tb.h.applyChunked(cmds, len(cmds))
			cmds = cmds[:0]
		}
	}
	tb.h.applyChunked(cmds, len(cmds)+1)
	s := tb.h.state()
	if s.LeaseCount() != live || s.KeyCount() != live {
		b.Fatalf("setup: %d leases, %d keys", s.LeaseCount(), s.KeyCount())
	}
	// The clock now stands one step before the first group is due.
	tb.offset = 0
	b.Logf("setup of %d leases (%d keys) took %v", live, live, time.Since(start).Round(time.Millisecond))
	return tb
}

// grantGroup appends the commands granting one group of leases, each with
// one key; keys are scattered over the keyspace as real service keys are.
func (tb *tickBench) grantGroup(cmds []fsm.Command) []fsm.Command {
	val := make([]byte, 64)
	for i := 0; i < tb.group; i++ {
		tb.nextID++
		cmds = append(cmds,
			fsm.Grant{ID: tb.nextID, TTL: tb.ttl},
			fsm.Put{Key: fmt.Sprintf("/svc/%016x", tb.rng.Uint64()), Value: val, Lease: tb.nextID})
	}
	return cmds
}

// expireTick is the tick that brings the next group due.
func (tb *tickBench) expireTick() []*raft.Log {
	return tb.h.logs(fsm.Tick{ElapsedMs: tb.step - tb.offset})
}

func (tb *tickBench) check(b *testing.B, r fsm.Result, want int) {
	if r.Err != nil || r.Expired != int64(want) || r.Deleted != int64(want) {
		b.Fatalf("tick: %s, want %d expired", fmtResult(r), want)
	}
}

// replenish grants a new group (due last, one step after the current last).
func (tb *tickBench) replenish() {
	tb.h.applyChunked(tb.grantGroup(nil), 2*tb.group)
	tb.offset = 0
}

// BenchmarkTick1MLeases measures one Tick entry (ApplyBatch of a single
// tick, bbolt commit included) with 100k and 1M live leases: expiring a
// fixed 1,000 leases (one key each) per tick, and advancing the clock with
// nothing due. Neither may grow with the number of live leases.
func BenchmarkTick1MLeases(b *testing.B) {
	const group = 1000
	for _, live := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("live=%dk", live/1000), func(b *testing.B) {
			if testing.Short() && live >= 1_000_000 {
				b.Skip("1M-lease setup skipped in -short mode")
			}
			tb := newTickBench(b, live, group)
			b.Run(fmt.Sprintf("expire=%d", group), func(b *testing.B) {
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					ls := tb.expireTick()
					r := tb.h.f.ApplyBatch(ls)[0].(fsm.Result)
					b.StopTimer()
					tb.check(b, r, group)
					tb.replenish()
					b.StartTimer()
				}
				b.StopTimer()
				ns := float64(b.Elapsed().Nanoseconds())
				b.ReportMetric(ns/float64(b.N), "ns/tick")
				b.ReportMetric(ns/float64(b.N*group), "ns/expired-lease")
				if n := tb.h.state().LeaseCount(); n != live {
					b.Fatalf("%d live leases, want %d", n, live)
				}
			})
			b.Run("expire=0", func(b *testing.B) {
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if tb.offset+1 >= tb.step { // the next ms would expire a group
						b.StopTimer()
						tb.check(b, tb.h.f.ApplyBatch(tb.expireTick())[0].(fsm.Result), group)
						tb.replenish()
						b.StartTimer()
					}
					r := tb.h.f.ApplyBatch(tb.h.logs(fsm.Tick{ElapsedMs: 1}))[0].(fsm.Result)
					tb.offset++
					if r.Expired != 0 {
						b.Fatalf("pure clock advance expired %d leases", r.Expired)
					}
				}
				b.StopTimer()
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/tick")
			})
			tb.h.f.Close()
		})
	}
}

// BenchmarkPrefixScan50Of1M scans a prefix holding 50 keys out of 1M keys
// through State().Range, as GET /v1/kv/{prefix}?prefix=true does.
func BenchmarkPrefixScan50Of1M(b *testing.B) {
	const services, perService = 20_000, 50
	if testing.Short() {
		b.Skip("1M-key setup skipped in -short mode")
	}
	h := newBenchHarness(b)
	start := time.Now()
	val := make([]byte, 32)
	cmds := make([]fsm.Command, 0, 50_000)
	for s := 0; s < services; s++ {
		for n := 0; n < perService; n++ {
			cmds = append(cmds, fsm.Put{Key: fmt.Sprintf("/svc/s%05d/n%02d", s, n), Value: val})
		}
		if len(cmds) == cap(cmds) {
			h.applyChunked(cmds, len(cmds))
			cmds = cmds[:0]
		}
	}
	h.applyChunked(cmds, len(cmds)+1)
	if n := h.state().KeyCount(); n != services*perService {
		b.Fatalf("setup: %d keys", n)
	}
	b.Logf("setup of %d keys took %v", services*perService, time.Since(start).Round(time.Millisecond))
	prefixes := make([]string, 1024)
	rng := rand.New(rand.NewSource(1))
	for i := range prefixes {
		prefixes[i] = fmt.Sprintf("/svc/s%05d/", rng.Intn(services))
	}
	b.Run("keys=1M", func(b *testing.B) {
		s := h.f.State()
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			n := 0
			s.Range(prefixes[i%len(prefixes)], "", func(kv *fsm.KV) bool {
				n++
				return true
			})
			if n != perService {
				b.Fatalf("scan found %d keys", n)
			}
		}
		b.StopTimer()
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*perService), "ns/key")
	})
}

// BenchmarkCheckpointRandomPuts measures one checkpoint after 500 puts
// (256-byte values) at random keys of a populated 100k key space, what
// 100 ms of peerbench's put leaves to a member: written in place (one
// scattered leaf page per key) and appended to the journal (merges
// included, at the default bound). Puts apply outside the timer.
func BenchmarkCheckpointRandomPuts(b *testing.B) {
	const keySpace, perCheckpoint, valueSize = 100_000, 500, 256
	for _, mode := range journalModes {
		if mode.bytes > 0 {
			continue // the small journal merges nearly every time: in place
		}
		b.Run(mode.name, func(b *testing.B) {
			h := newHarnessJournal(b, filepath.Join(b.TempDir(), "state.db"), mode.bytes)
			h.f.SetObserver(nil)
			rng := rand.New(rand.NewSource(1))
			value := make([]byte, valueSize)
			key := func(i int) string { return fmt.Sprintf("/bench/key-%06d", i) }
			setup := make([]fsm.Command, 0, keySpace)
			for i := 0; i < keySpace; i++ {
				rng.Read(value)
				setup = append(setup, fsm.Put{Key: key(i), Value: bytes.Clone(value)})
			}
			h.applyChunked(setup, 10_000)
			h.checkpoint()
			cmds := make([]fsm.Command, perCheckpoint)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				for j := range cmds {
					rng.Read(value)
					cmds[j] = fsm.Put{Key: key(rng.Intn(keySpace)), Value: bytes.Clone(value)}
				}
				h.applyChunked(cmds, 64)
				b.StartTimer()
				h.checkpoint()
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*perCheckpoint), "ns/key")
			b.ReportMetric(float64(h.f.Merges()), "merges")
		})
	}
}

// BenchmarkPreview measures State.Preview on a state of 100k keys: one
// Txn as the Redis port's EXEC proposes it (a grant, a put on it, a
// compared put, three checks), and a chain of 10 increments previewed one
// on the state the one before left (EXEC's dry run of 10 queued writes).
//
//	go test -run '^$' -bench Preview -benchmem ./fsm/
func BenchmarkPreview(b *testing.B) {
	const keySpace = 100_000
	h := newBenchHarness(b)
	key := func(i int) string { return fmt.Sprintf("/services/api/node-%06d", i) }
	setup := make([]fsm.Command, 0, keySpace)
	for i := 0; i < keySpace; i++ {
		setup = append(setup, fsm.Put{Key: key(i), Value: bytes.Repeat([]byte("v"), 64)})
	}
	h.applyChunked(setup, 10_000)
	st := h.state()
	rev := func(k string) int64 { kv, _ := st.Get(k); return kv.ModRevision }
	txn := fsm.StrictDeadlines(fsm.Txn{Ops: []fsm.Command{
		fsm.Grant{ID: 1 << 40, TTL: 10, Name: key(10)},
		fsm.Put{Key: key(10), Value: []byte("x"), Lease: 1 << 40, HasCAS: true, CAS: rev(key(10)), DropOldLease: true},
		fsm.Put{Key: key(20), Value: []byte("y"), HasCAS: true, CAS: rev(key(20)), DropOldLease: true},
		fsm.Check{Key: key(30), ModRevision: rev(key(30))},
		fsm.Check{Key: key(40), ModRevision: rev(key(40))},
		fsm.Check{Key: "/absent"},
	}})
	b.Run("txn=6ops/keys=100k", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if r, _ := st.Preview(txn); r.Err != nil {
				b.Fatal(r.Err)
			}
		}
	})
	b.Run("chain=10incr/keys=100k", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			cur := st
			for j := range 10 {
				var r fsm.Result
				if r, cur = cur.Preview(fsm.Incr{Key: fmt.Sprintf("/n/%d", j), By: 1}); r.Err != nil {
					b.Fatal(r.Err)
				}
			}
		}
	})
}
