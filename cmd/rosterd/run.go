package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rosterhq/roster/fsm"
	"github.com/rosterhq/roster/httpapi"
	"github.com/rosterhq/roster/internal/gctune"
	"github.com/rosterhq/roster/internal/logging"
	"github.com/rosterhq/roster/registry"
	bolterrors "go.etcd.io/bbolt/errors"
)

// httpShutdownTimeout bounds the wait for HTTP requests in flight; keep-alive
// loops and watches would otherwise hold a restart up indefinitely.
const httpShutdownTimeout = 10 * time.Second

// Exit statuses.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// errNodeStopped: the node stopped on its own, on a fatal state-machine
// error; the process must not keep serving from a node that is gone.
var errNodeStopped = errors.New("node stopped")

// usageError marks a configuration problem found only once the node tried
// to start (raft's own checks): the user's to fix, like a bad flag.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// loggedError is an error run has already written to the log, so rosterd
// does not print it a second time (in JSON mode a stray plain line would
// also break the log stream).
type loggedError struct{ error }

func (e loggedError) Unwrap() error { return e.error }

// rosterd is the whole command behind main: it parses the configuration,
// runs the server until ctx ends or a signal arrives on sigs, and returns
// the exit status. SIGHUP reloads the TLS certificates. A first signal starts a graceful shutdown; a second one
// returns at once (main then exits, abandoning the shutdown).
func rosterd(ctx context.Context, args []string, env environment, stderr io.Writer, sigs <-chan os.Signal) int {
	cfg, err := parseConfig(args, env)
	if errors.Is(err, flag.ErrHelp) {
		printUsage(stderr)
		return exitOK
	}
	if err != nil {
		printError(stderr, err)
		fmt.Fprintln(stderr, "rosterd: run 'rosterd -h' for usage")
		return exitUsage
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	done := make(chan error, 1)
	reload := make(chan struct{}, 1)
	go func() { done <- run(ctx, cfg, stderr, reload) }()
	for {
		select {
		case err := <-done:
			return exitStatus(stderr, err)
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				select {
				case reload <- struct{}{}: // reload the TLS files
				default: // one is pending already
				}
				continue
			}
			if ctx.Err() == nil {
				cancel(fmt.Errorf("received %v", sig))
				continue
			}
			fmt.Fprintf(stderr, "rosterd: second signal (%v) during shutdown: exiting now\n", sig)
			return exitError
		}
	}
}

func exitStatus(stderr io.Writer, err error) int {
	if err == nil {
		return exitOK
	}
	if !errors.As(err, new(loggedError)) {
		printError(stderr, err)
	}
	if errors.As(err, new(usageError)) {
		return exitUsage
	}
	return exitError
}

// printError writes each line of a (possibly joined) error with the
// command's name in front, as Unix tools do.
func printError(w io.Writer, err error) {
	for line := range strings.SplitSeq(err.Error(), "\n") {
		fmt.Fprintf(w, "rosterd: %s\n", line)
	}
}

