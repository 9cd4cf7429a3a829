package faulttest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rosterhq/roster/internal/cluster"
)

// leaseWorkload checks lease safety while the nemesis runs:
//
//   - keepers keep leases alive through whichever member answers, and
//     readers read each kept lease's key linearizably: a "not found" that
//     returns before TTL has passed since the last acknowledged keep-alive
//     was sent is a violation (a lease never expires earlier than its TTL
//     after its last acknowledged keep-alive, and the lease clock never runs
//     ahead of real time);
//   - a keep-alive answered lease_not_found that early is one too;
//   - revokers grant, attach a key, revoke; expirers grant a 2 s lease,
//     attach a key and wait until the lease is gone (never before its TTL):
//     afterwards no linearizable read may see either key again;
//   - every granted lease ID is collected: none may repeat.
type leaseWorkload struct {
	c     *cluster.Cluster
	start time.Time

	mu         sync.Mutex
	violations []string
	ids        map[int64]string // lease ID → what granted it
	dupIDs     []string
	dead       []string // keys of revoked or expired leases
	stats      struct{ grants, keepalives, reads, revoked, expired, lost, deadReads int }
}

const keptTTL = 5 // seconds

func newLeaseWorkload(c *cluster.Cluster) *leaseWorkload {
	return &leaseWorkload{c: c, start: time.Now(), ids: map[int64]string{}}
}

func (w *leaseWorkload) violate(format string, args ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.violations = append(w.violations, time.Now().Format("15:04:05.000 ")+fmt.Sprintf(format, args...))
}

func (w *leaseWorkload) count(f func()) {
	w.mu.Lock()
	f()
	w.mu.Unlock()
}

func (w *leaseWorkload) run(ctx context.Context, wg *sync.WaitGroup, seed uint64, keepers int) {
	start := func(f func()) {
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}
	for i := range keepers {
		k := &keptLease{w: w, key: fmt.Sprintf("/lease/kept/%d", i)}
		start(func() { k.keep(ctx, newRand(seed, 200+i)) })
		start(func() { k.read(ctx, newRand(seed, 300+i)) })
	}
	start(func() { w.revoker(ctx, newRand(seed, 400)) })
	start(func() { w.expirer(ctx, newRand(seed, 401)) })
	start(func() { w.deadReader(ctx, newRand(seed, 402)) })
}

// grant asks random members until one grants a lease (an unknown outcome
// may have granted one nobody uses: harmless, it expires).
func (w *leaseWorkload) grant(ctx context.Context, rng *rand.Rand, ttl int, who string) (id int64, sent time.Time, ok bool) {
	for ctx.Err() == nil {
		m := randomMember(rng, w.c)
		sent = time.Now()
		r := send("POST", m.URL("/v1/leases"), []byte(fmt.Sprintf(`{"ttl":%d}`, ttl)))
		if r.fate == answered && r.status == 201 {
			var l struct {
				ID string `json:"id"`
			}
			if err := r.decode(&l); err == nil {
				id, _ = strconv.ParseInt(l.ID, 10, 64)
			}
			w.mu.Lock()
			w.stats.grants++
			if prev, dup := w.ids[id]; dup {
				w.dupIDs = append(w.dupIDs, fmt.Sprintf("%d (granted to %s and to %s)", id, prev, who))
			}
			w.ids[id] = who
			w.mu.Unlock()
			return id, sent, id > 0
		}
		pause(ctx, 50*time.Millisecond)
	}
	return 0, sent, false
}

// putWith attaches key to lease id; it reports false when the lease is
// gone (404) or ctx ended. Unknown outcomes are retried: a put is
// idempotent here.
func (w *leaseWorkload) putWith(ctx context.Context, rng *rand.Rand, key string, id int64) bool {
	for ctx.Err() == nil {
		m := randomMember(rng, w.c)
		r := send("PUT", m.URL("/v1/kv"+key+"?lease="+strconv.FormatInt(id, 10)), []byte(strconv.FormatInt(id, 10)))
		if r.fate == answered {
			return r.status == 200
		}
		pause(ctx, 50*time.Millisecond)
	}
	return false
}

// keptLease is one lease kept alive, re-granted when lost.
type keptLease struct {
	w   *leaseWorkload
	key string
	// state, read by the reader: the current lease, whether its key is
	// attached, and when the last acknowledged keep-alive (or the grant)
	// was sent, in ns since w.start.
	id      atomic.Int64
	ready   atomic.Bool
	lastAck atomic.Int64
}

func (k *keptLease) since() int64 { return int64(time.Since(k.w.start)) }

func (k *keptLease) keep(ctx context.Context, rng *rand.Rand) {
	w := k.w
	for ctx.Err() == nil {
		k.ready.Store(false)
		id, sent, ok := w.grant(ctx, rng, keptTTL, k.key)
		if !ok {
			return
		}
		k.id.Store(id)
		k.lastAck.Store(int64(sent.Sub(w.start)))
		if !w.putWith(ctx, rng, k.key, id) {
			k.checkGone(id, "attaching its key")
			continue
		}
		k.ready.Store(true)
		for ctx.Err() == nil {
			pause(ctx, 300*time.Millisecond)
			m := randomMember(rng, w.c)
			sentAt := k.since()
			r := send("POST", m.URL("/v1/leases/"+strconv.FormatInt(id, 10)+"/keepalive"), nil)
			if r.fate != answered {
				continue
			}
			if r.status == 200 {
				if sentAt > k.lastAck.Load() {
					k.lastAck.Store(sentAt)
				}
				w.count(func() { w.stats.keepalives++ })
				continue
			}
			if r.code == "lease_not_found" {
				k.checkGone(id, "a keep-alive through "+m.ID)
				break
			}
		}
	}
}

