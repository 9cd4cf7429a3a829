package httpapi

import (
	"context"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/rosterhq/roster/fsm"
)

// Blocking reads (Consul-style): GET /v1/kv/{key}[?prefix=true]&index=N
// &wait=30s answers once an event for the key or prefix has a revision
// above N, or when wait (capped, with jitter so that many clients spread
// out) runs out, with the unchanged result.
const (
	maxBlockingWait     = 5 * time.Minute
	defaultBlockingWait = maxBlockingWait
)

// blockingParams reads index and wait; ok is false when index is absent
// (not a blocking read).
func blockingParams(q *query) (index int64, wait time.Duration, ok bool) {
	index, ok = q.count("index")
	if !ok {
		if _, has := q.c.GetQuery("wait"); has {
			q.fail(invalidf("wait needs index: the revision to wait past"))
		}
		return 0, 0, false
	}
	wait = defaultBlockingWait
	if s, has := q.c.GetQuery("wait"); has {
		d, err := parseWait(s)
		if err != nil {
			q.fail(err)
			return 0, 0, false
		}
		wait = d
	}
	wait = min(wait, maxBlockingWait)
	// Up to 1/16 more, so clients that started together do not return
	// together.
	if wait > 0 {
		wait += rand.N(wait/16 + 1)
	}
	return index, wait, true
}

// parseWait accepts a Go duration ("30s", "1m") or whole seconds ("30").
func parseWait(s string) (time.Duration, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && n >= 0 {
		return time.Duration(min(n, int64(maxBlockingWait/time.Second))) * time.Second, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, invalidf("wait=%q is not a duration such as 30s", clip(s))
	}
	return d, nil
}

// waitForChange blocks until the history holds an event for key (or the
// prefix) with a revision above index, the wait ends, or the request ends.
// When the history no longer reaches back to index it returns at once: a
// change may have happened, and answering early is always safe. With
// needLeader (a linearizable read) it also returns once the member has
// known no leader at two checks in a row: cut off from the majority, it
// would wait for changes made elsewhere, and the read that follows fails
// with no_leader at once instead of after the whole wait.
func (s *Server) waitForChange(ctx context.Context, key string, prefix bool, index int64, wait time.Duration, needLeader bool) {
	h := s.b.History()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	// A member removed meanwhile applies nothing more: checked as often as
	// a watch sends heartbeats.
	removed := time.NewTicker(s.cfg.heartbeat)
	defer removed.Stop()
	after := index
	var cutOff leaderLoss
	var buf []fsm.Event
	for {
		wake := h.Wait()
		evs, _, err := h.Since(after, watchBatch, buf[:0])
		if err != nil {
			return
		}
		for _, ev := range evs {
			if matches(key, prefix, ev) {
				return
			}
			after = ev.KV.ModRevision
		}
		if len(evs) == watchBatch {
			continue
		}
		select {
		case <-wake:
		case <-timer.C:
			return
		case <-removed.C:
			if s.b.Removed() {
				return
			}
			if needLeader && cutOff.lost(s.b) {
				return
			}
		case <-ctx.Done():
			return
		case <-s.closing:
			return
		}
	}
}

// requestTimeout is the deadline of a request: long-lived ones (watches,
// blocking reads) get none or their wait on top of the usual bound.
func (s *Server) requestTimeout(c *gin.Context) (time.Duration, bool) {
	if c.FullPath() == "/v1/watch/*key" || c.FullPath() == "/debug/*path" {
		return 0, false // streams; CPU profiles and traces run for as long as asked
	}
	if c.Request.Method == "GET" && c.FullPath() == "/v1/kv/*key" {
		if _, ok := c.GetQuery("index"); ok {
			return maxBlockingWait + maxBlockingWait/16 + s.cfg.RequestTimeout, true
		}
	}
	return s.cfg.RequestTimeout, true
}

// leaderLoss tells a long-lived answer (a watch stream, a linearizable
// blocking read) that its member has lost the cluster: it knew no leader
// at two checks in a row, a heartbeat apart. One check without a leader
// is an ordinary election, which must not end the answer.
type leaderLoss struct {
	missed bool // no leader at the last check
}

// lost checks once and reports whether the member knew no leader at this
// check and the one before.
func (l *leaderLoss) lost(b Backend) bool {
	if b.HasLeader() {
		l.missed = false
		return false
	}
	if l.missed {
		return true
	}
	l.missed = true
	return false
}