// run serves until ctx is done or the node fails, then shuts down: HTTP
// first (so no request reaches a closing node), then the node (leadership
// transfer, raft, bbolt). Logs go to stderr.
func run(ctx context.Context, cfg Config, stderr io.Writer, reload <-chan struct{}) (err error) {
	log, err := logging.New(stderr, cfg.LogFormat, cfg.LogLevel)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			log.Error("rosterd stopped", "error", err)
			err = loggedError{err}
			return
		}
		log.Info("rosterd stopped")
	}()

	if cfg.GCHeadroom > 0 {
		gc := gctune.Start(gctune.Config{Floor: cfg.GCHeadroom, Logger: log})
		defer gc.Close()
	}

	rc := cfg.Registry
	rc.Failpoint = cfg.Failpoints.hook(stderr, killSelf)
	if rc.Failpoint != nil {
		log.Warn("crash points armed: this process kills itself on purpose", "points", cfg.Failpoints)
	}
	tlsc, err := loadTLS(cfg.Security, log)
	if err != nil {
		return usageError{err}
	}
	if cfg.Security.PeerCertFile != "" {
		// Mutual TLS on the raft port: raft and the forwarding channel.
		rc.PeerTLS = tlsc.member.PeerConfig()
	}
	if err := os.MkdirAll(rc.DataDir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	reg := prometheus.NewRegistry()
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
	}
	log.Debug("configuration", "id", rc.ID, "http", cfg.HTTPAddr, "advertise_http", rc.HTTPAdvertise,
		"raft", rc.RaftAddr, "advertise_raft", rc.RaftAdvertise, "data", rc.DataDir, "join", rc.Join,
		"bootstrap", rc.Bootstrap, "node_number", rc.NodeNumber, "tick", rc.Tick,
		"watch_history", rc.WatchHistory, "max_value_size", rc.MaxValue)
	warnUndialable(log, cfg)

	node, err := registry.Open(rc, log, reg)
	if err != nil {
		switch {
		case errors.Is(err, fsm.ErrInvalidArgument):
			return usageError{fmt.Errorf("open node: %w", err)}
		case errors.Is(err, bolterrors.ErrTimeout):
			// bbolt waited for its file lock in vain: say why, not "timeout".
			return fmt.Errorf("open node: the data directory %s is in use by another process (another rosterd?): %w", rc.DataDir, err)
		}
		return fmt.Errorf("open node: %w", err)
	}
	hc := cfg.HTTP
	hc.Gatherer, hc.PeerTLS, hc.Auth = reg, tlsc.member.ClientConfig(), cfg.Security.Auth
	if cfg.PProf {
		hc.Debug = profiles()
		log.Warn("serving Go profiles under /debug/pprof/ (-pprof): for diagnosis only")
	}
	srv, err := httpapi.New(hc, node, log, reg)
	if err != nil {
		return errors.Join(fmt.Errorf("http api: %w", err), closeNode(log, node))
	}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return errors.Join(fmt.Errorf("http: %w", err), closeNode(log, node))
	}
	ln = tlsc.listener(ln)
	stopRedis, err := startRedis(cfg.RedisAddr, node, tlsc, cfg.Security.Auth, log)
	if err != nil {
		ln.Close()
		return errors.Join(err, closeNode(log, node))
	}
	log.Info("rosterd serving", "id", rc.ID, "http", ln.Addr().String(), "advertise_http", rc.HTTPAdvertise,
		"raft", node.RaftAddr(), "data", rc.DataDir, "tls", tlsc.http != nil, "client_certs", cfg.Security.ClientCAFile != "", "peer_tls", cfg.Security.PeerCertFile != "",
		"auth", cfg.Security.Auth)
	stopReload := tlsc.reloadOn(reload)
	defer stopReload()

	served := make(chan struct{})
	var serveErr error
	go func() {
		defer close(served)
		serveErr = srv.Serve(ln)
	}()
	// Ask to be added only once this member can answer: the leader may
	// call back (forwarded requests, health checks) as soon as it is in.
	node.StartJoin(httpapi.Joiner{Client: &http.Client{Timeout: 30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: tlsc.member.ClientConfig()}}, Token: cfg.Security.JoinToken})

	var cause error
	select {
	case <-ctx.Done():
		log.Info("shutting down", "reason", context.Cause(ctx))
	case <-node.Done():
		cause = node.Err()
		if cause == nil {
			cause = errors.New("closed unexpectedly")
		}
		cause = fmt.Errorf("%w: %w", errNodeStopped, cause)
		log.Error("shutting down: the node stopped", "error", cause)
	case <-served:
		// Serve returns only after Shutdown, which nobody called yet.
		cause = fmt.Errorf("http serve: %w", serveErr)
		if serveErr == nil {
			cause = errors.New("http server stopped unexpectedly")
		}
		log.Error("shutting down: the HTTP server stopped", "error", cause)
	}

	sctx, cancel := context.WithTimeout(context.Background(), httpShutdownTimeout)
	defer cancel()
	var herr error
	if err := srv.Shutdown(sctx); err != nil {
		herr = fmt.Errorf("http shutdown: %w", err)
	}
	<-served
	log.Info("http server stopped")
	stopRedis()
	return errors.Join(cause, herr, closeNode(log, node))
}

func closeNode(log *slog.Logger, node *registry.Node) error {
	if err := node.Close(); err != nil {
		return fmt.Errorf("close node: %w", err)
	}
	log.Info("node closed")
	return nil
}

// warnUndialable points out an HTTP address that other members would be
// told to dial but cannot: they forward writes to the leader at it.
func warnUndialable(log *slog.Logger, cfg Config) {
	if hostPort(cfg.Registry.HTTPAdvertise) != cfg.HTTPAddr {
		return // given with -advertise-http, and checked there
	}
	host, port, err := net.SplitHostPort(cfg.HTTPAddr)
	if err != nil {
		return
	}
	ip, ipErr := netip.ParseAddr(host)
	if host == "" || port == "0" || ipErr == nil && ip.IsUnspecified() {
		log.Warn("other members cannot dial the HTTP address; set -advertise-http for a cluster",
			"http", cfg.HTTPAddr)
	}
}

// profiles serves net/http/pprof, and turns on the sampling of mutex and
// block contention those profiles read (off by default: it costs a little
// on every contended lock).
func profiles() http.Handler {
	runtime.SetMutexProfileFraction(20)
	runtime.SetBlockProfileRate(int((100 * time.Microsecond).Nanoseconds()))
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
