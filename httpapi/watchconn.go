package httpapi

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
)

// An idle watch stream should cost its member a few kilobytes. Served the
// usual way it cost about 28 KB: net/http keeps, per connection, a
// goroutine whose stack holds the whole handler chain, a second one
// watching for the client going away, and 10 KB of read, write and
// chunking buffers, for as long as the stream lasts.
//
// So a watch on an HTTP/1 connection takes the connection over once the
// request has been checked: it writes the answer's head itself (no
// chunking: the stream ends when the connection closes, as an event stream
// may), lets net/http's goroutine and buffers go, and keeps one goroutine
// and a buffer only while events are being written. Once quiet for a
// moment (watchQuiet), that goroutine waits in a read of the connection,
// which tells it when the client goes away; the read's deadline is the
// next heartbeat, and the watchHub wakes it for a change by moving the
// deadline to the past. Until then it waits on the history itself, so
// that a busy stream is woken by the next event at once, without a poke
// and a read. Other connections (HTTP/2) are streamed through the
// ResponseWriter.

// watchSink is where a stream's bytes go.
type watchSink interface {
	// write adds b to the stream; flush sends what was added. Either
	// fails once the client stopped reading (its write deadline passed)
	// or went away.
	write(b []byte) error
	flush() error
	// idle waits, with nothing to send, until wake is closed (the history
	// changed), beatAt passes, the client goes away or the server closes.
	// It may return wakeChange spuriously.
	idle(wake <-chan struct{}, beatAt time.Time) wakeReason
	close()
}

// takeOver hijacks the connection of c, writes the answer's head (the
// headers set on c.Writer, status 200) and returns the stream's sink; nil
// when the connection cannot be taken over, with nothing written.
func (s *Server) takeOver(c *gin.Context) *connSink {
	if !canHijack(c.Writer) {
		return nil
	}
	conn, _, err := c.Writer.Hijack()
	if err != nil {
		return nil
	}
	// net/http's buffers (the second result) are left to the collector:
	// whatever the client sends from now on is read and dropped.
	var head bytes.Buffer
	head.WriteString("HTTP/1.1 200 OK\r\n")
	hdr := c.Writer.Header().Clone()
	hdr.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	hdr.Set("Connection", "close")
	_ = hdr.Write(&head)
	head.WriteString("\r\n")
	k := &connSink{s: s, conn: conn, timeout: s.cfg.WatchWriteTimeout, buf: head.Bytes()}
	if k.flush() != nil {
		conn.Close()
		return nil
	}
	s.hub.add(k)
	return k
}

// canHijack reports whether the connection under w can be taken over: gin's
// writer claims it always can, and panics when the one it wraps cannot
// (HTTP/2, a test recorder).
func canHijack(w http.ResponseWriter) bool {
	for {
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			_, ok := w.(http.Hijacker)
			return ok
		}
		w = u.Unwrap()
	}
}

// connSink writes a stream straight to its connection.
type connSink struct {
	s       *Server
	conn    net.Conn
	timeout time.Duration
	buf     []byte      // what write added and flush has not sent; nil when idle
	rb      [16]byte    // what the client sends lands here, and is dropped
	quiet   *time.Timer // ends the wait on the history before a parked read
	parked  atomic.Bool // in the read: the hub must poke it for a change
}

// watchQuiet is how long a stream that has been busy waits for the next
// event on the history before it parks in a read of its connection. A
// client that goes away meanwhile is noticed when it parks, or at the next
// write.
const watchQuiet = time.Second

// watchFlushAt is how much a stream gathers before it writes.
const watchFlushAt = 32 << 10

func (k *connSink) write(b []byte) error {
	if len(b) >= watchFlushAt {
		// A large frame goes out as it is, not copied: it may be the
		// cache's, shared by every stream sending it.
		if err := k.flush(); err != nil {
			return err
		}
		return k.send(b)
	}
	k.buf = append(k.buf, b...)
	if len(k.buf) >= watchFlushAt {
		return k.flush()
	}
	return nil
}

func (k *connSink) flush() error {
	if len(k.buf) == 0 {
		return nil
	}
	err := k.send(k.buf)
	k.buf = nil // an idle stream holds no buffer
	return err
}

// send writes b, each piece of it within the write timeout.
func (k *connSink) send(b []byte) error {
	return writePieces(k.conn, k.conn.SetWriteDeadline, k.timeout, b)
}

