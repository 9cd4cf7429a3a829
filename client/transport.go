package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"
)

// retryClass says when a failed request may be sent again. The contract
// (API.md) promises that a 4xx or a 503 no_leader answer changed nothing,
// while a 504 timeout or a connection lost after the request went out
// leaves the outcome unknown.
//
// The rule: a write of the registry's state (kv, leases, roles, tokens,
// membership) is never sent again after an unknown outcome, even one
// that looks idempotent. Putting the same role twice gives the same role,
// but a retry that lands after another client's change undoes that change
// (a lost update) without anyone learning of it. Every call's class:
//
//	idempotent: Get, TimeToLive, Leases, Cluster, Role, Roles, Tokens,
//	  WhoAmI (reads); KeepAliveOnce and the KeepAlive loop (a renewal
//	  only moves the lease's expiry to TTL after it is applied, so a late
//	  or repeated one cannot undo anything another client did); Snapshot
//	  (each member snapshots its own log; no registry state changes).
//	mutating: Put, CompareAndSwap, Create, Delete, Incr, Grant, Revoke,
//	  PutRole, DeleteRole, CreateToken, DeleteToken, MemberAdd,
//	  MemberRemove.
type retryClass int

const (
	// idempotent requests (reads, keep-alives, cluster queries) may run any
	// number of times: every failure that may be one member's fault is
	// retried on another member — connection errors of any kind, 502, 503,
	// 504 and 429. (A 504 leaves only a write's outcome unknown; a follower
	// answers one at once for a read whose channel to the leader closed
	// as leadership moved, and another member can answer it.)
	idempotent retryClass = iota
	// mutating requests (every write, see above) are retried only when
	// they provably changed nothing: the connection was never made (a
	// dial error), or the answer was 503 no_leader or 429 rate_limited.
	// Anything else — a connection cut after the request went out, 504 —
	// is returned to the caller, who alone knows whether repeating the
	// write is harmless.
	mutating
)

// headerLeader is the answer header naming the leader's HTTP address.
const headerLeader = "X-Roster-Leader"

// call is one logical API request, which do may send to several members.
type call struct {
	method      string
	path        string // unescaped: "/v1/kv" + key
	query       url.Values
	body        []byte
	contentType string
	// json, when set, is encoded as the body, sent as application/json.
	json  any
	class retryClass
	// attemptTimeout, when set, bounds each attempt on its own, so that
	// one hung member (partitioned, stopped) costs an idempotent call this
	// long rather than its whole budget. Only for idempotent calls: a
	// write cut off this way would have an unknown outcome.
	attemptTimeout time.Duration
}

// result is a member's successful (2xx) answer, read in full.
type result struct {
	status int
	header http.Header
	body   []byte
}

// revision is the X-Roster-Revision header (0 when absent).
func (r *result) revision() int64 {
	v, _ := strconv.ParseInt(r.header.Get("X-Roster-Revision"), 10, 64)
	return v
}

// decode unmarshals the body into v.
func (r *result) decode(v any) error {
	if err := json.Unmarshal(r.body, v); err != nil {
		return fmt.Errorf("roster: decoding the answer: %w", err)
	}
	return nil
}

// errRequestTimeout is the cancel cause when Config.RequestTimeout passes.
var errRequestTimeout = errors.New("request timeout")

// callContext bounds a call by RequestTimeout and ends it when the client
// closes. The cause tells callErr which of the three ended it.
func (c *Client) callContext(parent context.Context) (context.Context, context.CancelFunc) {
	ctx1, cancel1 := context.WithTimeoutCause(parent, c.cfg.RequestTimeout, errRequestTimeout)
	ctx2, cancel2 := context.WithCancelCause(ctx1)
	stop := context.AfterFunc(c.lifeCtx(), func() { cancel2(ErrClosed) })
	return ctx2, func() {
		stop()
		cancel2(nil)
		cancel1()
	}
}

