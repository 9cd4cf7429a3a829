package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/rosterhq/roster/api"
)

// EventType says what happened to a key.
type EventType int

const (
	EventPut    EventType = iota // the key was created or changed
	EventDelete                  // the key was deleted (or its lease ended)
)

func (t EventType) String() string {
	switch t {
	case EventPut:
		return "put"
	case EventDelete:
		return "delete"
	}
	return "EventType(" + strconv.Itoa(int(t)) + ")"
}

// Event is one change of one key.
type Event struct {
	Type EventType
	// KV is the key after a put. After a delete only KV.Key and
	// KV.ModRevision (the revision of the delete) are set.
	KV KV
	// PrevKV is the key before the change, with WithPrevKV, when it existed.
	PrevKV *KV
	// Revision is the revision of the change.
	Revision int64
}

// WatchResponse carries events, in revision order, or the error that ended
// the watch.
type WatchResponse struct {
	Events []Event
	// Revision is the revision of the last event in Events: resuming a
	// watch WithRev(Revision) continues right after it.
	Revision int64
	// Err is set only in the last response before the channel closes: a
	// *CompactedError (ErrCompacted) when the watch asked for history the
	// server no longer keeps — re-list with Get, then watch again from the
	// revision the Get answered with — or another error the watch cannot
	// get past by reconnecting (a bad key, say, or no member passing the
	// TLS handshake: see TLSError).
	Err error
}

// Watch timing.
const (
	// watchIdleTimeout ends a stream that delivered nothing, not even a
	// heartbeat (sent at least every 10 s), for this long: the member or
	// the path to it is gone without the connection saying so.
	watchIdleTimeout = 35 * time.Second
	// watchMaxBatch bounds the events put in one WatchResponse.
	watchMaxBatch = 512
)

// Watch follows the changes of key (or, WithPrefix, of every key under
// it) and delivers them in revision order on the returned channel. Options:
// WithPrefix, WithRev (deliver the changes after that revision; default:
// from now), WithPrevKV.
//
// When the stream breaks (a member dies, the network hiccups, or its
// member is cut off from the cluster's majority and knows no leader) the
// watch reconnects, to any member, with backoff, and resumes after the
// last revision it delivered (or the later revision a heartbeat said the
// stream had got to), so no event is lost or repeated. It ends — the
// channel closes — when ctx ends, the client closes, or after a
// WatchResponse whose Err is set: ErrCompacted when the history it needs
// is gone, or an error no reconnect can fix. The channel is not dropped
// into: a consumer that stops reading stalls its watch (and, if it stalls
// for long, the server cuts the stream and the watch resumes later).
func (c *Client) Watch(ctx context.Context, key string, opts ...OpOption) <-chan WatchResponse {
	ch, _ := c.watch(ctx, key, buildOp(opts), nil)
	return ch
}

// watcher is one Watch: it owns the stream and the resume revision.
type watcher struct {
	c    *Client
	key  string
	o    op
	out  chan WatchResponse
	rev  int64 // deliver events after this revision
	from bool  // rev is set (otherwise: from now, until the first connect)
	// onState, when set, is told whether the watch is in contact with the
	// registry (true: a stream is in place, or the members that answered
	// all know no leader, so the registry cannot change) or cut off
	// between streams (false). The Resolver uses it to tell an outage
	// from a quiet prefix.
	onState func(connected bool)
	// frozen: in the last round no member took the watch, and those that
	// answered refused it for want of a leader.
	frozen bool
}

// watch is Watch; done closes once the watch's goroutine has ended (after
// the channel), so that an owner (the Resolver) can wait for it.
func (c *Client) watch(ctx context.Context, key string, o op, onState func(bool)) (<-chan WatchResponse, <-chan struct{}) {
	w := &watcher{c: c, key: key, o: o, out: make(chan WatchResponse, 1), onState: onState}
	done := make(chan struct{})
	if o.rev > 0 || o.fromRev {
		w.rev, w.from = max(o.rev, 0), true
	}
	if err := checkKey(key); err != nil {
		w.out <- WatchResponse{Err: err}
		close(w.out)
		close(done)
		return w.out, done
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed() {
		close(w.out)
		close(done)
		return w.out, done
	}
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(c.lifeCtx(), cancel)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer close(done)
		defer cancel()
		defer stop()
		defer close(w.out)
		w.run(ctx)
	}()
	return w.out, done
}

func (w *watcher) state(connected bool) {
	if w.onState != nil {
		w.onState(connected)
	}
}

// run connects, streams and reconnects until ctx ends or a terminal error.
func (w *watcher) run(ctx context.Context) {
	round := 0
	for ctx.Err() == nil {
		progressed, err := w.once(ctx)
		w.state(w.frozen)
		if ctx.Err() != nil {
			return
		}
		if err != nil && !w.retryable(err) {
			select {
			case w.out <- WatchResponse{Err: err}:
			case <-ctx.Done():
			}
			return
		}
		if progressed {
			round = 0 // a stream was in place: reconnect at once
			continue
		}
		if !sleepCtx(ctx, backoff(round)) {
			return
		}
		round++
	}
}

