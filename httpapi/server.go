package httpapi

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
)

// Config configures a Server. Zero fields take the defaults.
type Config struct {
	// RequestTimeout bounds each request, including the wait for a commit
	// (default 15s: longer than the registry's apply timeout, so that the
	// registry reports its own, more precise, timeout first).
	RequestTimeout time.Duration
	// Gatherer is served on /metrics; nil answers 404 there.
	Gatherer prometheus.Gatherer
	// WatchLagLimit and WatchWriteTimeout bound how far a watch stream may
	// fall behind, and how long each 64 KiB written to it may block,
	// before the watcher is cut off (defaults DefaultWatchLagLimit and
	// DefaultWatchWriteTimeout).
	WatchLagLimit     int64
	WatchWriteTimeout time.Duration
	// Auth turns access control on: every route but the open ones needs a
	// token (auth.go). Without it access control is still on as soon as,
	// and for as long as, this member's applied state has it on
	// (fsm.State.AccessControlled): one member started without -auth must
	// not open an access-controlled cluster.
	Auth bool
	// PeerTLS is the client configuration for dialing other members'
	// https:// HTTP addresses (the console's cluster status asks each
	// member; nil: Go's defaults).
	PeerTLS *tls.Config
	// Version is the version this member reports in GET
	// /v1/cluster/status (default BuildVersion()).
	Version string

	// Limits (README "Limits"); zero fields take the defaults in limits.go.
	// ReadTimeout bounds the arrival of a request's body and WriteTimeout
	// the writing of an answer, or of one chunk of a streamed one.
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	// MaxConns caps open connections (Serve only: a Handler embedded in
	// another server is that server's to limit). MaxWatches and
	// MaxBlockingReads cap the long-lived requests.
	MaxConns         int
	MaxWatches       int
	MaxBlockingReads int
	// MaxHeaderBytes bounds a request's line and headers.
	MaxHeaderBytes int
	// MaxRequestBytes bounds the bytes of request bodies held at once; at
	// least the largest body a route takes (8 times the largest value).
	MaxRequestBytes int64

	// heartbeat is how long a watch stream stays silent before it sends a
	// heartbeat (zero: heartbeatEvery; shorter in tests).
	heartbeat time.Duration
	// Debug, when set, serves every path under /debug/ (rosterd's -pprof
	// puts net/http/pprof there); nil answers 404.
	Debug http.Handler
}

// DefaultRequestTimeout is Config.RequestTimeout's default.
const DefaultRequestTimeout = 15 * time.Second

// Server is the HTTP front end of one node.
type Server struct {
	cfg     Config
	b       Backend
	log     *slog.Logger
	engine  *gin.Engine
	http    *http.Server
	metrics *httpMetrics
	frames  frameCache
	lists   listCache
	console *console      // the web console's embedded files (console.go)
	closing chan struct{} // closed on Shutdown: ends watches and blocking reads
	// peerHTTP dials other members' HTTP addresses (peerhttp.go).
	peerHTTP *http.Client

	conns             *connCap
	hub               watchHub
	watches, blocking gate
	bodies            gate // bytes of request bodies, not requests
	// wg tracks the goroutines that outlive their request: watch streams
	// and rejections of connections over the cap.
	wg sync.WaitGroup

	shutdownOnce sync.Once
	shutdownErr  error
}

// orDefault sets *v to d when it is zero or negative (unset).
func orDefault[T ~int | ~int64 | ~uint64](v *T, d T) {
	if *v <= 0 {
		*v = d
	}
}