// writePieces writes b to w a piece at a time, moving the write deadline
// to timeout from now before each piece (as deadlineWriter does for other
// answers): the timeout cuts off a watcher that stopped reading, not one
// reading a large event slowly but steadily. Bounding the whole event
// instead cut such a watcher off at that event each time it resumed.
func writePieces(w io.Writer, setDeadline func(time.Time) error, timeout time.Duration, b []byte) error {
	for len(b) > 0 {
		n := min(len(b), writePiece)
		_ = setDeadline(time.Now().Add(timeout))
		if _, err := w.Write(b[:n]); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

func (k *connSink) idle(wake <-chan struct{}, beatAt time.Time) wakeReason {
	if d := min(watchQuiet, time.Until(beatAt)); d > 0 {
		if k.quiet == nil {
			k.quiet = time.NewTimer(d)
		} else {
			k.quiet.Reset(d)
		}
		select {
		case <-wake:
			k.quiet.Stop()
			return wakeChange
		case <-k.s.closing:
			k.quiet.Stop()
			return wakeEnd
		case <-k.quiet.C:
		}
		if !time.Now().Before(beatAt) {
			return wakeBeat
		}
	}
	// Parked, then the deadline, then the checks: a change after the
	// checks is followed by the hub's poke, which moves the deadline to
	// the past; a change before them is seen by them.
	k.parked.Store(true)
	defer k.parked.Store(false)
	_ = k.conn.SetReadDeadline(beatAt)
	select {
	case <-wake:
		return wakeChange
	case <-k.s.closing:
		return wakeEnd
	default:
	}
	for {
		_, err := k.conn.Read(k.rb[:])
		switch {
		case err == nil:
			continue // the client has nothing to say here: dropped
		case !isTimeout(err):
			return wakeEnd // gone
		}
		select {
		case <-k.s.closing:
			return wakeEnd
		default:
		}
		if !time.Now().Before(beatAt) {
			return wakeBeat
		}
		return wakeChange // poked
	}
}

// poke wakes the stream from its idle read.
func (k *connSink) poke() { _ = k.conn.SetReadDeadline(pastDeadline) }

// pastDeadline is a read deadline that has already passed.
var pastDeadline = time.Unix(1, 0)

func (k *connSink) close() {
	k.s.hub.remove(k)
	k.conn.Close()
}

// watchHub wakes the idle streams that own their connections whenever the
// history changes, from one goroutine that owns none of them: so a stream
// needs no goroutine of its own to wait on the history and on its
// connection at once. It starts with the first such stream and ends when
// the server shuts down, waking every stream so that it ends too.
type watchHub struct {
	s     *Server
	mu    sync.Mutex
	sinks map[*connSink]struct{}
	start sync.Once
}

func (hub *watchHub) add(k *connSink) {
	hub.start.Do(func() {
		hub.s.wg.Add(1)
		go hub.run()
	})
	hub.mu.Lock()
	if hub.sinks == nil {
		hub.sinks = make(map[*connSink]struct{})
	}
	hub.sinks[k] = struct{}{}
	hub.mu.Unlock()
}

func (hub *watchHub) remove(k *connSink) {
	hub.mu.Lock()
	delete(hub.sinks, k)
	hub.mu.Unlock()
}

func (hub *watchHub) run() {
	defer hub.s.wg.Done()
	h := hub.s.b.History()
	for {
		ch := h.Wait()
		closing := false
		select {
		case <-ch:
		case <-hub.s.closing:
			closing = true
		}
		hub.mu.Lock()
		for k := range hub.sinks {
			if closing || k.parked.Load() {
				k.poke()
			}
		}
		hub.mu.Unlock()
		if closing {
			return
		}
	}
}

// respSink streams through a ResponseWriter, with a write deadline per
// write where the connection supports one.
type respSink struct {
	s       *Server
	w       io.Writer
	rc      *http.ResponseController
	timeout time.Duration
	done    <-chan struct{} // the request's context
}

func (r *respSink) write(b []byte) error {
	return writePieces(r.w, r.rc.SetWriteDeadline, r.timeout, b)
}

func (r *respSink) flush() error { return r.rc.Flush() }

func (r *respSink) idle(wake <-chan struct{}, beatAt time.Time) wakeReason {
	t := time.NewTimer(time.Until(beatAt))
	defer t.Stop()
	select {
	case <-wake:
		return wakeChange
	case <-t.C:
		return wakeBeat
	case <-r.done:
		return wakeEnd
	case <-r.s.closing:
		return wakeEnd
	}
}

func (r *respSink) close() {}
