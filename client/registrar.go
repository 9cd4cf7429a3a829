package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// RegistrationEventType is a change in a registration's state.
type RegistrationEventType int

const (
	// Registered: the key is in place, attached to a live lease (sent once,
	// when Register succeeds).
	Registered RegistrationEventType = iota
	// Lost: the lease was lost (expired while the registry was unreachable,
	// revoked by someone, or the registry forgot it); the key is gone or
	// about to go. The registration is being re-established.
	Lost
	// Reregistered: after a loss, the same key and value are in place
	// again under a new lease.
	Reregistered
)

func (t RegistrationEventType) String() string {
	switch t {
	case Registered:
		return "registered"
	case Lost:
		return "lost"
	case Reregistered:
		return "reregistered"
	}
	return fmt.Sprintf("RegistrationEventType(%d)", int(t))
}

// RegistrationEvent reports a state change of a Registration.
type RegistrationEvent struct {
	Type     RegistrationEventType
	Key      string
	Lease    LeaseID // the lease now in use (Registered, Reregistered) or lost (Lost)
	Revision int64   // the revision of the put (Registered, Reregistered)
	Time     time.Time
}

// RegistrarOption configures a Registrar.
type RegistrarOption func(*Registrar)

// WithOnChange calls f on every state change of every registration, from
// the registration's own goroutine: f must return quickly. It may close
// the registration the event is about (say, to give up after Lost); the
// registration then stops when f returns.
func WithOnChange(f func(RegistrationEvent)) RegistrarOption {
	return func(r *Registrar) { r.onChange = f }
}

// WithRetryInterval bounds the pause between attempts to re-establish a
// lost registration (default 1 s; attempts back off from 50 ms up to it).
func WithRetryInterval(d time.Duration) RegistrarOption {
	return func(r *Registrar) {
		if d > 0 {
			r.maxRetry = d
		}
	}
}

// Registrar registers service instances: each registration is a key
// attached to a lease of its own, kept alive by the client's batched
// keep-alive loop and re-established after it was lost.
type Registrar struct {
	c        *Client
	onChange func(RegistrationEvent)
	maxRetry time.Duration
}

// NewRegistrar returns a Registrar that uses c.
func NewRegistrar(c *Client, opts ...RegistrarOption) *Registrar {
	r := &Registrar{c: c, maxRetry: time.Second}
	for _, o := range opts {
		o(r)
	}
	return r
}

// Registration is one registered key. It stays registered until Close.
type Registration struct {
	r      *Registrar
	key    string
	ttl    int64
	events chan RegistrationEvent

	ctx    context.Context // ends at Close (or when the client closes)
	cancel context.CancelFunc
	done   chan struct{} // the loop exited
	poke   chan LeaseID  // Update saw this lease gone: re-register now

	writeMu sync.Mutex // serializes puts of this key (Update, re-register)

	mu    sync.Mutex
	value []byte
	lease LeaseID
	alive <-chan KeepAliveResponse
	kaEnd context.CancelFunc

	// inHandler is set while the OnChange handler runs on the
	// registration's goroutine: a Close it makes must not wait for that
	// goroutine to end.
	inHandler atomic.Bool
	// evMu orders emit's sends after a Close made from the handler has
	// closed events (run goes on until the handler returns).
	evMu     sync.Mutex
	evClosed bool

	// closeMu guards closing, set by the first Close; closed closes once
	// that Close is done, and closeErr is its result.
	closeMu  sync.Mutex
	closing  bool
	closed   chan struct{}
	closeErr error
}

// registrationEvents is the buffer of Events(); a reader that falls
// further behind misses events (use WithOnChange to see every one).
const registrationEvents = 32

// Register grants a lease of ttl seconds, puts key = value attached to
// it, and keeps both alive until Close. ctx bounds this first registration
// only; if it fails, nothing is left behind. Afterwards, whenever the
// lease is lost (a network partition longer than the TTL, a registry that
// forgot it), the registration grants a new lease and puts the same key
// and (latest) value again, retrying until it succeeds or is closed. (It
// follows its lease, not its key: a key deleted by someone else while the
// lease lives is not put back.)
func (r *Registrar) Register(ctx context.Context, key string, value []byte, ttl int64) (*Registration, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	if err := checkTTL(ttl); err != nil {
		return nil, err
	}
	if r.c.closed() {
		return nil, ErrClosed
	}
	life, cancel := context.WithCancel(r.c.lifeCtx())
	g := &Registration{
		r: r, key: key, ttl: ttl, value: append([]byte(nil), value...),
		events: make(chan RegistrationEvent, registrationEvents),
		ctx:    life, cancel: cancel, done: make(chan struct{}), poke: make(chan LeaseID, 1),
		closed: make(chan struct{}),
	}
	rev, err := g.establish(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	g.emit(Registered, g.lease, rev)
	go g.run()
	return g, nil
}

// Key returns the registered key.
func (g *Registration) Key() string { return g.key }

// Lease returns the lease the key is attached to now.
func (g *Registration) Lease() LeaseID {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.lease
}

// Events reports the registration's state changes: Registered first, then
// Lost and Reregistered as they happen. It closes after Close. It is
// buffered and never blocks the registration; a reader that falls behind
// misses events.
func (g *Registration) Events() <-chan RegistrationEvent { return g.events }

// establish grants a lease, puts the key on it and starts keeping the lease
// alive. On failure it revokes the new lease (best effort) so that nothing
// is left behind.
func (g *Registration) establish(ctx context.Context) (rev int64, err error) {
	c := g.r.c
	sent := time.Now()
	gr, err := c.Grant(ctx, g.ttl, WithName(g.key))
	if err != nil {
		return 0, err
	}
	// Held until the new lease is recorded, so that an Update never puts
	// the key back on the old lease after the new one took it.
	g.writeMu.Lock()
	defer g.writeMu.Unlock()
	g.mu.Lock()
	value := g.value
	g.mu.Unlock()
	pr, err := c.Put(ctx, g.key, value, WithLease(gr.ID))
	if err != nil {
		g.revokeQuietly(gr.ID)
		return 0, err
	}
	kctx, kcancel := context.WithCancel(g.ctx)
	alive, err := c.keepAliveFrom(kctx, gr.ID, gr.TTL, sent)
	if err != nil {
		kcancel()
		g.revokeQuietly(gr.ID)
		return 0, err
	}
	g.mu.Lock()
	g.lease, g.alive, g.kaEnd = gr.ID, alive, kcancel
	g.mu.Unlock()
	return pr.Revision, nil
}

// revokeQuietly revokes a lease that is no longer wanted. Failing is
// harmless: the lease expires on its own.
func (g *Registration) revokeQuietly(id LeaseID) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _ = g.r.c.Revoke(ctx, id)
}

