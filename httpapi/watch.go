package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/rosterhq/roster/api"
	"github.com/rosterhq/roster/fsm"
	"github.com/rosterhq/roster/registry"
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
	// frameCacheBytes bounds the bytes the cached frames hold: with large
	// values, 8192 frames of each kind would be gigabytes. A frame that
	// does not fit is encoded again by each stream that sends it.
	frameCacheBytes = 16 << 20
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
	bytes           atomic.Int64 // held by the frames in the slots
	budget          int64        // 0: frameCacheBytes (smaller in tests)
}

func (fc *frameCache) get(ev fsm.Event, prev bool) []byte {
	rev := ev.KV.ModRevision
	slots := &fc.plain
	if prev {
		slots = &fc.withPrev
	}
	slot := &slots[rev%frameCacheSize]
	old := slot.Load()
	if old != nil && old.rev == rev {
		return old.b
	}
	f := &frame{rev: rev, b: encodeFrame(ev, prev)}
	delta := int64(len(f.b))
	if old != nil {
		delta -= int64(len(old.b))
	}
	budget := fc.budget
	if budget == 0 {
		budget = frameCacheBytes
	}
	if fc.bytes.Load()+delta <= budget && slot.CompareAndSwap(old, f) {
		fc.bytes.Add(delta)
	}
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
	prefix, withPrev, requireLeader := q.flag("prefix"), q.flag("prev_kv"), q.flag("require_leader")
	progress := q.flag("progress_notify")
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
	if s.b.Removed() {
		// Nothing will ever come here again: send the watch elsewhere.
		s.fail(c, errRemoved)
		return
	}
	if requireLeader && !s.b.HasLeader() {
		s.fail(c, errNoLeaderHere)
		return
	}
	h := s.b.History()
	// The header names the revision a watch from now starts after, read
	// once: a client resumes from it before the first event comes, so a
	// later read, past a change applied meanwhile, would make it skip
	// that change as one already seen.
	start := h.Last()
	after := start
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
	ws := &watchStream{s: s, h: h, key: key, prefix: prefix, withPrev: withPrev, requireLeader: requireLeader, progress: progress, after: after, lastID: after, recheck: s.streamRecheck(c, key, prefix)}
	hdr := c.Writer.Header()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("X-Accel-Buffering", "no")
	writeRevision(c, start)
	// Counted before the connection is taken over: until then net/http
	// counts this request and Shutdown cannot be waiting on wg yet; once
	// hijacked it no longer does, and a WaitGroup must not grow from zero
	// while it is waited on.
	s.wg.Add(1)
	if sink := s.takeOver(c); sink != nil {
		// The stream continues on its own goroutine, without net/http's
		// per-connection buffers and goroutines (watchconn.go).
		go func() {
			defer s.wg.Done()
			defer s.watches.leave()
			defer sink.close()
			ws.run(sink)
		}()
		return
	}
	s.wg.Done()
	// Not an HTTP/1 connection (HTTP/2, a test recorder): stream through
	// the ResponseWriter on this goroutine.
	defer s.watches.leave()
	c.Writer.WriteHeader(http.StatusOK)
	sink := &respSink{s: s, w: c.Writer, rc: http.NewResponseController(c.Writer), timeout: s.cfg.WatchWriteTimeout, done: c.Request.Context().Done()}
	if sink.flush() != nil {
		return
	}
	ws.run(sink)
}

// errRemoved refuses a watch or a blocking read on a member removed from
// the cluster: its state no longer changes, so the client should follow
// changes on another member.
var errRemoved = fmt.Errorf("%w: this member is not in the cluster's configuration", registry.ErrNoLeader)

// errNoLeaderHere refuses a watch with require_leader on a member that
// knows no leader: cut off from the majority, it would serve a stream
// that stays silent while the cluster changes elsewhere.
var errNoLeaderHere = fmt.Errorf("%w: this member knows no leader (the watch asked for one with require_leader)", registry.ErrNoLeader)

// watchStream is one watch: what it follows and how far it got.
type watchStream struct {
	s        *Server
	h        *fsm.History
	key      string
	prefix   bool
	withPrev bool
	// requireLeader ends the stream once the member has known no leader
	// at two heartbeats in a row (etcd's WithRequireLeader).
	requireLeader bool
	// progress adds the revision the stream has got to to its heartbeats,
	// as an id without data (etcd's progress notify): a watch of a quiet
	// key resumes from there, not from its last event, which the history
	// may have left behind.
	progress bool
	after    int64 // revision of the last event considered
	lastID   int64 // the last id written, or the revision the stream started after
	// recheck ends the stream once its token may no longer read what it
	// watches (nil: access control is off).
	recheck func(*fsm.State) error
}

