package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/rosterhq/roster/fsm"
	"github.com/rosterhq/roster/httpapi"
	"github.com/rosterhq/roster/internal/gctune"
	"github.com/rosterhq/roster/internal/logging"
	"github.com/rosterhq/roster/registry"
)

// Config is everything rosterd starts with.
type Config struct {
	// Registry configures the node; its HTTPAdvertise is already resolved
	// (-advertise-http, else the HTTP listen address).
	Registry registry.Config
	// HTTP configures the HTTP API's limits (its Gatherer is set by run).
	HTTP httpapi.Config
	// HTTPAddr is the HTTP listen address.
	HTTPAddr  string
	LogLevel  slog.Level
	LogFormat string
	// Security is TLS and access control (security.go).
	Security Security
	// Failpoints are the crash points chosen with ROSTER_FAILPOINT.
	Failpoints failpoints
	// RedisAddr is the RESP2 listen address; "" serves no Redis port.
	RedisAddr string
	// PProf serves net/http/pprof under /debug/pprof/ on the HTTP address.
	PProf bool
	// GCHeadroom is the garbage collector's headroom floor (internal/gctune);
	// 0 leaves Go's own pacing (GOGC) alone, as does GOGC in the
	// environment.
	GCHeadroom int64
}

// environment is what parseConfig reads besides its arguments, passed in so
// tests control it.
type environment struct {
	getenv   func(string) string
	hostname func() (string, error)
}

// Defaults shown by -h. Where package registry exports a default it is
// used, so the two cannot drift; the raft timings mirror the values that
// registry.Config fills in for zero fields (hashicorp/raft's LAN defaults).
const (
	defaultHTTP         = "127.0.0.1:7370"
	defaultRaft         = "127.0.0.1:7371"
	defaultData         = "./roster-data"
	defaultWatchHistory = 100000
	// maxWatchHistory bounds -watch-history: 320 MB of ring at start.
	maxWatchHistory           = 10_000_000
	defaultHeartbeatTimeout   = time.Second
	defaultElectionTimeout    = time.Second
	defaultLeaderLeaseTimeout = 500 * time.Millisecond
	defaultCommitTimeout      = 50 * time.Millisecond
	defaultTrailingLogs       = 10240
	// maxValueLimit bounds -max-value-size: a value travels whole in one
	// raft entry, one HTTP body, one forwarded request and (with its
	// previous value) one watch event, each held in memory at once; past a
	// few MiB a value belongs in a blob store, with its address registered.
	maxValueLimit = 16 << 20
	// minHeaderBytes is the smallest -max-header-size: a key of the
	// largest size, fully percent-encoded, must fit in the request line.
	minHeaderBytes = 8 << 10
	// maxByteSize is the largest size any size flag parses.
	maxByteSize = 1 << 40
)