// run watches the keep-alive channel and re-establishes the registration
// whenever it closes.
func (g *Registration) run() {
	defer close(g.done)
	for {
		g.mu.Lock()
		alive := g.alive
		g.mu.Unlock()
		lost := false
		for !lost {
			select {
			case _, ok := <-alive:
				lost = !ok
			case id := <-g.poke:
				lost = id == g.Lease() // a stale poke is about a lease already replaced
			case <-g.ctx.Done():
				return
			}
		}
		if g.ctx.Err() != nil {
			return
		}
		g.mu.Lock()
		old := g.lease
		g.kaEnd()
		g.mu.Unlock()
		g.emit(Lost, old, 0)
		if !g.reestablish(old) {
			return
		}
	}
}

// reestablish retries until the registration is back, with backoff.
func (g *Registration) reestablish(old LeaseID) bool {
	for n := 0; ; n++ {
		ctx, cancel := context.WithTimeout(g.ctx, g.r.c.cfg.RequestTimeout)
		rev, err := g.establish(ctx)
		cancel()
		if err == nil {
			g.emit(Reregistered, g.Lease(), rev)
			// The old lease may still exist (lost only client-side, say
			// during a registry outage): it holds no key any more, but
			// revoking it spares the registry its expiry.
			go g.revokeQuietly(old)
			return true
		}
		if g.ctx.Err() != nil {
			return false
		}
		d := min(backoff(n), g.r.maxRetry)
		if !sleepCtx(g.ctx, d) {
			return false
		}
	}
}

func (g *Registration) emit(t RegistrationEventType, lease LeaseID, rev int64) {
	ev := RegistrationEvent{Type: t, Key: g.key, Lease: lease, Revision: rev, Time: time.Now()}
	g.evMu.Lock()
	if !g.evClosed {
		select {
		case g.events <- ev:
		default: // nobody reads: drop rather than stall the registration
		}
	}
	g.evMu.Unlock()
	if f := g.r.onChange; f != nil {
		g.inHandler.Store(true)
		f(ev)
		g.inHandler.Store(false)
	}
}

// Update puts a new value under the key, attached to the current lease.
// The value is remembered and used when the registration is
// re-established. If the lease is gone at this moment, Update returns
// ErrLeaseNotFound and the registration is re-established right away, with
// the new value.
func (g *Registration) Update(ctx context.Context, value []byte) (*PutResponse, error) {
	if g.ctx.Err() != nil {
		return nil, ErrClosed
	}
	g.writeMu.Lock()
	defer g.writeMu.Unlock()
	g.mu.Lock()
	g.value = append([]byte(nil), value...)
	lease := g.lease
	g.mu.Unlock()
	pr, err := g.r.c.Put(ctx, g.key, value, WithLease(lease))
	if errors.Is(err, ErrLeaseNotFound) {
		select {
		case g.poke <- lease:
		default:
		}
	}
	return pr, err
}

// Close ends the registration: it stops the keep-alive and revokes the
// lease, so the key disappears at once and watchers see the departure
// without waiting for the TTL. It returns the revoke's error (a lease that
// is already gone is not an error). Calling Close again returns the first
// call's result. Close may be called from the OnChange handler, which runs
// on the registration's goroutine: it then does not wait for that
// goroutine, which ends as soon as the handler returns (the registration
// is not re-established). A Close made while the handler runs and another
// Close is under way (one waiting for the handler's goroutine to end)
// returns nil at once: the Close under way finishes the job.
func (g *Registration) Close(ctx context.Context) error {
	g.closeMu.Lock()
	first := !g.closing
	g.closing = true
	g.closeMu.Unlock()
	if !first {
		if g.inHandler.Load() {
			// The first Close may be waiting for the goroutine that runs
			// the handler: waiting for it here would wait for ever.
			return nil
		}
		<-g.closed
		return g.closeErr
	}
	defer close(g.closed)
	g.cancel()
	if !g.inHandler.Load() {
		<-g.done
	}
	g.mu.Lock()
	lease, kaEnd := g.lease, g.kaEnd
	g.mu.Unlock()
	if kaEnd != nil {
		kaEnd()
	}
	_, err := g.r.c.Revoke(ctx, lease)
	if err != nil && !errors.Is(err, ErrLeaseNotFound) {
		g.closeErr = err
	}
	g.evMu.Lock()
	g.evClosed = true
	close(g.events)
	g.evMu.Unlock()
	return g.closeErr
}
