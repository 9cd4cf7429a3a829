package client

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/rosterhq/roster/api"
)

// Keep-alive scheduling.
//
// One goroutine per Client (the keepAliver's loop) renews every lease the
// client keeps alive. Each lease is due a third of its TTL after its last
// successful renewal. When the loop wakes for the earliest due lease it
// renews, in the same request, every lease due within half of the shortest
// renewal interval: leases that started at about the same time fall into
// step after one round and stay in step, so N leases of similar TTL cost one
// POST /v1/leases/keepalive per interval, not N. A lease is renewed at the
// latest when due, so it always has at least two thirds of its TTL left
// when its renewal goes out.
//
// A lease is lost — its channels close — when the server reports it not
// found or refuses this client its renewal (403), or when no renewal
// succeeded before its deadline (the send time of the last successful
// renewal plus the TTL: the server keeps a lease no earlier than TTL after
// the renewal it acknowledged, and after that it may be gone; before the
// first renewal tells the TTL, kaFirstDeadline after KeepAlive). Until
// then a failed renewal is retried with backoff.
const (
	// kaFirstDelay collects the leases that KeepAlive is called for in one
	// burst (say, at start-up) into the first batch.
	kaFirstDelay = 10 * time.Millisecond
	// kaMaxBatch is the contract's cap on IDs per keep-alive request.
	kaMaxBatch = 10_000
	// kaChanSize is the buffer of a KeepAlive channel. A consumer that
	// falls further behind loses responses (they are only news), never
	// the renewals themselves: the loop never blocks on a channel.
	kaChanSize = 16
	// kaUnknownTTLBound bounds a request for leases whose TTL is not known
	// yet (the first renewal after KeepAlive).
	kaUnknownTTLBound = 5 * time.Second
	// kaMinAttempt is the least time one member gets to answer a renewal
	// before the loop tries another.
	kaMinAttempt = time.Second
	// kaFirstDeadline is the TTL assumed for a lease whose TTL is not
	// known yet (KeepAlive before its first renewal), as etcd's client
	// assumes: with no renewal through by then, the lease may be gone and
	// its channels close, rather than the loop retrying for ever.
	kaFirstDeadline = 5 * time.Second
)

type keepAliver struct {
	c    *Client
	wake chan struct{} // a lease was added: reschedule
	stop chan struct{}
	done chan struct{}

	mu      sync.Mutex
	leases  map[LeaseID]*kaLease
	started bool
	closed  bool
}

type kaLease struct {
	id        LeaseID
	ttl       time.Duration // 0 until the first renewal or the grant tells
	nextRenew time.Time
	deadline  time.Time // while ttl is unknown: kaFirstDeadline after KeepAlive
	failures  int
	streams   map[*kaStream]struct{}
}

// kaStream is one KeepAlive call's channel; a lease may have several.
type kaStream struct {
	ch     chan KeepAliveResponse
	stop   func() bool // unregisters the context.AfterFunc
	closed bool
}

func newKeepAliver(c *Client) *keepAliver {
	return &keepAliver{
		c:      c,
		wake:   make(chan struct{}, 1),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
		leases: map[LeaseID]*kaLease{},
	}
}

// KeepAlive keeps the lease alive until ctx ends or the client closes, and
// reports each renewal on the returned channel. The channel closes when
// the lease is lost (the server no longer knows it, the client's token may
// not renew it, or no renewal succeeded before it could have expired: a
// TTL after the last one that did, or 5 s after KeepAlive when none did
// yet, since only a renewal tells the client the TTL, as with etcd),
// when ctx ends, or when the client closes; a closed channel is the
// signal to stop using the lease.
// The channel is buffered; a consumer that does not keep up misses
// responses, but the lease is renewed regardless. Read it, or at least
// watch for its close.
//
// The first renewal goes out at once (it tells the lease's TTL); later ones
// at a third of the TTL. The renewals of all leases of the client are
// batched into one request.
func (c *Client) KeepAlive(ctx context.Context, id LeaseID) (<-chan KeepAliveResponse, error) {
	return c.ka.add(ctx, id, 0, time.Time{})
}

