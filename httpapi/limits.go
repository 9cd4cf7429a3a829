package httpapi

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
)

// The limits that keep one member's memory and goroutines bounded whatever
// its clients do (README "Limits"): how long a request may take to arrive
// and its answer to leave, how many connections, watches and blocking reads
// may be open at once, and how large the request headers may be.
const (
	// DefaultReadTimeout bounds the arrival of a request's body, from the
	// moment its handler starts: a 16 MiB value at 5 Mbit/s fits.
	DefaultReadTimeout = 30 * time.Second
	// DefaultWriteTimeout bounds one write of an answer to a client that
	// does not read: the whole answer, or one chunk of a streamed listing.
	DefaultWriteTimeout = 30 * time.Second
	// DefaultMaxConns caps open HTTP connections.
	DefaultMaxConns = 10_000
	// DefaultMaxWatches and DefaultMaxBlockingReads cap the long-lived
	// requests: each is woken by every change, so they cost CPU as well as
	// memory.
	DefaultMaxWatches       = 5_000
	DefaultMaxBlockingReads = 5_000
	// DefaultMaxHeaderBytes bounds a request's line and headers: a key of
	// the largest size fully percent-encoded, twice (path and after=), fits
	// several times over.
	DefaultMaxHeaderBytes = 32 << 10
	// DefaultMaxRequestBytes bounds the request bodies a member holds at
	// once (read, or being proposed): 256 bodies of the default largest
	// value, and room for two of the largest any route takes with values
	// of the largest size.
	DefaultMaxRequestBytes = 256 << 20
	// rejectLinger bounds how long a connection over the cap is kept to
	// deliver its 429; rejecters caps how many are being delivered at once
	// (past that they are closed without an answer).
	rejectLinger = time.Second
	rejecters    = 64
)

// errRateLimited maps to 429 rate_limited: a cap on concurrent work was
// reached; nothing was done and the client may retry later.
var errRateLimited = errors.New("rate limited")

// rateLimited returns an error that maps to 429 rate_limited.
func rateLimited(what string, limit int) error {
	return fmt.Errorf("%w: too many %s open on this member (the limit is %d); retry later or ask another member",
		errRateLimited, what, limit)
}

// gate counts concurrent holders of a capped resource.
type gate struct {
	n   atomic.Int64
	max int64
}

// enter takes a place, or reports false when all are taken.
func (g *gate) enter() bool {
	if g.n.Add(1) > g.max {
		g.n.Add(-1)
		return false
	}
	return true
}

func (g *gate) leave() { g.n.Add(-1) }

// reserveBody reserves, against Config.MaxRequestBytes, room for the body
// of the request before any of it is read: its Content-Length, or the
// largest body any route takes when the length is not given (chunked).
// The room is held until the request is answered, since the body is held
// until its proposal is done. Over the budget the request is answered 429
// rate_limited at once, and release is nil.
func (s *Server) reserveBody(c *gin.Context) (release func(), ok bool) {
	body := c.Request.Body
	if body == nil || body == http.NoBody {
		return func() {}, true
	}
	n := s.maxBody()
	if cl := c.Request.ContentLength; cl >= 0 {
		n = min(cl, n) // more than any route takes is refused unread
	}
	if s.bodies.n.Add(n) > s.bodies.max {
		s.bodies.n.Add(-n)
		s.metrics.rejected.WithLabelValues("request_bytes").Inc()
		c.Header("Retry-After", "1")
		s.fail(c, fmt.Errorf("%w: request bodies of more than %d bytes in all are being handled on this member; retry later or ask another member",
			errRateLimited, s.bodies.max))
		return nil, false
	}
	return func() { s.bodies.n.Add(-n) }, true
}

// maxBody is the largest request body any route takes.
func (s *Server) maxBody() int64 {
	return max(s.seedBodyLimit(), s.formLimit(), maxJSONBody, int64(s.b.MaxValueBytes()))
}

// admit takes a place at g for the request, or answers 429 rate_limited
// and reports false.
func (s *Server) admit(c *gin.Context, g *gate, what string) bool {
	if g.enter() {
		return true
	}
	s.metrics.rejected.WithLabelValues(what).Inc()
	c.Header("Retry-After", "1")
	s.fail(c, rateLimited(strings.ReplaceAll(what, "_", " "), int(g.max)))
	return false
}