// Why a stream woke up while idle.
type wakeReason int

const (
	wakeChange wakeReason = iota // the history changed (or may have)
	wakeBeat                     // time for a heartbeat
	wakeEnd                      // the client went away, or the server is closing
)

// stillAllowed checks the stream's token against the newest state, which
// holds at least the access control changes applied before the events
// about to be sent.
func (ws *watchStream) stillAllowed() bool {
	if ws.recheck == nil {
		return true
	}
	st, err := ws.s.b.Read(context.Background(), true)
	return err == nil && ws.recheck(st) == nil
}

// run streams events to sink until the client goes away, falls too far
// behind, stops reading, its token loses the right to read what it
// watches, or the server shuts down.
func (ws *watchStream) run(sink watchSink) {
	s, h := ws.s, ws.h
	s.metrics.watchers.Inc()
	defer s.metrics.watchers.Dec()
	var buf []fsm.Event
	budget := max(h.Last()-ws.after, 0) + s.cfg.WatchLagLimit
	beatAt := time.Now().Add(s.cfg.heartbeat) // a heartbeat after 5 s of silence
	var cutOff leaderLoss
	for {
		wake := h.Wait() // before reading: a change after the read wakes us
		evs, last, err := h.Since(ws.after, watchBatch, buf[:0])
		if err != nil || last-ws.after > budget {
			// Too far behind: the history moved past this stream. Tell the
			// client where to resume, then end the stream. The revision is
			// the event's id too: a client resuming from the last id it saw
			// (Last-Event-ID, as EventSource does) resumes there as well.
			s.metrics.watchersCut.Inc()
			resume := strconv.FormatInt(ws.after, 10)
			if sink.write([]byte("id: "+resume+"\nevent: cutoff\ndata: {\"type\":\"cutoff\",\"resume_rev\":"+resume+"}\n\n")) == nil {
				_ = sink.flush()
			}
			return
		}
		budget = max(budget-int64(len(evs)), s.cfg.WatchLagLimit)
		if !ws.stillAllowed() {
			return // reconnecting, the client learns why: 401 or 403
		}
		sent := 0
		for _, ev := range evs {
			ws.after = ev.KV.ModRevision
			if !matches(ws.key, ws.prefix, ev) {
				continue
			}
			if sink.write(s.frames.get(ev, ws.withPrev)) != nil {
				s.metrics.watchersCut.Inc() // stopped reading: cut off
				return
			}
			ws.lastID = ws.after
			sent++
		}
		if sent > 0 {
			s.metrics.eventsSent.Add(float64(sent))
			if sink.flush() != nil {
				s.metrics.watchersCut.Inc()
				return
			}
			beatAt = time.Now().Add(s.cfg.heartbeat)
		}
		if len(evs) == watchBatch {
			buf = evs
			continue // more are waiting
		}
		buf = nil // an idle stream holds no batch
		switch sink.idle(wake, beatAt) {
		case wakeBeat:
			if s.b.Removed() {
				// This member was removed and applies nothing more: end
				// the stream, and the client resumes it on another.
				return
			}
			if ws.requireLeader && cutOff.lost(s.b) {
				// Cut off from the majority (or the cluster lost it)
				// for a heartbeat interval: nothing more comes here
				// while the cluster may change elsewhere. End the
				// stream; the client resumes on a member that knows a
				// leader.
				return
			}
			if sink.write(ws.heartbeat()) != nil || sink.flush() != nil {
				return
			}
			beatAt = time.Now().Add(s.cfg.heartbeat)
		case wakeEnd:
			return
		}
	}
}

// heartbeat is the comment an idle stream sends. With progress it carries
// the revision the stream has got to, when that moved past the last id
// sent: every change up to it under the watched key was sent before it. An
// id with no data dispatches no event (the SSE spec) but moves the last
// event ID, so a client, EventSource's Last-Event-ID included, resumes
// after it.
func (ws *watchStream) heartbeat() []byte {
	if !ws.progress || ws.after <= ws.lastID {
		return []byte(": heartbeat\n\n")
	}
	ws.lastID = ws.after
	return []byte(": heartbeat\nid: " + strconv.FormatInt(ws.after, 10) + "\n\n")
}
