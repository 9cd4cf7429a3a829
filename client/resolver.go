package client

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ResolverOption configures a Resolver.
type ResolverOption func(*Resolver)

// WithKeepLastKnown(true) keeps the last known set of instances while the
// registry is unreachable: an outage never empties the view. Without it
// (the default) the view is emptied once the resolver has been cut off
// from every member for longer than the unreachable timeout, because by
// then it can no longer tell which instances are still alive. Members that
// answer but know no leader (the cluster lost its majority) do not count
// as unreachable: nothing can change in the registry then, and the view
// stays.
func WithKeepLastKnown(keep bool) ResolverOption {
	return func(r *Resolver) { r.keepLastKnown = keep }
}

// WithUnreachableTimeout sets how long the resolver may be cut off from
// the registry before, without WithKeepLastKnown, it empties the view
// (default 10 s: longer than an election).
func WithUnreachableTimeout(d time.Duration) ResolverOption {
	return func(r *Resolver) {
		if d > 0 {
			r.unreachable = d
		}
	}
}

// WithErrorHandler sets a function the resolver calls with each failed
// attempt to list the prefix again: the registry unreachable past the
// unreachable timeout, or a token that may no longer read the prefix (its
// watch then ends, and the list is refused). The resolver keeps trying;
// the handler learns why its view may be stale (grpcresolver hands it on
// to grpc). It runs on the resolver's goroutine and must not block; it may
// call the resolver's Close.
func WithErrorHandler(fn func(error)) ResolverOption {
	return func(r *Resolver) { r.onError = fn }
}

// Resolver keeps an always-current view of the instances registered under
// a prefix: it lists the prefix, then watches it from the listed revision,
// so it misses no change in between. It survives member failures (the
// watch resumes on another member) and compaction (it lists again, then
// watches again).
type Resolver struct {
	c             *Client
	prefix        string
	keepLastKnown bool
	unreachable   time.Duration
	onError       func(error) // nil: none

	updates chan []KV
	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{}
	// inHandler is set while the error handler runs, on the resolver's
	// goroutine: a Close it makes must not wait for that goroutine.
	inHandler atomic.Bool

	mu       sync.RWMutex
	snapshot []KV // sorted by key; replaced, never modified in place
	rev      int64

	// connected and lastContact tell how long the resolver has been cut
	// off from the registry: connected while a watch stream is in place;
	// lastContact is when it last was, or when a list last succeeded.
	stateMu     sync.Mutex
	connected   bool
	lastContact time.Time
}

// NewResolver lists prefix and starts following it. It returns once the
// first list succeeded (or fails with its error, bounded by ctx and the
// client's RequestTimeout). The resolver runs until ctx ends, Close is
// called or the client closes.
func NewResolver(ctx context.Context, c *Client, prefix string, opts ...ResolverOption) (*Resolver, error) {
	if err := checkKey(prefix); err != nil {
		return nil, err
	}
	rctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(c.lifeCtx(), cancel)
	r := &Resolver{
		c: c, prefix: prefix, unreachable: 10 * time.Second,
		updates: make(chan []KV, 1), ctx: rctx, cancel: cancel, done: make(chan struct{}),
	}
	for _, o := range opts {
		o(r)
	}
	kvs, rev, err := r.list(rctx)
	if err != nil {
		stop()
		cancel()
		return nil, err
	}
	r.contact()
	r.publish(kvs, rev, true)
	go func() {
		defer close(r.done) // last: Close returns once all else is done
		defer stop()
		r.run(rev)
	}()
	return r, nil
}

// Instances returns the current instances, sorted by key. The slice is
// the caller's; the values in it are shared and must not be modified.
func (r *Resolver) Instances() []KV {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return slices.Clone(r.snapshot)
}

// Revision is the store revision the current view reflects.
func (r *Resolver) Revision() int64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.rev
}

// Updates delivers the set of instances (sorted by key) each time it
// changes, starting with the set listed at creation. It keeps only the
// latest: a reader that falls behind gets the newest set, never a stale
// one. It closes when the resolver stops.
func (r *Resolver) Updates() <-chan []KV { return r.updates }

// Close stops the resolver and closes Updates; it returns once every
// goroutine of the resolver has ended. Calling it again does nothing. It
// may be called from the error handler (WithErrorHandler), which runs on
// the resolver's goroutine: then, and for any Close made while the
// handler runs, it returns at once and the resolver stops as soon as the
// handler returns.
func (r *Resolver) Close() {
	r.cancel()
	if r.inHandler.Load() {
		return
	}
	<-r.done
}

// list reads the whole prefix in one linearizable read: one revision for
// the whole set, which the watch then follows on from.
func (r *Resolver) list(ctx context.Context) ([]KV, int64, error) {
	resp, err := r.c.Get(ctx, r.prefix, WithPrefix())
	if err != nil {
		return nil, 0, err
	}
	return resp.KVs, resp.Revision, nil
}