// setDeadlines bounds the request on its connection: its body must arrive
// within ReadTimeout, and its answer must progress by writePiece bytes
// every WriteTimeout (all of it within d, the request's own bound, plus
// WriteTimeout when it is written in one go at the end). Without them a
// client sending its body a byte a second, or never reading the answer,
// would hold its handler, its buffers and its connection forever.
//
// Once the body has been read to its end, net/http lifts the read deadline
// itself and watches the connection for the client going away; a deadline
// passing during that watch would cancel a request that is only waiting
// for its commit. So requests without a body, whose watch has already
// begun, get no read deadline. Watches set their own deadlines, extended
// per event.
func (s *Server) setDeadlines(c *gin.Context, d time.Duration) {
	rc := http.NewResponseController(c.Writer)
	now := time.Now()
	// Not every writer supports deadlines (HTTP/2 does, recorders in tests
	// do not); without them the request timeout still bounds the handler.
	if rc.SetWriteDeadline(now.Add(d+s.cfg.WriteTimeout)) == nil {
		c.Writer = &deadlineWriter{ResponseWriter: c.Writer, rc: rc, timeout: s.cfg.WriteTimeout}
	}
	if body := c.Request.Body; body != nil && body != http.NoBody {
		_ = rc.SetReadDeadline(now.Add(s.cfg.ReadTimeout))
	}
}

// writePiece is how much of an answer each write deadline covers: a large
// answer read slowly but steadily is never cut off, a stalled reader is.
const writePiece = 64 << 10

// deadlineWriter extends the connection's write deadline before each piece
// of an answer, so that WriteTimeout bounds a stall rather than a whole
// answer, whatever its size.
type deadlineWriter struct {
	gin.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
}

func (w *deadlineWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		k := min(len(p), writePiece)
		_ = w.rc.SetWriteDeadline(time.Now().Add(w.timeout))
		m, err := w.ResponseWriter.Write(p[:k])
		n += m
		if err != nil {
			return n, err
		}
		p = p[k:]
	}
	return n, nil
}

func (w *deadlineWriter) WriteString(s string) (int, error) { return w.Write([]byte(s)) }

// Unwrap lets http.ResponseController reach the connection.
func (w *deadlineWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// readHead reads from c until the end of a request head (an empty line),
// at most DefaultMaxHeaderBytes; false when the connection ended first.
func readHead(c net.Conn) bool {
	var b [4 << 10]byte
	var tail []byte // the last bytes read, to find "\r\n\r\n" across reads
	for total := 0; total < DefaultMaxHeaderBytes; {
		n, err := c.Read(b[:])
		total += n
		tail = append(tail, b[:n]...)
		if bytes.Contains(tail, []byte("\r\n\r\n")) {
			return true
		}
		if len(tail) > 3 {
			tail = append(tail[:0], tail[len(tail)-3:]...)
		}
		if err != nil {
			return false
		}
	}
	return true
}

// isTimeout reports a read that ran into its deadline.
func isTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// limitListener caps the connections open at once. One over the cap is
// answered 429 rate_limited at once and closed, rather than left waiting in
// the kernel's backlog, so a flood of idle connections can exhaust neither
// memory nor file descriptors, and the connections already open keep
// being served.
//
// Accepted connections are returned unwrapped (net/http must see a
// *tls.Conn as such when the listener below serves TLS); the server's
// ConnState hook gives their place back when they close, or when a watch
// takes one over (watches are capped on their own).
type limitListener struct {
	net.Listener
	*connCap
}

// connCap counts the connections of every listener a Server serves.
type connCap struct {
	s    *Server
	max  int64
	open atomic.Int64
	sem  chan struct{} // rejections being delivered
}

func newConnCap(s *Server) *connCap {
	return &connCap{s: s, max: int64(s.cfg.MaxConns), sem: make(chan struct{}, rejecters)}
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Add(1) > l.max {
			l.open.Add(-1)
			l.reject(c)
			continue
		}
		l.s.metrics.conns.Inc()
		return c, nil
	}
}

// connState is the http.Server's ConnState hook: it sees every connection
// the limitListener counted, and gives its place back exactly once.
func (l *connCap) connState(_ net.Conn, st http.ConnState) {
	if st == http.StateClosed || st == http.StateHijacked {
		l.open.Add(-1)
		l.s.metrics.conns.Dec()
	}
}

// rejectAnswer is the whole answer to a connection over the cap.
var rejectAnswer = func() []byte {
	body := `{"error":{"code":"rate_limited","message":"too many connections open on this member; retry later or ask another member"}}`
	return []byte("HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nRetry-After: 1\r\n" +
		"Connection: close\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
}()

// reject answers a connection over the cap and closes it, all within
// rejectLinger (over TLS, the first read makes the handshake). The request
// head is read before the answer is written: an HTTP client that gets an
// answer before it sent its request takes it for a stray and fails the
// request without reading it. The rest is drained for a moment after the
// answer: closing with unread data would send a reset, which can destroy
// the answer before the client reads it.
func (l *connCap) reject(c net.Conn) {
	l.s.metrics.rejected.WithLabelValues("connections").Inc()
	select {
	case l.sem <- struct{}{}:
	default:
		c.Close() // rejecting a flood: no answer for the excess
		return
	}
	l.s.wg.Add(1)
	go func() {
		defer l.s.wg.Done()
		defer func() { <-l.sem }()
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(rejectLinger))
		if !readHead(c) {
			return
		}
		if _, err := c.Write(rejectAnswer); err != nil {
			return
		}
		if cw, ok := c.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(c, 64<<10))
	}()
}
