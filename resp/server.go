package resp

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rosterhq/roster/registry"
	"github.com/tidwall/redcon"
)

// Config configures a Server. Zero fields take the defaults.
type Config struct {
	// TLS, when set, serves RESP over TLS with it.
	TLS *tls.Config
	// Auth turns access control on (nil: off); see Authenticator.
	Auth Authenticator
	// AuthFromState puts Auth in force only while the backend's applied
	// state has access control on (fsm.State.AccessControlled), rather
	// than always: rosterd sets it for a member started without -auth, so
	// that one such member of an access-controlled cluster does not serve
	// it to anyone without a token.
	AuthFromState bool
	// RequestTimeout bounds one pipeline's execution, the wait for its
	// commits included (default DefaultRequestTimeout).
	RequestTimeout time.Duration
	// MaxConns caps the open connections (default DefaultMaxConns); one
	// more is answered -ERR max number of clients reached and closed.
	MaxConns int
	// MaxBulkBytes caps one bulk string (default: the backend's value
	// limit), MaxArrayLen the elements of one command (default
	// DefaultMaxArrayLen), MaxCommandBytes one whole command (default: what
	// one Txn may carry, plus 1 MiB of headers).
	MaxBulkBytes    int64
	MaxArrayLen     int64
	MaxCommandBytes int64
	// WatchLagLimit and WatchWriteTimeout cut off a subscriber that falls
	// too far behind or stops reading, as HTTP watches are cut off
	// (defaults DefaultWatchLagLimit and DefaultWatchWriteTimeout).
	WatchLagLimit     int64
	WatchWriteTimeout time.Duration
}

// Defaults.
const (
	DefaultRequestTimeout    = 15 * time.Second
	DefaultMaxConns          = 10_000
	DefaultMaxArrayLen       = 1 << 16
	DefaultWatchLagLimit     = 50_000
	DefaultWatchWriteTimeout = 30 * time.Second
)

// Server serves RESP2 for one member.
type Server struct {
	cfg     Config
	b       Backend
	log     *slog.Logger
	rs      *redcon.Server
	lim     limits
	started time.Time
	cursors cursorTable

	ctx    context.Context // ended by Close: ends every request and subscriber
	cancel context.CancelFunc

	conns  atomic.Int64 // open connections, subscribers included
	nextID atomic.Int64

	mu     sync.Mutex
	closed bool
	ln     *guardListener
	subs   map[*subscriber]struct{}
	wg     sync.WaitGroup // requests in flight and subscriber goroutines

	closeOnce sync.Once
}

// New builds a Server for b.
func New(cfg Config, b Backend, log *slog.Logger) (*Server, error) {
	if b == nil {
		return nil, errors.New("resp: backend is nil")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.MaxBulkBytes <= 0 {
		cfg.MaxBulkBytes = int64(b.MaxValueBytes())
	}
	if cfg.MaxArrayLen <= 0 {
		cfg.MaxArrayLen = DefaultMaxArrayLen
	}
	if cfg.MaxCommandBytes <= 0 {
		cfg.MaxCommandBytes = int64(registry.TxnBytesFactor)*int64(b.MaxValueBytes()) + 1<<20
	}
	if cfg.WatchLagLimit <= 0 {
		cfg.WatchLagLimit = DefaultWatchLagLimit
	}
	if cfg.WatchWriteTimeout <= 0 {
		cfg.WatchWriteTimeout = DefaultWatchWriteTimeout
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg: cfg, b: b, log: log, started: time.Now(), ctx: ctx, cancel: cancel,
		lim:  limits{bulk: cfg.MaxBulkBytes, array: cfg.MaxArrayLen, command: cfg.MaxCommandBytes},
		subs: make(map[*subscriber]struct{}),
	}
	s.rs = redcon.NewServerNetwork("tcp", "", s.handle, s.accept, s.connClosed)
	return s, nil
}

// enforced reports whether access control is in force now: always with
// Auth, unless AuthFromState, then as soon as (and for as long as) this
// member's applied state has it on. A state that cannot be read counts as
// on.
func (s *Server) enforced() bool {
	switch {
	case s.cfg.Auth == nil:
		return false
	case !s.cfg.AuthFromState:
		return true
	}
	st, err := s.b.Read(s.ctx, true)
	return err != nil || st.AccessControlled()
}

// Serve serves on ln until Close; it returns nil after Close.
func (s *Server) Serve(ln net.Listener) error {
	gl := &guardListener{Listener: ln, tls: s.cfg.TLS, lim: s.lim, auth: s.enforced}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return nil
	}
	s.ln = gl
	s.mu.Unlock()
	return s.rs.Serve(gl)
}

// Close stops accepting, closes every connection, ends the requests in
// flight (a write may still commit: its client sees the connection close)
// and waits for them. It is idempotent.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		ln := s.ln
		subs := make([]*subscriber, 0, len(s.subs))
		for sub := range s.subs {
			subs = append(subs, sub)
		}
		s.mu.Unlock()
		s.cancel()
		if ln != nil {
			_ = s.rs.Close() // closes the listener and the served connections
			_ = ln.Close()   // in case Serve had not handed it to redcon yet
		}
		for _, sub := range subs {
			sub.close()
		}
		s.wg.Wait()
	})
	return nil
}

// Addr is the address served on (nil before Serve).
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// port is the served TCP port, for INFO.
func (s *Server) port() string {
	if a, ok := s.Addr().(*net.TCPAddr); ok {
		return strconv.Itoa(a.Port)
	}
	return "0"
}

// enter registers a request in flight; false once the server is closing.
func (s *Server) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	return true
}

// accept admits a connection within MaxConns.
func (s *Server) accept(c redcon.Conn) bool {
	if s.conns.Add(1) > int64(s.cfg.MaxConns) {
		s.conns.Add(-1)
		c.WriteError("ERR max number of clients reached")
		return false
	}
	g, _ := c.NetConn().(*guardConn)
	c.SetContext(&session{srv: s, id: s.nextID.Add(1), guard: g})
	return true
}

// connClosed accounts for a connection redcon stopped serving; one handed
// over to pub/sub stays open and is accounted for when it closes.
func (s *Server) connClosed(c redcon.Conn, err error) {
	if sess, ok := c.Context().(*session); ok && sess.detached {
		return
	}
	s.conns.Add(-1)
	if err != nil && !errors.Is(err, errRejected) {
		s.log.Debug("redis connection ended", "remote", c.RemoteAddr(), "error", err)
	}
}

// handle serves a command and every command pipelined behind it.
func (s *Server) handle(conn redcon.Conn, cmd redcon.Command) {
	sess, _ := conn.Context().(*session)
	if sess == nil || !s.enter() {
		conn.Close()
		return
	}
	defer s.wg.Done()
	cmds := append([]redcon.Command{cmd}, conn.ReadPipeline()...)
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.RequestTimeout)
	rest, quit := sess.run(ctx, conn, cmds)
	cancel()
	switch {
	case quit:
		conn.Close()
	case rest != nil:
		s.startSubscriber(conn, sess, rest)
	}
}