// publish replaces the view; it tells Updates when the set changed (or
// always, for the first one).
func (r *Resolver) publish(kvs []KV, rev int64, force bool) {
	r.mu.Lock()
	changed := force || !sameKVs(r.snapshot, kvs)
	r.snapshot, r.rev = kvs, rev
	r.mu.Unlock()
	if !changed {
		return
	}
	// Latest wins: the resolver's goroutine is the only sender, so after
	// emptying the buffer the send cannot block.
	select {
	case <-r.updates:
	default:
	}
	r.updates <- slices.Clone(kvs)
}

func sameKVs(a, b []KV) bool {
	return slices.EqualFunc(a, b, func(x, y KV) bool {
		return x.Key == y.Key && x.ModRevision == y.ModRevision && x.Lease == y.Lease
	})
}

// setConnected is the watch's report of its stream state.
func (r *Resolver) setConnected(up bool) {
	r.stateMu.Lock()
	defer r.stateMu.Unlock()
	if up != r.connected {
		r.connected = up
		r.lastContact = time.Now()
	}
}

// contact records a successful list.
func (r *Resolver) contact() {
	r.stateMu.Lock()
	defer r.stateMu.Unlock()
	r.lastContact = time.Now()
}

// cutOffFor is how long the resolver has been without contact to the
// registry (0 while a stream is in place).
func (r *Resolver) cutOffFor() time.Duration {
	r.stateMu.Lock()
	defer r.stateMu.Unlock()
	if r.connected {
		return 0
	}
	return time.Since(r.lastContact)
}

// run follows the prefix from rev; after a compaction or a long outage it
// lists again and follows on from there.
func (r *Resolver) run(rev int64) {
	defer close(r.updates)
	for r.ctx.Err() == nil {
		relist := r.follow(rev)
		if !relist || r.ctx.Err() != nil {
			return
		}
		var ok bool
		if rev, ok = r.relist(); !ok {
			return
		}
	}
}

// relist lists until it succeeds, emptying the view if the registry stays
// unreachable for too long (unless keeping the last known set).
func (r *Resolver) relist() (int64, bool) {
	for n := 0; ; n++ {
		// Bounded well inside the unreachable timeout, so that an outage
		// is noticed in time.
		ctx, cancel := context.WithTimeout(r.ctx, min(r.c.cfg.RequestTimeout, max(r.unreachable/2, time.Second)))
		kvs, rev, err := r.list(ctx)
		cancel()
		if err == nil {
			r.contact()
			r.publish(kvs, rev, false)
			return rev, true
		}
		if r.ctx.Err() != nil || errors.Is(err, ErrClosed) {
			// Stopping (the client's close reaches r.ctx a moment after
			// it fails the list): no error to report, no view to empty.
			return 0, false
		}
		if r.onError != nil {
			r.inHandler.Store(true)
			r.onError(err)
			r.inHandler.Store(false)
		}
		r.maybeEmpty()
		if !sleepCtx(r.ctx, backoff(n)) {
			return 0, false
		}
	}
}

// maybeEmpty empties the view when the registry has been unreachable for
// longer than allowed and the resolver does not keep the last known set.
func (r *Resolver) maybeEmpty() {
	if r.keepLastKnown || r.cutOffFor() < r.unreachable {
		return
	}
	r.mu.RLock()
	rev, empty := r.rev, len(r.snapshot) == 0
	r.mu.RUnlock()
	if !empty {
		r.publish([]KV{}, rev, false)
	}
}

// follow watches from rev and applies the events to the view. It returns
// true when the resolver must list again (compaction, an unreachable
// registry whose view was emptied), false when it is stopping.
func (r *Resolver) follow(rev int64) (relist bool) {
	wctx, cancel := context.WithCancel(r.ctx)
	wch, wdone := r.c.watch(wctx, r.prefix, op{prefix: true, rev: rev, fromRev: true}, r.setConnected)
	defer func() {
		// The watch is the resolver's: Close returns only once it ended.
		cancel()
		<-wdone
	}()
	// The view as a map while following; published as a sorted slice.
	view := map[string]KV{}
	for _, kv := range r.Instances() {
		view[kv.Key] = kv
	}
	tick := time.NewTicker(max(r.unreachable/4, 10*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return false
		case <-tick.C:
			if !r.keepLastKnown && r.cutOffFor() >= r.unreachable {
				// Cut off for too long: empty the view, then rebuild it
				// from a fresh list once the registry answers again.
				r.maybeEmpty()
				return true
			}
		case resp, ok := <-wch:
			if !ok {
				return r.ctx.Err() == nil // the watch ended: list again
			}
			if resp.Err != nil {
				// Compacted (or another end): the history we need is gone,
				// so only a fresh list is exact.
				return true
			}
			for _, ev := range resp.Events {
				if !strings.HasPrefix(ev.KV.Key, r.prefix) {
					continue
				}
				switch ev.Type {
				case EventPut:
					view[ev.KV.Key] = ev.KV
				case EventDelete:
					delete(view, ev.KV.Key)
				}
			}
			r.publish(sortedKVs(view), resp.Revision, false)
		}
	}
}

func sortedKVs(m map[string]KV) []KV {
	out := make([]KV, 0, len(m))
	for _, kv := range m {
		out = append(out, kv)
	}
	slices.SortFunc(out, func(a, b KV) int { return strings.Compare(a.Key, b.Key) })
	return out
}