// keepAliveFrom is KeepAlive for a lease whose TTL is known from a grant
// sent at sent: no immediate renewal is needed, the first is due a third
// of the TTL after the grant.
func (c *Client) keepAliveFrom(ctx context.Context, id LeaseID, ttl int64, sent time.Time) (<-chan KeepAliveResponse, error) {
	return c.ka.add(ctx, id, time.Duration(ttl)*time.Second, sent)
}

func (k *keepAliver) add(ctx context.Context, id LeaseID, ttl time.Duration, base time.Time) (<-chan KeepAliveResponse, error) {
	if err := checkLeaseID(id); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	k.mu.Lock()
	if k.closed {
		k.mu.Unlock()
		return nil, ErrClosed
	}
	l := k.leases[id]
	if l == nil {
		l = &kaLease{id: id, streams: map[*kaStream]struct{}{}}
		if ttl > 0 {
			l.ttl, l.deadline, l.nextRenew = ttl, base.Add(ttl), base.Add(ttl/3)
		} else {
			now := time.Now()
			l.nextRenew, l.deadline = now.Add(kaFirstDelay), now.Add(kaFirstDeadline)
		}
		k.leases[id] = l
	}
	s := &kaStream{ch: make(chan KeepAliveResponse, kaChanSize)}
	l.streams[s] = struct{}{}
	if !k.started {
		k.started = true
		go k.run()
	}
	// Registered under the lock: a context that is already done runs the
	// function in its own goroutine, which waits for the lock.
	s.stop = context.AfterFunc(ctx, func() { k.removeStream(id, s) })
	k.mu.Unlock()
	k.poke()
	return s.ch, nil
}

func (k *keepAliver) poke() {
	select {
	case k.wake <- struct{}{}:
	default:
	}
}

// removeStream ends one KeepAlive call; the lease stays in the loop while
// another call still wants it.
func (k *keepAliver) removeStream(id LeaseID, s *kaStream) {
	k.mu.Lock()
	defer k.mu.Unlock()
	s.close()
	if l := k.leases[id]; l != nil {
		delete(l.streams, s)
		if len(l.streams) == 0 {
			delete(k.leases, id)
		}
	}
}

func (s *kaStream) close() {
	if !s.closed {
		s.closed = true
		close(s.ch)
	}
}

// loseLocked drops a lease and closes its channels.
func (k *keepAliver) loseLocked(l *kaLease) {
	for s := range l.streams {
		if s.stop != nil {
			s.stop()
		}
		s.close()
	}
	delete(k.leases, l.id)
}

func (k *keepAliver) close() {
	k.mu.Lock()
	if k.closed {
		k.mu.Unlock()
		return
	}
	k.closed = true
	for _, l := range k.leases {
		k.loseLocked(l)
	}
	started := k.started
	k.mu.Unlock()
	close(k.stop)
	if started {
		<-k.done
	}
}

func (k *keepAliver) run() {
	defer close(k.done)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		k.mu.Lock()
		now := time.Now()
		k.expireLocked(now)
		batch, wait := k.dueLocked(now)
		k.mu.Unlock()
		if len(batch) > 0 {
			for len(batch) > 0 {
				n := min(len(batch), kaMaxBatch)
				k.renew(batch[:n])
				batch = batch[n:]
			}
			continue
		}
		timer.Reset(wait)
		select {
		case <-k.stop:
			return
		case <-k.wake:
		case <-timer.C:
		}
	}
}

// expireLocked drops the leases whose deadline passed without a renewal.
func (k *keepAliver) expireLocked(now time.Time) {
	for _, l := range k.leases {
		if !l.deadline.IsZero() && !now.Before(l.deadline) {
			k.loseLocked(l)
		}
	}
}