// callErr is the error of a call whose context ended; last is the last
// failure seen, kept for the message. untouched says every attempt provably
// changed nothing (refused connections, no_leader, rate_limited): then
// the call ran out of time with no member able to take it, which is
// ErrNoLeader (ErrRateLimited when the last member answered so), not the
// "outcome unknown" of ErrTimeout.
func (c *Client) callErr(ctx context.Context, cl *call, last error, untouched bool) error {
	cause := context.Cause(ctx)
	what := cl.method + " " + cl.path
	suffix := ""
	if last != nil {
		suffix = " (last error: " + last.Error() + ")"
	}
	switch {
	case errors.Is(cause, ErrClosed):
		return fmt.Errorf("roster: %s: %w", what, ErrClosed)
	case errors.Is(cause, errRequestTimeout) && untouched && errors.Is(last, ErrRateLimited):
		// Members that answer are over their limits: say so, not that
		// there is no leader.
		return fmt.Errorf("roster: %s: refused by the members until the deadline of %v, and nothing was changed: %w", what, c.cfg.RequestTimeout, last)
	case errors.Is(cause, errRequestTimeout) && untouched && last != nil:
		return fmt.Errorf("roster: %s: %w: no member could take the request within %v, and nothing was changed%s", what, ErrNoLeader, c.cfg.RequestTimeout, suffix)
	case errors.Is(cause, errRequestTimeout):
		return fmt.Errorf("roster: %s: %w after %v: %w%s", what, ErrTimeout, c.cfg.RequestTimeout, context.DeadlineExceeded, suffix)
	default:
		return fmt.Errorf("roster: %s: %w%s", what, ctx.Err(), suffix)
	}
}

// do sends cl to the members in turn until one gives an answer that is not
// retryable, the call's context ends, or the client closes. Between rounds
// over all members it backs off with jitter. A 2xx answer is returned as a
// result; anything else as the typed error.
func (c *Client) do(parent context.Context, cl *call) (*result, error) {
	if c.closed() {
		return nil, fmt.Errorf("roster: %s %s: %w", cl.method, cl.path, ErrClosed)
	}
	if cl.json != nil {
		b, err := json.Marshal(cl.json)
		if err != nil {
			return nil, fmt.Errorf("roster: %s %s: encoding the request: %w", cl.method, cl.path, err)
		}
		cl.body, cl.contentType = b, "application/json"
	}
	ctx, cancel := c.callContext(parent)
	defer cancel()
	var last error
	untouched := true
	// unverified holds the members whose certificate failed: the call does
	// not try them again, and fails at once when every member is one.
	var unverified map[*endpoint]error
	for round := 0; ; round++ {
		for _, ep := range c.order(cl.method != http.MethodGet) {
			if unverified[ep] != nil {
				continue
			}
			res, err, retry := c.attempt(ctx, ep, cl)
			if isTLSError(err) {
				if unverified == nil {
					unverified = map[*endpoint]error{}
				}
				unverified[ep] = err
				if len(unverified) == len(c.endpoints) {
					return nil, unverifiedError(cl.method+" "+cl.path, c.inOrder(unverified))
				}
			}
			if err != nil {
				// An attempt the call's own deadline cut off before it
				// connected says nothing new: keep the failure before it.
				var ns *notSentError
				if last == nil || ctx.Err() == nil || !errors.As(err, &ns) {
					last = err
				}
				untouched = untouched && changedNothing(err)
			}
			if ctx.Err() != nil {
				if err == nil {
					return res, nil
				}
				if !retry && statusOf(err) != nil {
					return nil, err // a real answer beats the deadline
				}
				return nil, c.callErr(ctx, cl, last, untouched)
			}
			if !retry {
				return res, err
			}
		}
		if !sleepCtx(ctx, backoff(round)) {
			return nil, c.callErr(ctx, cl, last, untouched)
		}
	}
}

// attempt sends cl to one member. retry reports whether cl's class allows
// sending it again elsewhere after this failure.
func (c *Client) attempt(ctx context.Context, ep *endpoint, cl *call) (res *result, err error, retry bool) {
	if cl.attemptTimeout > 0 && cl.class == idempotent {
		actx, cancel := context.WithTimeout(ctx, cl.attemptTimeout)
		defer cancel()
		res, err, retry = c.attempt1(actx, ep, cl)
		if err != nil && actx.Err() != nil && ctx.Err() == nil {
			// Silent: try it last for a while, so that the next call (the
			// next renewal, say) does not start with it again, even when
			// it is the member named as the leader.
			ep.markDown()
			var ns *notSentError
			notSent := errors.As(err, &ns)
			err = fmt.Errorf("roster: %s %s on %s: no answer within %v", cl.method, cl.path, ep.base.Host, cl.attemptTimeout)
			if notSent {
				err = &notSentError{err}
			}
			return nil, err, true
		}
		return res, err, retry
	}
	return c.attempt1(ctx, ep, cl)
}