// envName is the variable a flag falls back to: -advertise-http reads
// ROSTER_ADVERTISE_HTTP.
func envName(flagName string) string {
	return "ROSTER_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// flags holds the flag set and the variables it fills.
type flags struct {
	fs *flag.FlagSet

	id, http, haddr, raft, raddr, advHTTP, advRaft string
	data, join, logLevel, logFormat                string
	bootstrap, pprof                               bool
	bind                                           int64
	watchHistory, snapRetain, ckptEntries          int
	ckptJournal                                    byteSize
	maxValue, watchHistoryBytes                    byteSize
	tick, heartbeat, election, leaderLease, commit time.Duration
	snapInterval, ckptInterval, kaLinger           time.Duration
	snapThreshold, trailingLogs                    uint64
	sec                                            securityFlags
	redis                                          string

	readTimeout, writeTimeout              time.Duration
	maxConns, maxWatches, maxBlockingReads int
	maxHeader, maxRequest                  byteSize
	gcHeadroom                             byteSize
}

func newFlags() *flags {
	f := &flags{fs: flag.NewFlagSet("rosterd", flag.ContinueOnError), maxValue: registry.DefaultMaxValue,
		watchHistoryBytes: fsm.DefaultWatchHistoryBytes, maxHeader: httpapi.DefaultMaxHeaderBytes,
		maxRequest: httpapi.DefaultMaxRequestBytes, gcHeadroom: gctune.DefaultFloor,
		ckptJournal: registry.DefaultCheckpointJournal}
	fs := f.fs
	// parseConfig reports errors itself, once, without the usage dump.
	fs.SetOutput(io.Discard)

	fs.StringVar(&f.id, "id", "", "member ID (default: this machine's host name)")
	fs.StringVar(&f.http, "http", defaultHTTP, "HTTP listen `address`")
	fs.StringVar(&f.redis, "redis", "", "Redis protocol (RESP2) listen `address` (default: no Redis port)")
	fs.StringVar(&f.haddr, "haddr", "", "same as -http (raftd/hraftd spelling)")
	fs.StringVar(&f.raft, "raft", defaultRaft, "raft listen `address`")
	fs.StringVar(&f.raddr, "raddr", "", "same as -raft (raftd/hraftd spelling)")
	fs.StringVar(&f.advHTTP, "advertise-http", "", "HTTP `address` other members and clients dial (default: -http)")
	fs.StringVar(&f.advRaft, "advertise-raft", "", "raft `address` other members dial (default: -raft)")
	fs.StringVar(&f.data, "data", defaultData, "data `directory`, created when absent; may also be given as the only argument")
	fs.StringVar(&f.join, "join", "", "comma-separated HTTP `addresses` of existing members (host:port, http://host:port or https://host:port; bare addresses are https with -cert-file)")
	fs.BoolVar(&f.bootstrap, "bootstrap", true, "on a first start without -join, create a new cluster; false: wait to be added")
	fs.BoolVar(&f.pprof, "pprof", false, "serve Go profiles (net/http/pprof) under /debug/pprof/ on the HTTP address, and sample mutex and block contention; for diagnosis only")
	fs.Int64Var(&f.bind, "bind", -1, "snowflake node `number` 0..1023 for lease IDs; -1 picks a free one (raftd/hraftd spelling)")
	fs.DurationVar(&f.tick, "tick", registry.DefaultTick, "lease tick `interval`")
	fs.IntVar(&f.watchHistory, "watch-history", defaultWatchHistory, "`events` kept in memory for watch resumes")
	fs.Var(&f.watchHistoryBytes, "watch-history-bytes", "`size` of the keys and values (current and previous) the watch history may hold")
	fs.Var(&f.maxValue, "max-value-size", "largest value accepted, at most 16MiB: a `size` in bytes, or with a KiB/MiB suffix")
	fs.StringVar(&f.logLevel, "log-level", "info", "log `level`: trace, debug, info, warn or error")
	fs.StringVar(&f.logFormat, "log-format", "text", "log `format`: text or json")
	fs.DurationVar(&f.heartbeat, "raft-heartbeat-timeout", defaultHeartbeatTimeout, "raft heartbeat timeout")
	fs.DurationVar(&f.election, "raft-election-timeout", defaultElectionTimeout, "raft election timeout")
	fs.DurationVar(&f.leaderLease, "raft-leader-lease-timeout", defaultLeaderLeaseTimeout, "raft leader lease timeout")
	fs.DurationVar(&f.commit, "raft-commit-timeout", defaultCommitTimeout, "raft commit timeout")
	fs.Uint64Var(&f.snapThreshold, "snapshot-threshold", registry.DefaultSnapshotThreshold, "new log `entries` that trigger a snapshot")
	fs.DurationVar(&f.snapInterval, "snapshot-interval", registry.DefaultSnapshotInterval, "how often to check whether a snapshot is due")
	fs.IntVar(&f.snapRetain, "snapshot-retain", registry.DefaultSnapshotRetain, "snapshot `files` kept")
	fs.Uint64Var(&f.trailingLogs, "trailing-logs", defaultTrailingLogs, "log `entries` kept after a snapshot for slow followers")
	fs.DurationVar(&f.ckptInterval, "checkpoint-interval", registry.DefaultCheckpointInterval, "how long after a change the state file's background checkpoint is committed")
	fs.IntVar(&f.ckptEntries, "checkpoint-entries", registry.DefaultCheckpointEntries, "applied `entries` that commit the checkpoint before the interval ends")
	fs.Var(&f.ckptJournal, "checkpoint-journal", "`bytes` (a size) of changes checkpoints append to the state file's journal before merging them in place (0: no journal, every checkpoint writes in place)")
	fs.DurationVar(&f.kaLinger, "keepalive-linger", registry.DefaultKeepAliveLinger, "how long, at most (100ms), a group of keep-alives waits under load to grow as large as the group before it; 0: never waits")
	fs.Var(&f.gcHeadroom, "gc-headroom", "the heap may grow this `size` (or 40% of its live data, if more) above its live data before Go collects it, never more than Go's default (GOGC=100) would; 0, or GOGC in the environment, leaves Go's pacing alone")
	f.sec.register(fs)
	fs.DurationVar(&f.readTimeout, "http-read-timeout", httpapi.DefaultReadTimeout, "time a request's body may take to arrive")
	fs.DurationVar(&f.writeTimeout, "http-write-timeout", httpapi.DefaultWriteTimeout, "time each 64 KiB of an answer or a watch stream may take to be written")
	fs.IntVar(&f.maxConns, "max-conns", httpapi.DefaultMaxConns, "HTTP `connections` open at once; more are answered 429 and closed")
	fs.IntVar(&f.maxWatches, "max-watches", httpapi.DefaultMaxWatches, "watch `streams` open at once; more are answered 429")
	fs.IntVar(&f.maxBlockingReads, "max-blocking-reads", httpapi.DefaultMaxBlockingReads, "blocking `reads` waiting at once; more are answered 429")
	fs.Var(&f.maxHeader, "max-header-size", "largest request line plus headers, a `size`; more is answered 431")
	fs.Var(&f.maxRequest, "max-request-bytes", "request bodies held at once, a `size` of at least 8 times -max-value-size; more are answered 429")

	fs.VisitAll(func(fl *flag.Flag) { fl.Usage += " [" + envName(fl.Name) + "]" })
	return f
}

// printUsage writes the -h text.
func printUsage(w io.Writer) {
	f := newFlags()
	fmt.Fprintf(w, `Usage: rosterd [flags] [data-directory]

Runs one member of a Roster registry. Every flag also reads the environment
variable shown in brackets; a flag on the command line wins.

`)
	f.fs.SetOutput(w)
	f.fs.PrintDefaults()
}

// Where a flag's value came from.
const (
	fromDefault = iota
	fromEnv
	fromFlag
)

// parseConfig turns the command line and the environment into a Config.
// Every error it returns is the user's to fix (exit status 2); -h and -help
// give flag.ErrHelp.
func parseConfig(args []string, env environment) (Config, error) {
	f := newFlags()
	// Only here, not in -h: PrintDefaults names a value's type from the
	// flag package's own types.
	f.fs.VisitAll(hintValue)
	positional, err := parseInterspersed(f.fs, args)
	if err != nil {
		return Config{}, err
	}
	src := make(map[string]int)
	f.fs.Visit(func(fl *flag.Flag) { src[fl.Name] = fromFlag })

	var errs []error
	var fromEnvironment []string
	f.fs.VisitAll(func(fl *flag.Flag) {
		if src[fl.Name] == fromDefault && env.getenv(envName(fl.Name)) != "" {
			fromEnvironment = append(fromEnvironment, fl.Name)
		}
	})
	for _, name := range fromEnvironment {
		key, val := envName(name), env.getenv(envName(name))
		if err := f.fs.Set(name, val); err != nil {
			errs = append(errs, fmt.Errorf("invalid value %q for %s (-%s): %v", val, key, name, err))
			continue
		}
		src[name] = fromEnv
	}
	if len(errs) > 0 {
		return Config{}, errors.Join(errs...)
	}

	if len(positional) > 1 {
		return Config{}, fmt.Errorf("expected at most one argument, the data directory; got %d: %q", len(positional), positional)
	}
	var dataArg []given
	if len(positional) == 1 {
		dataArg = []given{{"the data directory argument", positional[0]}}
	}
	same := func(s string) string { return s }
	httpAddr, err1 := resolve(f.fs, src, nil, same, "http", "haddr")
	raftAddr, err2 := resolve(f.fs, src, nil, same, "raft", "raddr")
	dataDir, err3 := resolve(f.fs, src, dataArg, filepath.Clean, "data")
	if err := errors.Join(err1, err2, err3); err != nil {
		return Config{}, err
	}

	cfg := Config{
		HTTPAddr:  httpAddr,
		LogFormat: f.logFormat,
		RedisAddr: f.redis,
		HTTP: httpapi.Config{
			ReadTimeout:  f.readTimeout,
			WriteTimeout: f.writeTimeout,
			// A watcher that stops reading is cut off by the same bound.
			WatchWriteTimeout: f.writeTimeout,
			MaxConns:          f.maxConns,
			MaxWatches:        f.maxWatches,
			MaxBlockingReads:  f.maxBlockingReads,
			MaxHeaderBytes:    int(f.maxHeader),
			MaxRequestBytes:   int64(f.maxRequest),
		},
		PProf:      f.pprof,
		GCHeadroom: int64(f.gcHeadroom),
		Registry: registry.Config{
			WatchHistory:       f.watchHistory,
			WatchHistoryBytes:  int64(f.watchHistoryBytes),
			ID:                 f.id,
			DataDir:            dataDir,
			RaftAddr:           raftAddr,
			RaftAdvertise:      f.advRaft,
			HTTPAdvertise:      f.advHTTP,
			Bootstrap:          f.bootstrap,
			NodeNumber:         f.bind,
			Tick:               f.tick,
			MaxValue:           int(f.maxValue),
			HeartbeatTimeout:   f.heartbeat,
			ElectionTimeout:    f.election,
			LeaderLeaseTimeout: f.leaderLease,
			CommitTimeout:      f.commit,
			SnapshotThreshold:  f.snapThreshold,
			SnapshotInterval:   f.snapInterval,
			SnapshotRetain:     f.snapRetain,
			TrailingLogs:       f.trailingLogs,
			CheckpointInterval: f.ckptInterval,
			CheckpointEntries:  f.ckptEntries,
			CheckpointJournal:  int(f.ckptJournal),
			KeepAliveLinger:    f.kaLinger,
		},
	}
	rc := &cfg.Registry

	check := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	switch {
	case src["id"] != fromDefault && rc.ID == "":
		check(errors.New("-id is empty"))
	case rc.ID == "":
		host, err := env.hostname()
		switch {
		case err != nil:
			check(fmt.Errorf("give -id: the host name, its default, is unknown: %w", err))
		case host == "":
			check(errors.New("give -id: the host name, its default, is empty"))
		}
		rc.ID = host
	}
	if strings.Contains(rc.ID, "/") {
		// DELETE /v1/cluster/members/{id} takes one path segment.
		check(fmt.Errorf("-id %q: a member ID holds no /, or it could never be removed", rc.ID))
	}
	check(checkAddr("-http", cfg.HTTPAddr, false))
	if src["redis"] != fromDefault {
		check(checkAddr("-redis", cfg.RedisAddr, false))
	}
	check(checkAddr("-raft", rc.RaftAddr, false))
	cfg.Security, err = f.sec.parse(env)
	check(err)
	rc.Auth, rc.RootTokenHash = cfg.Security.Auth, cfg.Security.RootTokenHash
	tlsOn := cfg.Security.CertFile != ""
	if rc.HTTPAdvertise != "" {
		var adv string
		adv, err = httpURL(rc.HTTPAdvertise, tlsOn)
		check(err)
		if err == nil {
			check(checkAddr("-advertise-http", hostPort(adv), true))
			rc.HTTPAdvertise = adv
		}
	} else {
		rc.HTTPAdvertise, _ = httpURL(cfg.HTTPAddr, tlsOn)
	}
	if rc.RaftAdvertise != "" {
		check(checkAddr("-advertise-raft", rc.RaftAdvertise, true))
	}
	rc.Join, err = parseJoin(f.join, tlsOn)
	check(err)
	if rc.NodeNumber < -1 || rc.NodeNumber > 1023 {
		check(fmt.Errorf("-bind %d: a snowflake node number is 0..1023, or -1 to pick one", rc.NodeNumber))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"tick", rc.Tick},
		{"raft-heartbeat-timeout", rc.HeartbeatTimeout},
		{"raft-election-timeout", rc.ElectionTimeout},
		{"raft-leader-lease-timeout", rc.LeaderLeaseTimeout},
		{"raft-commit-timeout", rc.CommitTimeout},
		{"snapshot-interval", rc.SnapshotInterval},
		{"checkpoint-interval", rc.CheckpointInterval},
		{"http-read-timeout", cfg.HTTP.ReadTimeout},
		{"http-write-timeout", cfg.HTTP.WriteTimeout},
	} {
		if d.v <= 0 {
			check(fmt.Errorf("-%s %v: must be positive", d.name, d.v))
		}
	}
	// Zero would silently become the node's default; say so instead.
	if rc.SnapshotThreshold == 0 {
		check(errors.New("-snapshot-threshold 0: must be positive"))
	}
	if rc.TrailingLogs == 0 {
		check(errors.New("-trailing-logs 0: must be positive"))
	}
	switch {
	case rc.KeepAliveLinger < 0 || rc.KeepAliveLinger > registry.MaxKeepAliveLinger:
		check(fmt.Errorf("-keepalive-linger %v: must be 0 to %v", rc.KeepAliveLinger, registry.MaxKeepAliveLinger))
	case rc.KeepAliveLinger == 0:
		rc.KeepAliveLinger = -1 // the registry's "never"; its 0 is "default"
	}
	switch {
	case rc.CheckpointJournal < 0:
		check(fmt.Errorf("-checkpoint-journal %d: must not be negative", rc.CheckpointJournal))
	case rc.CheckpointJournal > fsm.MaxJournalBytes:
		check(fmt.Errorf("-checkpoint-journal %d: at most %d (a checkpoint's changes go into the journal as one bbolt value, which bbolt caps at 2 GiB)", rc.CheckpointJournal, fsm.MaxJournalBytes))
	case rc.CheckpointJournal == 0:
		rc.CheckpointJournal = -1 // the registry's "off"; its 0 is "default"
	}
	if rc.CheckpointEntries < 1 {
		check(fmt.Errorf("-checkpoint-entries %d: must be at least 1", rc.CheckpointEntries))
	}
	if rc.SnapshotRetain < 1 {
		check(fmt.Errorf("-snapshot-retain %d: must be at least 1", rc.SnapshotRetain))
	}
	// Zero would silently become the default of 100,000 events. The
	// history's ring is allocated whole at start, 32 bytes an event: a
	// billion would take 32 GB before the member serves anything.
	if cfg.Registry.WatchHistory <= 0 {
		check(fmt.Errorf("-watch-history %d: must be positive", cfg.Registry.WatchHistory))
	} else if cfg.Registry.WatchHistory > maxWatchHistory {
		check(fmt.Errorf("-watch-history %d: at most %d (the history takes 32 bytes an event when the member starts)", cfg.Registry.WatchHistory, maxWatchHistory))
	}
	for _, n := range []struct {
		name string
		v    int
	}{
		{"max-conns", cfg.HTTP.MaxConns},
		{"max-watches", cfg.HTTP.MaxWatches},
		{"max-blocking-reads", cfg.HTTP.MaxBlockingReads},
	} {
		// Zero would silently become the default; say so instead.
		if n.v <= 0 {
			check(fmt.Errorf("-%s %d: must be positive", n.name, n.v))
		}
	}
	if cfg.HTTP.MaxHeaderBytes < minHeaderBytes {
		check(fmt.Errorf("-max-header-size %s: at least %s (a request line with the largest key, percent-encoded)",
			f.maxHeader.String(), new(byteSize(minHeaderBytes)).String()))
	}
	// The largest body a route takes: a transaction's JSON (8 values).
	if need := max(8*int64(rc.MaxValue), 2<<20); cfg.HTTP.MaxRequestBytes < need {
		check(fmt.Errorf("-max-request-bytes %s: at least %s (8 times -max-value-size, and 2MiB: the largest body a route takes)",
			f.maxRequest.String(), new(byteSize(need)).String()))
	}
	if rc.WatchHistoryBytes <= 0 {
		check(fmt.Errorf("-watch-history-bytes %s: must be positive", f.watchHistoryBytes.String()))
	}
	switch {
	case rc.MaxValue <= 0:
		check(fmt.Errorf("-max-value-size %s: must be positive", f.maxValue.String()))
	case rc.MaxValue > maxValueLimit:
		check(fmt.Errorf("-max-value-size %s: at most %s (a value is held whole in memory several times over: raft entry, request, watch event)",
			f.maxValue.String(), new(byteSize(maxValueLimit)).String()))
	}
	cfg.LogLevel, err = logging.ParseLevel(f.logLevel)
	if err != nil {
		check(fmt.Errorf("-log-level: %w", err))
	}
	if cfg.LogFormat != "text" && cfg.LogFormat != "json" {
		check(fmt.Errorf("-log-format %q: want text or json", cfg.LogFormat))
	}
	cfg.Failpoints, err = parseFailpoints(env.getenv(failpointEnv))
	check(err)
	if env.getenv("GOGC") != "" {
		cfg.GCHeadroom = 0 // the operator paces the collector
	}
	if len(errs) > 0 {
		return Config{}, errors.Join(errs...)
	}
	// The node's own checks (tick floor, election timeout against the
	// shortest lease, node number), so they too fail before anything starts.
	if err := rc.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// parseInterspersed parses flags that may follow the positional argument
// (flag stops at the first non-flag; raftd-style lines put the directory
// last, but "rosterd dir -id x" should work too). After "--" everything is
// positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(positional, rest...), nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// given is one value a setting received, and how to name it in an error.
type given struct{ what, value string }

// resolve settles a setting that several spellings can give (-http and
// -haddr; -data and the positional argument). The command line beats the
// environment; two spellings from the same source must agree (after norm),
// since silently picking one would hide a mistake in a start-up script.
func resolve(fs *flag.FlagSet, src map[string]int, cmdline []given, norm func(string) string, names ...string) (string, error) {
	for _, from := range []int{fromFlag, fromEnv} {
		var got []given
		for _, n := range names {
			if src[n] != from {
				continue
			}
			what := "-" + n
			if from == fromEnv {
				what = envName(n)
			}
			got = append(got, given{what, fs.Lookup(n).Value.String()})
		}
		if from == fromFlag {
			got = append(got, cmdline...)
		}
		if len(got) == 0 {
			continue
		}
		for _, g := range got {
			if g.value == "" {
				return "", fmt.Errorf("%s is empty", g.what)
			}
		}
		for _, g := range got[1:] {
			if norm(g.value) != norm(got[0].value) {
				return "", fmt.Errorf("%s %q and %s %q disagree: give one of them", got[0].what, got[0].value, g.what, g.value)
			}
		}
		return norm(got[0].value), nil
	}
	return norm(fs.Lookup(names[0]).DefValue), nil
}

// checkAddr checks a host:port. An advertised address is one that others
// dial, so it needs a real port and a host that is not a wildcard.
func checkAddr(what, addr string, advertised bool) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%s %q: want host:port", what, addr)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return fmt.Errorf("%s %q: port %q is not a number 0..65535", what, addr, port)
	}
	if !advertised {
		return nil
	}
	if p == 0 {
		return fmt.Errorf("%s %q: others cannot dial port 0", what, addr)
	}
	if ip, err := netip.ParseAddr(host); host == "" || err == nil && ip.IsUnspecified() {
		return fmt.Errorf("%s %q: others cannot dial a wildcard host", what, addr)
	}
	return nil
}