// New builds a Server for b. Its metrics are registered on reg (nil: not
// registered anywhere).
func New(cfg Config, b Backend, log *slog.Logger, reg prometheus.Registerer) (*Server, error) {
	if b == nil {
		return nil, invalidf("httpapi: backend is nil")
	}
	orDefault(&cfg.RequestTimeout, DefaultRequestTimeout)
	orDefault(&cfg.WatchLagLimit, DefaultWatchLagLimit)
	orDefault(&cfg.WatchWriteTimeout, DefaultWatchWriteTimeout)
	orDefault(&cfg.MaxConns, DefaultMaxConns)
	orDefault(&cfg.MaxWatches, DefaultMaxWatches)
	orDefault(&cfg.MaxBlockingReads, DefaultMaxBlockingReads)
	orDefault(&cfg.MaxHeaderBytes, DefaultMaxHeaderBytes)
	orDefault(&cfg.heartbeat, heartbeatEvery)
	orDefault(&cfg.ReadTimeout, DefaultReadTimeout)
	orDefault(&cfg.WriteTimeout, DefaultWriteTimeout)
	orDefault(&cfg.MaxRequestBytes, DefaultMaxRequestBytes)
	if cfg.Version == "" {
		cfg.Version = BuildVersion()
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := newHTTPMetrics(reg)
	if err != nil {
		return nil, err
	}
	ui, err := newConsole()
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, b: b, log: log, metrics: m, console: ui, closing: make(chan struct{})}
	s.watches.max, s.blocking.max = int64(cfg.MaxWatches), int64(cfg.MaxBlockingReads)
	s.bodies.max = cfg.MaxRequestBytes
	if need := s.maxBody(); s.bodies.max < need {
		return nil, invalidf("httpapi: MaxRequestBytes %d cannot hold one body of the largest size a route takes (%d bytes)", s.bodies.max, need)
	}
	s.peerHTTP = s.newPeerHTTP()

	// gin's mode is process-wide; release mode is the only one that never
	// prints route tables or warnings to stdout behind our logger's back.
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	// A key may end in a slash and "/a/" is not "/a": never redirect.
	e.RedirectTrailingSlash = false
	e.RedirectFixedPath = false
	e.RemoveExtraSlash = false
	// Route on the decoded path: the key in /v1/kv/{key} is percent-decoded.
	e.UseRawPath = false
	e.HandleMethodNotAllowed = true
	// No proxy is trusted: ClientIP is the peer address.
	if err := e.SetTrustedProxies(nil); err != nil {
		return nil, err
	}
	e.Use(m.observe, s.recoverPanic, s.leaderHeader, s.withTimeout, s.authorize)
	e.NoRoute(func(c *gin.Context) { s.fail(c, errRouteNotFound) })
	e.NoMethod(func(c *gin.Context) { s.fail(c, errMethodNotAllowed) })
	s.routes(e)
	s.engine = e

	s.http = &http.Server{
		Handler: e,
		// Bound the slow-header attack; bodies may be slower (large values
		// on bad links) and get Config.ReadTimeout, set per request
		// (limits.go) since watches and blocking reads must not have one.
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	s.conns = newConnCap(s)
	s.hub.s = s
	s.http.ConnState = s.conns.connState
	// Shutdown waits for requests in flight; long-lived streams end at once.
	s.http.RegisterOnShutdown(func() { close(s.closing) })
	return s, nil
}

// routes registers every route. Each handler sits in the file of its
// family: leases.go, kv.go, cluster.go, compat.go.
//
// Every member serves every route: the registry forwards writes from a
// follower to the leader and serves linearizable reads from the member's
// own replica after a read index, so no route forwards HTTP. Health,
// metrics, the cluster view and snapshots are this member's own.
func (s *Server) routes(e *gin.Engine) {
	v1 := e.Group("/v1")
	v1.POST("/leases", s.grant)
	v1.GET("/leases", s.listLeases)
	v1.POST("/leases/keepalive", s.keepAliveMany)
	v1.GET("/leases/:id", s.getLease)
	v1.DELETE("/leases/:id", s.revoke)
	v1.POST("/leases/:id/keepalive", s.keepAliveOne)

	v1.GET("/kv/*key", s.getKV)
	v1.PUT("/kv/*key", s.putKV)
	v1.DELETE("/kv/*key", s.deleteKV)
	v1.POST("/kv/*key", s.postKV) // only {key}/incr

	v1.GET("/watch/*key", s.watch) // a watch follows this member's state

	v1.GET("/cluster", s.cluster)
	v1.POST("/cluster/snapshot", s.snapshot)
	v1.POST("/cluster/members", s.addMember)
	v1.PUT("/cluster/members/:id", s.updateMember)
	v1.DELETE("/cluster/members/:id", s.removeMember)

	e.GET("/healthz", s.healthz)
	e.HEAD("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.HEAD("/readyz", s.readyz)
	e.GET("/metrics", s.metricsHandler())
	if s.cfg.Debug != nil {
		e.Any("/debug/*path", gin.WrapH(s.cfg.Debug))
	}

	e.POST("/lease/grant", s.compatGrant)
	e.POST("/lease/keepalive/:id", s.compatKeepAlive)
	e.POST("/lease/revoke/:id", s.compatRevoke)
	e.POST("/lease/timetolive/:id", s.compatTimeToLive)
	e.POST("/lease/kv/*key", s.compatLeaseKV)
	e.PUT("/key/*key", s.compatPutKey)
	e.GET("/key/*key", s.compatGetKey)
	e.DELETE("/key/*key", s.compatDeleteKey)
	e.POST("/join", s.compatJoin)
	s.seedRoutes(e) // POST /key, /put, /get, /delete, /inc (compat_seed.go)

	s.consoleRoutes(e) // the web console and its cluster status route

	au := v1.Group("/auth")
	au.PUT("/roles/:name", s.putRole)
	au.GET("/roles", s.listRoles)
	au.GET("/roles/:name", s.getRole)
	au.DELETE("/roles/:name", s.deleteRole)
	au.POST("/tokens", s.createToken)
	au.GET("/tokens", s.listTokens)
	au.DELETE("/tokens/:id", s.deleteToken)
	au.GET("/whoami", s.whoami) // this member's own replica: no round trip
}

// headerLeader names the leader's advertised HTTP address (host:port, or
// https://host:port when the members serve TLS) on every answer, when this
// member knows it, so that clients can send writes straight to the leader.
const headerLeader = "X-Roster-Leader"

// leaderHeader sets headerLeader.
func (s *Server) leaderHeader(c *gin.Context) {
	if addr := s.b.LeaderAddr(); addr != "" {
		c.Header(headerLeader, addr)
	}
	c.Next()
}

// Handler returns the http.Handler serving the API (for tests and for
// embedding in another server).
func (s *Server) Handler() http.Handler { return s.engine }

// Serve serves HTTP on ln until Shutdown; it returns nil after Shutdown.
// At most Config.MaxConns connections are open at once.
func (s *Server) Serve(ln net.Listener) error {
	err := s.http.Serve(&limitListener{Listener: ln, connCap: s.conns})
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting connections and waits for requests in flight
// until ctx is done, then closes what is left. Calling it again returns the
// first call's result.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutdownOnce.Do(func() {
		s.shutdownErr = s.http.Shutdown(ctx)
		if s.shutdownErr != nil {
			// The deadline passed with requests in flight: cut them off
			// rather than leave the caller with a half-stopped server.
			_ = s.http.Close()
		}
		// Watch streams left net/http when they took over their
		// connections; closing ended them, wait until they are gone.
		done := make(chan struct{})
		go func() { s.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			s.shutdownErr = errors.Join(s.shutdownErr, ctx.Err())
		}
	})
	return s.shutdownErr
}

// recoverPanic turns a panicking handler into a 500 internal answer: one
// bad request must never take the node down.
func (s *Server) recoverPanic(c *gin.Context) {
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		s.log.Error("panic while serving a request",
			"method", c.Request.Method, "path", c.Request.URL.Path,
			"panic", r, "stack", string(debug.Stack()))
		if c.Writer.Written() {
			// Too late for an error envelope; the client sees a cut answer.
			c.Abort()
			return
		}
		s.fail(c, errPanic)
	}()
	c.Next()
}

// withTimeout bounds each request with Config.RequestTimeout: the Backend
// sees the deadline and answers timeout rather than hang. The connection
// gets read and write deadlines to match (limits.go).
func (s *Server) withTimeout(c *gin.Context) {
	d, bounded := s.requestTimeout(c)
	if !bounded {
		c.Next()
		return
	}
	s.setDeadlines(c, d)
	release, ok := s.reserveBody(c)
	if !ok {
		return
	}
	defer release()
	ctx, cancel := context.WithTimeout(c.Request.Context(), d)
	defer cancel()
	c.Request = c.Request.WithContext(ctx)
	c.Next()
}
