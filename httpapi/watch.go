package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/rosterhq/roster/api"
	"github.com/rosterhq/roster/fsm"
)

// Watch streams are served by every member from its own applied state: a
// follower's stream may lag the leader by its apply lag, but it never skips
// or reorders, because it reads the same revision-ordered history.
//
// Each stream pulls from the shared fsm.History at its own pace; every
// stream wakes on the same broadcast. Encoded frames are cached per
// revision, so a thousand watchers of one prefix encode each event once.
const (
	// watchBatch bounds the events one stream takes per pass.
	watchBatch = 1024
	// DefaultWatchLagLimit is a stream's buffer: a watcher that falls
	// further behind the newest event than this (beyond the lag it started
	// with, so a resume from far back is not punished) is cut off with a
	// "cutoff" event telling it to resume from its last revision.
	DefaultWatchLagLimit = 50_000
	// DefaultWatchWriteTimeout cuts off a consumer that stopped reading.
	DefaultWatchWriteTimeout = 30 * time.Second
	// heartbeatEvery keeps idle streams alive through proxies (API.md: at
	// least every 10 s).
	heartbeatEvery = 5 * time.Second
	frameCacheSize = 8192
)

// frame is one encoded SSE event.
type frame struct {
	rev int64
	b   []byte
}

// frameCache holds recently encoded frames by revision, without locks; a
// miss (or a slot taken by another revision) just encodes again.
type frameCache struct {
	plain, withPrev [frameCacheSize]atomic.Pointer[frame]
}

func (fc *frameCache) get(ev fsm.Event, prev bool) []byte {
	rev := ev.KV.ModRevision
	slots := &fc.plain
	if prev {
		slots = &fc.withPrev
	}
	slot := &slots[rev%frameCacheSize]
	if f := slot.Load(); f != nil && f.rev == rev {
		return f.b
	}
	f := &frame{rev: rev, b: encodeFrame(ev, prev)}
	slot.Store(f)
	return f.b
}

func encodeFrame(ev fsm.Event, prev bool) []byte {
	j := api.Event{Type: api.EventPut, KV: kvOf(ev.KV, false)}
	if ev.Type == fsm.EventDelete {
		j.Type = api.EventDelete
		j.KV = api.KV{Key: ev.KV.Key, ModRevision: ev.KV.ModRevision}
	}
	if prev && ev.Prev != nil {
		p := kvOf(ev.Prev, false)
		j.PrevKV = &p
	}
	var buf bytes.Buffer
	buf.WriteString("id: ")
	buf.WriteString(strconv.FormatInt(ev.KV.ModRevision, 10))
	buf.WriteString("\ndata: ")
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(j) // plain structs: cannot fail; Encode ends with '\n'
	buf.WriteByte('\n')
	return buf.Bytes()
}

func matches(key string, prefix bool, ev fsm.Event) bool {
	if prefix {
		return strings.HasPrefix(ev.KV.Key, key)
	}
	return ev.KV.Key == key
}

// GET /v1/watch/{key}
func (s *Server) watch(c *gin.Context) {
	q := newQuery(c)
	prefix, withPrev := q.flag("prefix"), q.flag("prev_kv")
	rev, hasRev := q.count("rev")
	if !hasRev && q.err == nil {
		if id := c.GetHeader("Last-Event-ID"); id != "" {
			var err error
			rev, err = parseNonNegative("Last-Event-ID", id)
			q.fail(err)
			hasRev = true
		}
	}
	if q.err != nil {
		s.fail(c, q.err)
		return
	}
	key, err := kvKey(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	h := s.b.History()
	after := h.Last()
	if hasRev {
		if _, _, err := h.Since(rev, 1, nil); err != nil {
			s.fail(c, err) // 410 compacted, with the oldest revision
			return
		}
		after = rev
	}
	if !s.admit(c, &s.watches, "watches") {
		return
	}
	defer s.watches.leave()

	w := c.Writer
	rc := http.NewResponseController(w)
	hdr := w.Header()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("X-Accel-Buffering", "no")
	writeRevision(c, h.Last())
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return
	}
	s.metrics.watchers.Inc()
	defer s.metrics.watchers.Dec()

	ctx := c.Request.Context()
	hb := time.NewTicker(heartbeatEvery)
	defer hb.Stop()
	var buf []fsm.Event // grows to what the stream needs; idle streams stay small
	budget := max(h.Last()-after, 0) + s.cfg.WatchLagLimit
	write := func(b []byte) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(s.cfg.WatchWriteTimeout))
		_, err := w.Write(b)
		return err == nil
	}
	for {
		wake := h.Wait() // before reading: a change after the read wakes us
		evs, last, err := h.Since(after, watchBatch, buf[:0])
		if err != nil || last-after > budget {
			// Too far behind: the history moved past this stream. Tell the
			// client where to resume, then end the stream.
			s.metrics.watchersCut.Inc()
			write([]byte("event: cutoff\ndata: {\"type\":\"cutoff\",\"resume_rev\":" + strconv.FormatInt(after, 10) + "}\n\n"))
			_ = rc.Flush()
			return
		}
		budget = max(budget-int64(len(evs)), s.cfg.WatchLagLimit)
		sent := 0
		for _, ev := range evs {
			after = ev.KV.ModRevision
			if !matches(key, prefix, ev) {
				continue
			}
			if !write(s.frames.get(ev, withPrev)) {
				s.metrics.watchersCut.Inc() // stopped reading: cut off
				return
			}
			sent++
		}
		if sent > 0 {
			s.metrics.eventsSent.Add(float64(sent))
			if rc.Flush() != nil {
				return
			}
		}
		if len(evs) == watchBatch {
			continue // more are waiting
		}
		select {
		case <-wake:
		case <-hb.C:
			if !write([]byte(": heartbeat\n\n")) || rc.Flush() != nil {
				return
			}
		case <-ctx.Done():
			return
		case <-s.closing:
			return
		}
	}
}