// checkGone: the lease was found gone now; that is a violation unless
// TTL has passed since the last acknowledged keep-alive was sent.
func (k *keptLease) checkGone(id int64, how string) {
	w := k.w
	last := time.Duration(k.lastAck.Load())
	now := time.Duration(k.since())
	if now < last+keptTTL*time.Second {
		w.violate("lease %d (%s) reported gone by %s %v after its last acknowledged keep-alive was sent (TTL %ds)",
			id, k.key, how, (now - last).Round(time.Millisecond), keptTTL)
		return
	}
	w.count(func() { w.stats.lost++ }) // no keep-alive got through for a whole TTL
}

func (k *keptLease) read(ctx context.Context, rng *rand.Rand) {
	w := k.w
	for ctx.Err() == nil {
		pause(ctx, 100*time.Millisecond)
		if !k.ready.Load() {
			continue
		}
		id, last := k.id.Load(), time.Duration(k.lastAck.Load())
		m := randomMember(rng, w.c)
		r := send("GET", m.URL("/v1/kv"+k.key), nil)
		now := time.Duration(k.since())
		if r.fate != answered || k.id.Load() != id {
			continue
		}
		w.count(func() { w.stats.reads++ })
		if r.status == 404 && now < last+keptTTL*time.Second {
			w.violate("key %s of lease %d, kept alive, read as not found through %s %v after the last acknowledged keep-alive was sent (TTL %ds)",
				k.key, id, m.ID, (now - last).Round(time.Millisecond), keptTTL)
		}
	}
}

// revoker: grant, attach a key, revoke; once the revoke is acknowledged
// the key is dead.
func (w *leaseWorkload) revoker(ctx context.Context, rng *rand.Rand) {
	for n := 0; ctx.Err() == nil; n++ {
		key := fmt.Sprintf("/lease/revoked/%d", n)
		id, _, ok := w.grant(ctx, rng, 60, key)
		if !ok || !w.putWith(ctx, rng, key, id) {
			continue
		}
		for ctx.Err() == nil {
			r := send("DELETE", randomMember(rng, w.c).URL("/v1/leases/"+strconv.FormatInt(id, 10)), nil)
			if r.fate == answered && r.status == 200 {
				w.mu.Lock()
				w.stats.revoked++
				w.dead = append(w.dead, key)
				w.mu.Unlock()
				break
			}
			if r.fate == unknownFx {
				break // may be revoked or not: not a dead key we can rely on
			}
			pause(ctx, 50*time.Millisecond)
		}
		pause(ctx, 200*time.Millisecond)
	}
}

// expirer: grant a short lease, attach a key, never renew; wait until a
// linearizable read says the lease is gone, which must not happen before
// its TTL has passed since the grant was sent.
func (w *leaseWorkload) expirer(ctx context.Context, rng *rand.Rand) {
	const ttl = 2
	for n := 0; ctx.Err() == nil; n++ {
		key := fmt.Sprintf("/lease/expired/%d", n)
		id, sent, ok := w.grant(ctx, rng, ttl, key)
		if !ok || !w.putWith(ctx, rng, key, id) {
			continue
		}
		for ctx.Err() == nil {
			pause(ctx, 200*time.Millisecond)
			r := send("GET", randomMember(rng, w.c).URL("/v1/leases/"+strconv.FormatInt(id, 10)), nil)
			if r.fate == answered && r.code == "lease_not_found" {
				if el := time.Since(sent); el < ttl*time.Second {
					w.violate("lease %d of TTL %ds gone %v after its grant was sent", id, ttl, el.Round(time.Millisecond))
				}
				w.mu.Lock()
				w.stats.expired++
				w.dead = append(w.dead, key)
				w.mu.Unlock()
				break
			}
		}
	}
}

// deadReader reads the keys of revoked and expired leases: none may be
// seen again.
func (w *leaseWorkload) deadReader(ctx context.Context, rng *rand.Rand) {
	for ctx.Err() == nil {
		pause(ctx, 100*time.Millisecond)
		w.mu.Lock()
		if len(w.dead) == 0 {
			w.mu.Unlock()
			continue
		}
		key := w.dead[rng.IntN(len(w.dead))]
		w.mu.Unlock()
		m := randomMember(rng, w.c)
		r := send("GET", m.URL("/v1/kv"+key), nil)
		if r.fate != answered {
			continue
		}
		w.count(func() { w.stats.deadReads++ })
		if r.status == 200 {
			w.violate("key %s of a revoked or expired lease read again through %s: %s", key, m.ID, r.body)
		}
	}
}

// report returns the violations found (lease IDs issued twice included)
// and a one-line summary.
func (w *leaseWorkload) report() ([]string, string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	v := append([]string(nil), w.violations...)
	for _, d := range w.dupIDs {
		v = append(v, "lease ID issued twice: "+d)
	}
	s := w.stats
	return v, fmt.Sprintf("leases: %d granted (all IDs distinct: %v), %d keep-alives, %d reads of kept keys, %d revoked, %d expired, %d reads of dead keys, %d kept leases lost without a keep-alive for a TTL",
		s.grants, len(w.dupIDs) == 0, s.keepalives, s.reads, s.revoked, s.expired, s.deadReads, s.lost)
}

// pause sleeps d or until ctx ends (a workload's pacing, not a wait for
// raft).
func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