// retryable: anything but an error answer that no other member or later
// attempt would answer differently.
func (w *watcher) retryable(err error) bool {
	se := statusOf(err)
	if se == nil {
		return !errors.Is(err, errBadEvent) && !isTLSError(err)
	}
	switch {
	case se.Status == http.StatusTooManyRequests, se.Status >= 500:
		return true
	}
	return false
}

// errBadEvent: the server sent an event the client cannot read; resuming
// would only read it again.
var errBadEvent = errors.New("roster: unreadable watch event")

// once tries the members in turn until one accepts the watch, then follows
// its stream to the end. progressed reports whether a stream was in place.
//
// A member may answer 410 compacted where another would not (one that just
// restarted keeps a short history), so compaction is final only once no
// member could serve the watch.
func (w *watcher) once(ctx context.Context) (progressed bool, err error) {
	var last, compacted error
	unverified := map[*endpoint]error{}
	w.frozen = false
	for _, ep := range w.c.order(false) {
		resp, cancel, err := w.connect(ctx, ep)
		if err != nil {
			if ctx.Err() != nil {
				return false, ctx.Err()
			}
			if isTLSError(err) {
				// A certificate that failed fails again: when every
				// member's did, the watch ends (see tlsfail.go). Not
				// the round's error else: such a member is tried last,
				// and the others' failures (an outage, an election)
				// are the ones worth retrying.
				unverified[ep] = err
				continue
			}
			if errors.Is(err, ErrCompacted) {
				compacted = err
				continue
			}
			if !w.retryable(err) {
				return false, err
			}
			if se := statusOf(err); se != nil && se.Code == "no_leader" {
				// Reachable, but the watch asks for a leader (see
				// connect): a cluster without its majority.
				w.frozen = true
			}
			last = err
			continue
		}
		w.frozen = false
		start, before := time.Now(), w.rev
		err = w.follow(ctx, resp)
		cancel()
		// A stream that delivered or lasted is worth resuming at once; one
		// that a member accepts and drops straight away is not, or the
		// watch would spin on it.
		return w.rev != before || time.Since(start) > time.Second, err
	}
	if compacted != nil {
		return false, compacted
	}
	if len(unverified) == len(w.c.endpoints) {
		return false, unverifiedError("watch "+w.key, w.c.inOrder(unverified))
	}
	return false, last
}

// streamConn is the live stream's body and the timer that cuts it.
type streamConn struct {
	body   io.ReadCloser
	idle   *time.Timer
	rev    int64 // X-Roster-Revision
	hasRev bool
	close  func()
}

// connect opens the stream on ep. The returned cancel ends it.
func (w *watcher) connect(ctx context.Context, ep *endpoint) (*streamConn, func(), error) {
	// require_leader: a member cut off from the majority ends the stream
	// (and refuses a new one with no_leader) instead of keeping it open
	// in silence while the cluster changes elsewhere; the watch then
	// resumes on another member.
	// progress_notify: heartbeats carry the revision the stream got to, so
	// that a watch of a quiet key resumes from there rather than from its
	// last event, which the member's history may have left behind (410).
	q := url.Values{"require_leader": {"true"}, "progress_notify": {"true"}}
	if w.o.prefix {
		q.Set("prefix", "true")
	}
	if w.o.prevKV {
		q.Set("prev_kv", "true")
	}
	if w.from {
		q.Set("rev", strconv.FormatInt(w.rev, 10))
	}
	sctx, cancel := context.WithCancel(ctx)
	u := *ep.base
	u.Path = "/v1/watch" + w.key
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(sctx, http.MethodGet, u.String(), nil)
	if err != nil {
		cancel()
		return nil, nil, fmt.Errorf("%w: %v", ErrInvalidArgument, err)
	}
	req.Header.Set("Accept", "text/event-stream")
	w.c.authorize(req)
	if w.from {
		req.Header.Set("Last-Event-ID", strconv.FormatInt(w.rev, 10))
	}
	// The headers come as soon as the watch is in place; a member that
	// does not send them within the time a read gives a member to start
	// answering is hung (stopped, or cut off with the connection still
	// open): try the next, and this one last for a while.
	var silent atomic.Bool
	idle := time.AfterFunc(w.c.answerTimeout, func() { silent.Store(true); cancel() })
	resp, err := w.c.hc.Do(req)
	if te := tlsFailure(ep, err); te != nil {
		idle.Stop()
		cancel()
		return nil, nil, te
	}
	if err != nil {
		idle.Stop()
		cancel()
		if isDialError(err) || silent.Load() {
			ep.markDown()
		}
		return nil, nil, fmt.Errorf("roster: watch %s on %s: %w", w.key, ep.base.Host, err)
	}
	ep.markHealthy()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		idle.Stop()
		cancel()
		err := decodeError(resp.StatusCode, body)
		if te := plainToTLS(ep, resp.StatusCode, err); te != nil {
			return nil, nil, te
		}
		if se := statusOf(err); resp.StatusCode == http.StatusServiceUnavailable && se != nil && se.Code == "no_leader" {
			// Cut off from the majority, or removed: try it last for a
			// while, as the other calls do.
			ep.markDown()
		}
		return nil, nil, err
	}
	idle.Reset(watchIdleTimeout)
	rev, err := strconv.ParseInt(resp.Header.Get("X-Roster-Revision"), 10, 64)
	sc := &streamConn{body: resp.Body, idle: idle, rev: rev, hasRev: err == nil}
	sc.close = func() {
		idle.Stop()
		cancel()
		resp.Body.Close()
	}
	return sc, sc.close, nil
}