func (c *Client) attempt1(ctx context.Context, ep *endpoint, cl *call) (res *result, err error, retry bool) {
	// A read gives each member a bounded time to start its answer: one
	// that is hung (stopped, or cut off with the client's connections to
	// it still open) would otherwise hold the call for its whole budget
	// and fail it, though another member could answer at once.
	var silent atomic.Bool
	var firstByte func()
	if cl.method == http.MethodGet && c.answerTimeout > 0 {
		actx, cancel := context.WithCancel(ctx)
		defer cancel()
		t := time.AfterFunc(c.answerTimeout, func() { silent.Store(true); cancel() })
		defer t.Stop()
		ctx, firstByte = actx, func() { t.Stop() }
	}
	req, err := c.newRequest(ctx, ep, cl)
	if err != nil {
		return nil, err, false
	}
	// A request that never got a connection was never sent, whatever
	// ended it (a refused dial, or the call's deadline during the dial).
	var connected atomic.Bool
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		GotConn:              func(httptrace.GotConnInfo) { connected.Store(true) },
		GotFirstResponseByte: firstByte,
	}))
	resp, err := c.hc.Do(req)
	if te := tlsFailure(ep, err); te != nil {
		// No use asking this member again: see tlsfail.go.
		return nil, te, true
	}
	if err != nil && silent.Load() {
		ep.markDown()
		return nil, fmt.Errorf("roster: %s %s on %s: no answer within %v", cl.method, cl.path, ep.base.Host, c.answerTimeout), true
	}
	if err != nil {
		if isDialError(err) || !connected.Load() {
			// Never connected: the member saw nothing, any class may retry.
			if isDialError(err) {
				ep.markDown()
			}
			return nil, &notSentError{err}, true
		}
		// The request may have reached the member: the outcome is unknown.
		return nil, fmt.Errorf("roster: %s %s on %s: %w", cl.method, cl.path, ep.base.Host, err), cl.class == idempotent
	}
	c.noteLeader(resp.Header.Get(headerLeader))
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("roster: %s %s on %s: reading the answer: %w", cl.method, cl.path, ep.base.Host, err), cl.class == idempotent
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		ep.markHealthy()
		return &result{status: resp.StatusCode, header: resp.Header, body: body}, nil, false
	}
	err = decodeError(resp.StatusCode, body)
	if te := plainToTLS(ep, resp.StatusCode, err); te != nil {
		return nil, te, true // as a failed handshake: see tlsfail.go
	}
	se := statusOf(err)
	if resp.StatusCode == http.StatusServiceUnavailable && se != nil && se.Code == "no_leader" {
		// A member cut off from the majority, or removed from the
		// cluster, answers no_leader only after waiting for a leader in
		// vain: try it last for a while, as one that refused to connect.
		ep.markDown()
	} else {
		ep.markHealthy()
	}
	return nil, err, retryableStatus(cl.class, resp.StatusCode, se)
}

// retryableStatus decides whether an error answer may be retried.
func retryableStatus(class retryClass, status int, se *StatusError) bool {
	switch {
	case status == http.StatusServiceUnavailable && se != nil && se.Code == "no_leader":
		return true // nothing was proposed
	case status == http.StatusTooManyRequests:
		return true // refused before doing anything
	case class == idempotent:
		return status == http.StatusBadGateway || status == http.StatusServiceUnavailable ||
			status == http.StatusGatewayTimeout
	}
	return false
}

func (c *Client) newRequest(ctx context.Context, ep *endpoint, cl *call) (*http.Request, error) {
	u := *ep.base
	u.Path = cl.path
	if len(cl.query) > 0 {
		u.RawQuery = cl.query.Encode()
	}
	var body io.Reader
	if cl.body != nil {
		body = bytes.NewReader(cl.body)
	}
	req, err := http.NewRequestWithContext(ctx, cl.method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidArgument, err)
	}
	if cl.contentType != "" {
		req.Header.Set("Content-Type", cl.contentType)
	}
	req.Header.Set("Accept", "application/json")
	c.authorize(req)
	return req, nil
}

// isDialError reports whether err happened while connecting, before any
// byte of the request was sent: refused, unreachable, DNS, dial timeout.
func isDialError(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns)
}

// notSentError is the failure of a request that never got a connection.
type notSentError struct{ err error }

func (e *notSentError) Error() string { return e.err.Error() }
func (e *notSentError) Unwrap() error { return e.err }

// changedNothing reports whether a failed attempt provably left the
// registry unchanged: the connection was never made, or the member said so
// (no_leader, rate_limited).
func changedNothing(err error) bool {
	var ns *notSentError
	if errors.As(err, &ns) || isDialError(err) || isTLSError(err) {
		return true
	}
	se := statusOf(err)
	return se != nil && (se.Code == "no_leader" || se.Code == "rate_limited")
}

// backoff is the pause after the n-th failed round over all members:
// exponential from 50 ms, capped at 1 s, with jitter so that many clients
// failing together do not return together.
func backoff(n int) time.Duration {
	d := 50 * time.Millisecond << min(n, 5)
	d = min(d, time.Second)
	return d/2 + rand.N(d/2+1)
}

// sleepCtx pauses for d; false when ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