// dueLocked returns the leases to renew now. A request goes out only when
// some lease is due; then every lease due within the grace rides along, so
// leases that are almost in step share the request and fall into step.
// With nothing due it returns how long to sleep until the next renewal or
// deadline.
func (k *keepAliver) dueLocked(now time.Time) ([]LeaseID, time.Duration) {
	var minTTL time.Duration
	anyDue := false
	earliest := now.Add(time.Hour)
	for _, l := range k.leases {
		if l.ttl > 0 && (minTTL == 0 || l.ttl < minTTL) {
			minTTL = l.ttl
		}
		if !l.nextRenew.After(now) {
			anyDue = true
		}
		earliest = minTime(earliest, l.nextRenew)
		if !l.deadline.IsZero() {
			earliest = minTime(earliest, l.deadline)
		}
	}
	if !anyDue {
		return nil, max(earliest.Sub(now), 0)
	}
	// Half the shortest renewal interval: wide enough to pull leases that
	// are almost in step into this request, narrow enough that no lease is
	// renewed much before it is due.
	horizon := now.Add(minTTL / 6)
	var due []LeaseID
	for _, l := range k.leases {
		if !l.nextRenew.After(horizon) {
			due = append(due, l.id)
		}
	}
	return due, 0
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// renew sends one keep-alive request for ids and applies the answer.
func (k *keepAliver) renew(ids []LeaseID) {
	k.mu.Lock()
	// Bound the request by the earliest deadline among the batch: after it
	// a late success no longer matters for that lease, and the others must
	// not wait on a hung member any longer than that.
	bound := kaUnknownTTLBound
	minTTL := time.Duration(0)
	now := time.Now()
	for _, id := range ids {
		if l := k.leases[id]; l != nil && !l.deadline.IsZero() {
			bound = min(bound, l.deadline.Sub(now))
			if l.ttl > 0 && (minTTL == 0 || l.ttl < minTTL) {
				minTTL = l.ttl
			}
		}
	}
	k.mu.Unlock()

	bound = max(bound, 10*time.Millisecond)
	ctx, cancel := context.WithTimeout(k.c.lifeCtx(), bound)
	defer cancel()
	sent := time.Now()
	body := api.KeepAliveRequest{IDs: ids}
	// Each member gets at most half the bound, so that one that is hung
	// always leaves another the time to answer (with a TTL of 30 s or
	// more, a sixth of it is no shorter than the bound).
	attempt := min(max(kaMinAttempt, minTTL/6), bound/2)
	res, err := k.c.do(ctx, &call{method: http.MethodPost, path: "/v1/leases/keepalive", json: body,
		class: idempotent, attemptTimeout: attempt})
	var w api.KeepAliveResponse
	if err == nil {
		err = res.decode(&w)
	}
	if errors.Is(err, ErrPermissionDenied) && len(ids) > 1 {
		// The server refuses a batch as a whole when the token may not
		// renew one of its leases: find that one by halves, so that the
		// others are still renewed.
		h := len(ids) / 2
		k.renew(ids[:h])
		k.renew(ids[h:])
		return
	}

	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return
	}
	if errors.Is(err, ErrPermissionDenied) {
		// This client may not renew the lease: it is as good as lost.
		if l := k.leases[ids[0]]; l != nil {
			k.loseLocked(l)
		}
		return
	}
	now = time.Now()
	answered := map[LeaseID]bool{}
	if err == nil {
		for _, r := range w.Leases {
			answered[r.ID] = true
			l := k.leases[r.ID]
			if l == nil {
				continue // its last KeepAlive call ended meanwhile
			}
			l.ttl = time.Duration(r.TTL) * time.Second
			l.deadline = sent.Add(l.ttl)
			l.nextRenew = sent.Add(l.ttl / 3)
			l.failures = 0
			for s := range l.streams {
				select {
				case s.ch <- r:
				default: // slow consumer: drop the news, keep the lease
				}
			}
		}
		for _, id := range w.NotFound {
			answered[id] = true
			if l := k.leases[id]; l != nil {
				k.loseLocked(l)
			}
		}
	}
	// Leases without an answer (the request failed) try again soon, but
	// always before their deadline.
	for _, id := range ids {
		l := k.leases[id]
		if l == nil || answered[id] {
			continue
		}
		l.failures++
		next := now.Add(backoff(l.failures))
		if !l.deadline.IsZero() {
			if left := l.deadline.Sub(now); left > 0 {
				next = minTime(next, now.Add(left/2))
			}
		}
		l.nextRenew = next
	}
}