// follow reads the stream and delivers its events until it ends. It
// returns nil when the stream ended and a reconnect should resume it.
func (w *watcher) follow(ctx context.Context, sc *streamConn) error {
	w.state(true)
	if !w.from && sc.hasRev {
		// From now: the watch is in place at the answer's revision, and a
		// resume must start from there even if no event came yet.
		w.rev, w.from = sc.rev, true
	}
	p := newSSEReader(sc.body, func() { sc.idle.Reset(watchIdleTimeout) })
	p.bareID = func(id string) {
		// Every change up to this revision under the key was sent before
		// it: resume after it. Events read but not yet delivered have
		// lower revisions and are delivered before any resume.
		if rev, err := strconv.ParseInt(id, 10, 64); err == nil && rev > w.rev {
			w.rev, w.from = rev, true
		}
	}
	for {
		var resp WatchResponse
		for len(resp.Events) < watchMaxBatch {
			if len(resp.Events) > 0 && !p.completeEventBuffered() {
				break // deliver what we have rather than wait for more
			}
			ev, err := p.next()
			if err != nil {
				if len(resp.Events) > 0 && !w.deliver(ctx, sc, resp) {
					return ctx.Err()
				}
				return nil // broken or ended stream: resume elsewhere
			}
			e, skip, err := w.decodeEvent(ev)
			if err != nil {
				if len(resp.Events) > 0 && !w.deliver(ctx, sc, resp) {
					return ctx.Err()
				}
				return err
			}
			if skip {
				continue
			}
			resp.Events = append(resp.Events, e)
			resp.Revision = e.Revision
		}
		if len(resp.Events) > 0 && !w.deliver(ctx, sc, resp) {
			return ctx.Err()
		}
	}
}

// decodeEvent turns an SSE event into an Event; skip is set for events
// that carry nothing to deliver (a cutoff, a repeat of one delivered).
func (w *watcher) decodeEvent(ev sseEvent) (e Event, skip bool, err error) {
	var j api.Event
	if err := json.Unmarshal(ev.Data, &j); err != nil {
		return Event{}, false, fmt.Errorf("%w: %v", errBadEvent, err)
	}
	switch j.Type {
	case api.EventPut:
		e.Type = EventPut
	case api.EventDelete:
		e.Type = EventDelete
	case api.EventCutoff:
		// The server moved on without us; it says where to resume, and
		// ends the stream.
		if j.ResumeRev > w.rev {
			w.rev = j.ResumeRev
		}
		return Event{}, true, nil
	default:
		return Event{}, true, nil // a newer server's event kind: not ours
	}
	if e.KV, err = kvFrom(&j.KV); err != nil {
		return Event{}, false, fmt.Errorf("%w: %v", errBadEvent, err)
	}
	if e.PrevKV, err = kvPtr(j.PrevKV); err != nil {
		return Event{}, false, fmt.Errorf("%w: %v", errBadEvent, err)
	}
	e.Revision = e.KV.ModRevision
	if ev.HasID {
		if id, err := strconv.ParseInt(ev.ID, 10, 64); err == nil {
			e.Revision = id
		}
	}
	if e.Revision <= w.rev {
		return Event{}, true, nil // already delivered before a reconnect
	}
	return e, false, nil
}

// deliver hands resp to the consumer and moves the resume revision past
// it. The idle timer is paused meanwhile: a slow consumer is not a dead
// stream.
func (w *watcher) deliver(ctx context.Context, sc *streamConn, resp WatchResponse) bool {
	sc.idle.Stop()
	defer sc.idle.Reset(watchIdleTimeout)
	select {
	case w.out <- resp:
		w.rev = max(w.rev, resp.Revision)
		return true
	case <-ctx.Done():
		return false
	}
}