// parseJoin reads -join: comma-separated host:port, http://host:port or
// https://host:port (trailing slash allowed), duplicates dropped. An
// address without a scheme is https when this member serves TLS (its
// cluster then does too). http addresses are normalised to host:port,
// https ones keep their scheme.
func parseJoin(s string, tlsOn bool) ([]string, error) {
	var out []string
	seen := make(map[string]bool)
	for _, a := range strings.Split(s, ",") {
		a = strings.TrimSpace(a)
		if a == "" {
			continue // tolerate "a,b," and an empty ROSTER_JOIN
		}
		addr, err := httpURL(strings.TrimSuffix(a, "/"), tlsOn)
		if err != nil {
			return nil, fmt.Errorf("-join %q: %w", a, err)
		}
		if err := checkAddr("-join", hostPort(addr), true); err != nil {
			return nil, err
		}
		if !seen[addr] {
			seen[addr] = true
			out = append(out, addr)
		}
	}
	return out, nil
}

// byteSize is a flag.Value for sizes: "1048576", "512KiB", "1MiB", "1GiB".
type byteSize int

func (b *byteSize) String() string {
	n := int(*b)
	for _, u := range []struct {
		suffix string
		size   int
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n != 0 && n%u.size == 0 {
			return strconv.Itoa(n/u.size) + u.suffix
		}
	}
	return strconv.Itoa(n)
}

func (b *byteSize) Set(s string) error {
	num, mult := s, 1
	for _, u := range []struct {
		suffix string
		size   int
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"B", 1}} {
		if len(s) > len(u.suffix) && strings.EqualFold(s[len(s)-len(u.suffix):], u.suffix) {
			num, mult = strings.TrimSpace(s[:len(s)-len(u.suffix)]), u.size
			break
		}
	}
	n, err := strconv.ParseUint(num, 10, 64)
	if err != nil || n > maxByteSize/uint64(mult) {
		return errors.New("want a size such as 1048576, 512KiB or 1MiB")
	}
	*b = byteSize(n * uint64(mult))
	return nil
}
