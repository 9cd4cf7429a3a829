package grpcresolver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc/resolver"

	"github.com/rosterhq/roster/client"
)

// Retry pacing of the first list while the registry does not answer.
const (
	minRetry = 100 * time.Millisecond
	maxRetry = 5 * time.Second
)

// cached is the parsed form of one instance value, kept per key so that a
// value is parsed (and an invalid one logged) once per revision.
type cached struct {
	modRev int64
	addr   resolver.Address
	err    error
}

// rosterResolver follows one key prefix with a client.Resolver and hands
// each new set of addresses to grpc.
type rosterResolver struct {
	c      *client.Client
	cc     resolver.ClientConn
	prefix string
	log    *slog.Logger
	ropts  []client.ResolverOption

	ctx        context.Context
	cancel     context.CancelFunc
	done       chan struct{}
	resolveNow chan struct{}

	// Owned by the run goroutine.
	cache  map[string]cached
	last   []resolver.Address
	pushed bool
}

// ResolveNow is a hint from grpc (a connection failed, say). The watch
// already delivers every change as it happens, so once the first list has
// answered there is nothing to re-read; before that, it cuts short the
// wait between attempts (never retrying more often than every 100 ms).
func (r *rosterResolver) ResolveNow(resolver.ResolveNowOptions) {
	select {
	case r.resolveNow <- struct{}{}:
	default:
	}
}

// Close stops the resolution and returns once its goroutines are gone.
// Calling it again does nothing.
func (r *rosterResolver) Close() {
	r.cancel()
	<-r.done
}

// run lists the prefix until the registry answers, then follows it.
func (r *rosterResolver) run() {
	defer close(r.done)
	for attempt := 0; ; attempt++ {
		started := time.Now()
		res, err := client.NewResolver(r.ctx, r.c, r.prefix, r.ropts...)
		if err == nil {
			r.follow(res)
			return
		}
		if r.ctx.Err() != nil {
			return
		}
		r.log.Warn("grpcresolver: listing the prefix failed", "attempt", attempt+1, "error", err)
		r.cc.ReportError(fmt.Errorf("grpcresolver: resolving %s: %w", r.prefix, err))
		if errors.Is(err, client.ErrClosed) || errors.Is(err, client.ErrInvalidArgument) {
			return // no retry can help
		}
		if !r.wait(backoff(attempt), started) {
			return
		}
	}
}

// wait pauses before the next attempt: d, or less when grpc asks to
// resolve now, but never less than minRetry after the last attempt began.
func (r *rosterResolver) wait(d time.Duration, started time.Time) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-r.ctx.Done():
		return false
	case <-t.C:
		return true
	case <-r.resolveNow:
	}
	rest := minRetry - time.Since(started)
	if rest <= 0 {
		return true
	}
	t.Reset(rest)
	select {
	case <-r.ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func backoff(attempt int) time.Duration {
	d := minRetry << min(attempt, 10)
	return min(d, maxRetry)
}

// follow hands every set of instances res delivers to grpc until the
// resolver is closed or res stops (the client was closed).
func (r *rosterResolver) follow(res *client.Resolver) {
	defer res.Close()
	for {
		select {
		case <-r.ctx.Done():
			return
		case kvs, ok := <-res.Updates():
			if !ok {
				if r.ctx.Err() == nil {
					r.log.Warn("grpcresolver: the registry client was closed")
					r.cc.ReportError(fmt.Errorf("grpcresolver: resolving %s: %w", r.prefix, client.ErrClosed))
				}
				return
			}
			r.push(r.addresses(kvs))
		}
	}
}

// push sends the addresses to grpc unless they are the ones it has.
func (r *rosterResolver) push(addrs []resolver.Address) {
	if r.pushed && slices.EqualFunc(addrs, r.last, resolver.Address.Equal) {
		return
	}
	r.pushed, r.last = true, addrs
	// A watch-based resolver re-resolves by itself; an error here (the
	// balancer refused an empty list, say) needs no retry from us.
	if err := r.cc.UpdateState(resolver.State{Addresses: addrs}); err != nil {
		r.log.Debug("grpcresolver: grpc did not accept the addresses", "addresses", len(addrs), "error", err)
	}
}

// addresses turns a set of instances into grpc addresses: sorted by
// address, one per address (the first key, in key order, wins), skipping
// the values that name no usable address.
func (r *rosterResolver) addresses(kvs []client.KV) []resolver.Address {
	cache := make(map[string]cached, len(kvs))
	addrs := make([]resolver.Address, 0, len(kvs))
	seen := make(map[string]bool, len(kvs))
	for _, kv := range kvs {
		e, ok := r.cache[kv.Key]
		if !ok || e.modRev != kv.ModRevision {
			e = cached{modRev: kv.ModRevision}
			addr, md, err := parseValue(kv.Value)
			if err != nil {
				e.err = err
				r.log.Warn("grpcresolver: skipping an instance whose value names no address", "key", kv.Key, "mod_revision", kv.ModRevision, "error", err)
			} else {
				e.addr = newAddress(kv.Key, addr, md)
			}
		}
		cache[kv.Key] = e
		if e.err != nil {
			continue
		}
		if seen[e.addr.Addr] {
			r.log.Debug("grpcresolver: address registered under more than one key", "key", kv.Key, "addr", e.addr.Addr)
			continue
		}
		seen[e.addr.Addr] = true
		addrs = append(addrs, e.addr)
	}
	r.cache = cache
	slices.SortFunc(addrs, func(a, b resolver.Address) int { return strings.Compare(a.Addr, b.Addr) })
	return addrs
}
