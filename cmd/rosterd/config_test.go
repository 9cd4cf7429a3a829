package main

import (
	"errors"
	"flag"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rosterhq/roster/httpapi"
	"github.com/rosterhq/roster/internal/logging"
	"github.com/rosterhq/roster/registry"
)

func fakeEnv(vars map[string]string) environment {
	return environment{
		getenv:   func(k string) string { return vars[k] },
		hostname: func() (string, error) { return "host1", nil },
	}
}

// defaultConfig is what a bare "rosterd" on host1 runs with.
func defaultConfig() Config {
	return Config{
		HTTPAddr:   "127.0.0.1:7370",
		LogLevel:   slog.LevelInfo,
		LogFormat:  "text",
		GCHeadroom: 24 << 20,
		HTTP: httpapi.Config{
			ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, WatchWriteTimeout: 30 * time.Second,
			MaxConns: 10000, MaxWatches: 5000, MaxBlockingReads: 5000, MaxHeaderBytes: 32 << 10,
			MaxRequestBytes: 256 << 20,
		},
		Registry: registry.Config{
			WatchHistory:       100000,
			WatchHistoryBytes:  64 << 20,
			ID:                 "host1",
			DataDir:            "roster-data",
			RaftAddr:           "127.0.0.1:7371",
			HTTPAdvertise:      "127.0.0.1:7370",
			Bootstrap:          true,
			NodeNumber:         -1,
			Tick:               500 * time.Millisecond,
			MaxValue:           1 << 20,
			HeartbeatTimeout:   time.Second,
			ElectionTimeout:    time.Second,
			LeaderLeaseTimeout: 500 * time.Millisecond,
			CommitTimeout:      50 * time.Millisecond,
			SnapshotThreshold:  registry.DefaultSnapshotThreshold,
			SnapshotInterval:   registry.DefaultSnapshotInterval,
			SnapshotRetain:     2,
			TrailingLogs:       10240,
			CheckpointInterval: 100 * time.Millisecond,
			CheckpointEntries:  10000,
			CheckpointJournal:  16 << 20,
			KeepAliveLinger:    3 * time.Millisecond,
		},
	}
}

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		edit func(*Config) // applied to defaultConfig()
	}{
		{name: "defaults"},
		{
			name: "every flag",
			args: []string{
				"-id", "n1", "-http", "0.0.0.0:8000", "-raft", "10.0.0.1:9000",
				"-advertise-http", "10.0.0.1:8000", "-advertise-raft", "10.0.0.1:9000",
				"-data", "/var/lib/roster", "-join", "10.0.0.2:8000,http://10.0.0.3:8000/",
				"-tick", "250ms", "-watch-history", "5", "-bootstrap=false", "-bind", "7",
				"-log-level", "debug", "-log-format", "json", "-max-value-size", "64KiB",
				"-raft-heartbeat-timeout", "2s", "-raft-election-timeout", "1500ms",
				"-raft-leader-lease-timeout", "1s", "-raft-commit-timeout", "10ms",
				"-snapshot-threshold", "100", "-snapshot-interval", "30s",
				"-snapshot-retain", "5", "-trailing-logs", "1000",
				"-checkpoint-interval", "1s", "-checkpoint-entries", "500", "-pprof",
				"-checkpoint-journal", "1048576", "-keepalive-linger", "1ms",
			},
			edit: func(c *Config) {
				c.HTTPAddr = "0.0.0.0:8000"
				c.PProf = true
				c.LogLevel = slog.LevelDebug
				c.LogFormat = "json"
				c.Registry.WatchHistory = 5
				r := &c.Registry
				r.ID, r.RaftAddr, r.HTTPAdvertise, r.RaftAdvertise = "n1", "10.0.0.1:9000", "10.0.0.1:8000", "10.0.0.1:9000"
				r.DataDir = "/var/lib/roster"
				r.Join = []string{"10.0.0.2:8000", "10.0.0.3:8000"}
				r.Tick, r.Bootstrap, r.NodeNumber, r.MaxValue = 250*time.Millisecond, false, 7, 64<<10
				r.HeartbeatTimeout, r.ElectionTimeout = 2*time.Second, 1500*time.Millisecond
				r.LeaderLeaseTimeout, r.CommitTimeout = time.Second, 10*time.Millisecond
				r.SnapshotThreshold, r.SnapshotInterval, r.SnapshotRetain, r.TrailingLogs = 100, 30*time.Second, 5, 1000
				r.CheckpointInterval, r.CheckpointEntries, r.CheckpointJournal = time.Second, 500, 1<<20
				r.KeepAliveLinger = time.Millisecond
			},
		},
		{
			name: "environment",
			env: map[string]string{
				"ROSTER_ID": "envnode", "ROSTER_HTTP": "127.0.0.1:1", "ROSTER_ADVERTISE_HTTP": "h:1",
				"ROSTER_BOOTSTRAP": "false", "ROSTER_TICK": "1s", "ROSTER_JOIN": "http://a:1,b:2",
				"ROSTER_MAX_VALUE_SIZE": "2048", "ROSTER_RAFT_ELECTION_TIMEOUT": "500ms",
				"ROSTER_LOG_LEVEL": "trace", "ROSTER_BIND": "3", "ROSTER_CHECKPOINT_INTERVAL": "250ms",
				"ROSTER_PPROF": "true",
			},
			edit: func(c *Config) {
				c.HTTPAddr = "127.0.0.1:1"
				c.PProf = true
				c.LogLevel = logging.LevelTrace
				r := &c.Registry
				r.ID, r.HTTPAdvertise, r.Bootstrap, r.Tick = "envnode", "h:1", false, time.Second
				r.Join, r.MaxValue, r.ElectionTimeout, r.NodeNumber = []string{"a:1", "b:2"}, 2048, 500*time.Millisecond, 3
				r.CheckpointInterval = 250 * time.Millisecond
			},
		},
		{
			name: "journal off",
			args: []string{"-checkpoint-journal", "0"},
			edit: func(c *Config) { c.Registry.CheckpointJournal = -1 },
		},
		{
			// A size like the other size flags: the README's "at most 1 GiB"
			// invites a suffix.
			name: "journal with a size suffix",
			args: []string{"-checkpoint-journal", "4MiB"},
			edit: func(c *Config) { c.Registry.CheckpointJournal = 4 << 20 },
		},
		{
			name: "keep-alive groups never wait",
			args: []string{"-keepalive-linger", "0"},
			edit: func(c *Config) { c.Registry.KeepAliveLinger = -1 },
		},
		{
			name: "flag beats environment",
			args: []string{"-http", "127.0.0.1:2", "-bootstrap=true", "-id", "flagnode"},
			env:  map[string]string{"ROSTER_HTTP": "127.0.0.1:1", "ROSTER_BOOTSTRAP": "false", "ROSTER_ID": "envnode"},
			edit: func(c *Config) {
				c.HTTPAddr, c.Registry.HTTPAdvertise, c.Registry.ID = "127.0.0.1:2", "127.0.0.1:2", "flagnode"
			},
		},
		{
			name: "compat flag beats modern env spelling",
			args: []string{"-haddr", "127.0.0.1:2"},
			env:  map[string]string{"ROSTER_HTTP": "127.0.0.1:1"},
			edit: func(c *Config) { c.HTTPAddr, c.Registry.HTTPAdvertise = "127.0.0.1:2", "127.0.0.1:2" },
		},
		{
			name: "raftd start-up line",
			args: []string{"-id", "node02", "-haddr", "127.0.0.1:8002", "-raddr", "127.0.0.1:8102", "-join", "127.0.0.1:8001", "/home/u/.roster02"},
			edit: func(c *Config) {
				c.HTTPAddr = "127.0.0.1:8002"
				r := &c.Registry
				r.ID, r.HTTPAdvertise, r.RaftAddr = "node02", "127.0.0.1:8002", "127.0.0.1:8102"
				r.Join, r.DataDir = []string{"127.0.0.1:8001"}, "/home/u/.roster02"
			},
		},
		{
			name: "redis port by flag",
			args: []string{"-redis", "127.0.0.1:6379"},
			edit: func(c *Config) { c.RedisAddr = "127.0.0.1:6379" },
		},
		{
			name: "redis port by environment",
			env:  map[string]string{"ROSTER_REDIS": ":6380"},
			edit: func(c *Config) { c.RedisAddr = ":6380" },
		},
		{
			name: "positional before flags",
			args: []string{"dir", "-id", "x"},
			edit: func(c *Config) { c.Registry.DataDir, c.Registry.ID = "dir", "x" },
		},
		{
			name: "after -- everything is positional",
			args: []string{"--", "-odd-dir"},
			edit: func(c *Config) { c.Registry.DataDir = "-odd-dir" },
		},
		{
			name: "positional beats env",
			args: []string{"argdir"},
			env:  map[string]string{"ROSTER_DATA": "envdir"},
			edit: func(c *Config) { c.Registry.DataDir = "argdir" },
		},
		{
			name: "agreeing duplicates",
			args: []string{"-http", "127.0.0.1:9", "-haddr", "127.0.0.1:9", "-data", "./d/", "d"},
			edit: func(c *Config) {
				c.HTTPAddr, c.Registry.HTTPAdvertise, c.Registry.DataDir = "127.0.0.1:9", "127.0.0.1:9", "d"
			},
		},
		{
			name: "raddr and bind",
			args: []string{"-raddr", "127.0.0.1:0", "-bind", "1023"},
			edit: func(c *Config) { c.Registry.RaftAddr, c.Registry.NodeNumber = "127.0.0.1:0", 1023 },
		},
		{
			name: "join normalisation",
			args: []string{"-join", " http://a:1/ , a:1,,b:2,"},
			edit: func(c *Config) { c.Registry.Join = []string{"a:1", "b:2"} },
		},
		{
			name: "empty env counts as unset",
			env:  map[string]string{"ROSTER_HTTP": "", "ROSTER_JOIN": ""},
		},
		{
			name: "max value in plain bytes and MiB",
			args: []string{"-max-value-size", "3MiB"},
			edit: func(c *Config) { c.Registry.MaxValue = 3 << 20 },
		},
		{
			name: "largest value and history bytes",
			args: []string{"-max-value-size", "16MiB", "-watch-history-bytes", "1GiB"},
			edit: func(c *Config) { c.Registry.MaxValue, c.Registry.WatchHistoryBytes = 16<<20, 1<<30 },
		},
		{
			name: "http limits",
			args: []string{"-http-read-timeout", "5s", "-http-write-timeout", "1m", "-max-conns", "100",
				"-max-watches", "10", "-max-blocking-reads", "20", "-max-header-size", "16KiB", "-max-request-bytes", "64MiB"},
			edit: func(c *Config) {
				c.HTTP = httpapi.Config{ReadTimeout: 5 * time.Second, WriteTimeout: time.Minute, WatchWriteTimeout: time.Minute,
					MaxConns: 100, MaxWatches: 10, MaxBlockingReads: 20, MaxHeaderBytes: 16 << 10, MaxRequestBytes: 64 << 20}
			},
		},
		{
			name: "http limits from the environment",
			env:  map[string]string{"ROSTER_MAX_CONNS": "7", "ROSTER_HTTP_READ_TIMEOUT": "2s", "ROSTER_MAX_HEADER_SIZE": "1MiB"},
			edit: func(c *Config) { c.HTTP.MaxConns, c.HTTP.ReadTimeout, c.HTTP.MaxHeaderBytes = 7, 2*time.Second, 1<<20 },
		},
		{
			name: "history bytes from the environment",
			env:  map[string]string{"ROSTER_WATCH_HISTORY_BYTES": "8MiB"},
			edit: func(c *Config) { c.Registry.WatchHistoryBytes = 8 << 20 },
		},
		{
			name: "gc headroom",
			args: []string{"-gc-headroom", "64MiB"},
			edit: func(c *Config) { c.GCHeadroom = 64 << 20 },
		},
		{
			name: "gc tuning off",
			env:  map[string]string{"ROSTER_GC_HEADROOM": "0"},
			edit: func(c *Config) { c.GCHeadroom = 0 },
		},
		{
			name: "GOGC in the environment paces the collector",
			args: []string{"-gc-headroom", "64MiB"},
			env:  map[string]string{"GOGC": "50"},
			edit: func(c *Config) { c.GCHeadroom = 0 },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseConfig(tt.args, fakeEnv(tt.env))
			if err != nil {
				t.Fatalf("parseConfig: %v", err)
			}
			want := defaultConfig()
			if tt.edit != nil {
				tt.edit(&want)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("parseConfig(%q)\n got %+v\nwant %+v", tt.args, got, want)
			}
		})
	}
}

func TestParseConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string // substring of the error
	}{
		{"unknown flag", []string{"-nope"}, nil, "flag provided but not defined: -nope"},
		{"bad duration", []string{"-tick", "5"}, nil, `invalid value "5" for flag -tick: parse error: want a duration such as 500ms, 2s or 1m30s`},
		{"bad env duration", nil, map[string]string{"ROSTER_TICK": "soon"}, `invalid value "soon" for ROSTER_TICK (-tick): parse error: want a duration such as 500ms`},
		{"bad count", []string{"-max-conns", "many"}, nil, `invalid value "many" for flag -max-conns: parse error: want a whole number`},
		{"count out of range", []string{"-snapshot-threshold", "99999999999999999999"}, nil, "value out of range: want a whole number"},
		{"journal not a size", []string{"-checkpoint-journal", "lots"}, nil, `invalid value "lots" for flag -checkpoint-journal: want a size such as`},
		{"bad env bool", nil, map[string]string{"ROSTER_BOOTSTRAP": "maybe"}, "ROSTER_BOOTSTRAP"},
		{"http conflict", []string{"-http", "127.0.0.1:1", "-haddr", "127.0.0.1:2"}, nil, `-http "127.0.0.1:1" and -haddr "127.0.0.1:2" disagree`},
		{"raft conflict", []string{"-raft", "127.0.0.1:1", "-raddr", "127.0.0.1:2"}, nil, "-raft"},
		{"env conflict", nil, map[string]string{"ROSTER_HTTP": "127.0.0.1:1", "ROSTER_HADDR": "127.0.0.1:2"}, "ROSTER_HTTP"},
		{"data conflict", []string{"-data", "a", "b"}, nil, `-data "a" and the data directory argument "b" disagree`},
		{"two positionals", []string{"a", "b"}, nil, "at most one argument"},
		{"empty id", []string{"-id", ""}, nil, "-id is empty"},
		{"id with a slash", []string{"-id", "rack1/n1"}, nil, `-id "rack1/n1": a member ID holds no /`},
		{"empty data", []string{"-data", ""}, nil, "-data is empty"},
		{"bad http", []string{"-http", "localhost"}, nil, `-http "localhost": want host:port`},
		{"bad port", []string{"-raft", "127.0.0.1:x"}, nil, "not a number"},
		{"advertise wildcard", []string{"-advertise-http", "0.0.0.0:80"}, nil, "wildcard"},
		{"advertise port 0", []string{"-advertise-raft", "10.0.0.1:0"}, nil, "port 0"},
		{"join ftp", []string{"-join", "ftp://a:1"}, nil, "only http:// and https://"},
		{"join no port", []string{"-join", "http://a"}, nil, "want host:port"},
		{"bind range", []string{"-bind", "1024"}, nil, "-bind 1024"},
		{"bind negative", []string{"-bind", "-2"}, nil, "-bind -2"},
		{"zero tick", []string{"-tick", "0s"}, nil, "-tick 0s: must be positive"},
		{"tick below node floor", []string{"-tick", "5ms"}, nil, "below 10ms"},
		{"election too long for min ttl", []string{"-raft-election-timeout", "2s"}, nil, "minimum lease TTL"},
		{"zero threshold", []string{"-snapshot-threshold", "0"}, nil, "-snapshot-threshold 0"},
		{"zero trailing logs", []string{"-trailing-logs", "0"}, nil, "-trailing-logs 0"},
		{"zero retain", []string{"-snapshot-retain", "0"}, nil, "-snapshot-retain 0"},
		{"zero checkpoint interval", []string{"-checkpoint-interval", "0s"}, nil, "-checkpoint-interval 0s: must be positive"},
		{"zero checkpoint entries", []string{"-checkpoint-entries", "0"}, nil, "-checkpoint-entries 0"},
		{"negative checkpoint journal", []string{"-checkpoint-journal", "-1"}, nil, `invalid value "-1" for flag -checkpoint-journal: want a size`},
		{"checkpoint journal too large", []string{"-checkpoint-journal", "1073741825"}, nil, "-checkpoint-journal 1073741825: at most 1073741824"},
		{"checkpoint journal too large, with a suffix", []string{"-checkpoint-journal", "2GiB"}, nil, "-checkpoint-journal 2147483648: at most 1073741824"},
		{"negative keep-alive linger", []string{"-keepalive-linger", "-1ms"}, nil, "-keepalive-linger -1ms: must be 0 to 100ms"},
		{"keep-alive linger too long", []string{"-keepalive-linger", "1s"}, nil, "-keepalive-linger 1s: must be 0 to 100ms"},
		{"negative history", []string{"-watch-history", "-1"}, nil, "-watch-history -1"},
		{"zero history", []string{"-watch-history", "0"}, nil, "-watch-history 0: must be positive"},
		{"history too long", []string{"-watch-history", "10000001"}, nil, "-watch-history 10000001: at most 10000000"},
		{"bad size", []string{"-max-value-size", "1TB"}, nil, "-max-value-size"},
		{"size too big", []string{"-max-value-size", "1GiB"}, nil, "-max-value-size 1GiB: at most 16MiB"},
		{"size just too big", []string{"-max-value-size", "16777217"}, nil, "-max-value-size 16777217: at most 16MiB"},
		{"env size too big", nil, map[string]string{"ROSTER_MAX_VALUE_SIZE": "32MiB"}, "-max-value-size 32MiB: at most 16MiB"},
		{"absurd size", []string{"-max-value-size", "2048GiB"}, nil, "want a size such as"},
		{"zero conns", []string{"-max-conns", "0"}, nil, "-max-conns 0: must be positive"},
		{"negative watches", []string{"-max-watches", "-1"}, nil, "-max-watches -1: must be positive"},
		{"zero blocking reads", nil, map[string]string{"ROSTER_MAX_BLOCKING_READS": "0"}, "-max-blocking-reads 0: must be positive"},
		{"zero read timeout", []string{"-http-read-timeout", "0s"}, nil, "-http-read-timeout 0s: must be positive"},
		{"tiny header", []string{"-max-header-size", "1KiB"}, nil, "-max-header-size 1KiB: at least 8KiB"},
		{"small request budget", []string{"-max-request-bytes", "1MiB"}, nil, "-max-request-bytes 1MiB: at least 8MiB"},
		{"request budget below big values", []string{"-max-value-size", "16MiB", "-max-request-bytes", "64MiB"}, nil, "-max-request-bytes 64MiB: at least 128MiB"},
		{"zero history bytes", []string{"-watch-history-bytes", "0"}, nil, "-watch-history-bytes 0: must be positive"},
		{"zero size", []string{"-max-value-size", "0"}, nil, "must be positive"},
		{"bad level", []string{"-log-level", "loud"}, nil, "-log-level"},
		{"bad format", []string{"-log-format", "xml"}, nil, `-log-format "xml"`},
		{"several at once", []string{"-http", "x", "-raft", "y"}, nil, "-raft \"y\""},
		{"bad redis", []string{"-redis", "6379"}, nil, `-redis "6379": want host:port`},
		{"empty redis env", nil, map[string]string{"ROSTER_REDIS": "nohost"}, `-redis "nohost"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseConfig(tt.args, fakeEnv(tt.env))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("parseConfig(%q) error = %v, want it to contain %q", tt.args, err, tt.want)
			}
		})
	}
}

func TestParseConfigHelp(t *testing.T) {
	for _, arg := range []string{"-h", "-help", "--help"} {
		if _, err := parseConfig([]string{arg}, fakeEnv(nil)); !errors.Is(err, flag.ErrHelp) {
			t.Errorf("parseConfig(%s) = %v, want flag.ErrHelp", arg, err)
		}
	}
}

func TestParseConfigHostname(t *testing.T) {
	env := fakeEnv(nil)
	env.hostname = func() (string, error) { return "", errors.New("no uts") }
	if _, err := parseConfig(nil, env); err == nil || !strings.Contains(err.Error(), "give -id") {
		t.Errorf("error = %v, want a hint to give -id", err)
	}
	if cfg, err := parseConfig([]string{"-id", "x"}, env); err != nil || cfg.Registry.ID != "x" {
		t.Errorf("with -id: %v, %v", cfg.Registry.ID, err)
	}
}

func TestEnvName(t *testing.T) {
	for in, want := range map[string]string{
		"http": "ROSTER_HTTP", "advertise-http": "ROSTER_ADVERTISE_HTTP",
		"raft-leader-lease-timeout": "ROSTER_RAFT_LEADER_LEASE_TIMEOUT",
	} {
		if got := envName(in); got != want {
			t.Errorf("envName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestUsageListsEveryFlagAndEnv(t *testing.T) {
	var b strings.Builder
	printUsage(&b)
	newFlags().fs.VisitAll(func(f *flag.Flag) {
		if !strings.Contains(b.String(), "-"+f.Name) || !strings.Contains(b.String(), envName(f.Name)) {
			t.Errorf("usage lacks -%s or %s", f.Name, envName(f.Name))
		}
	})
}

func TestByteSize(t *testing.T) {
	for in, want := range map[string]int{
		"1": 1, "1048576": 1 << 20, "512KiB": 512 << 10, "1mib": 1 << 20, "1GiB": 1 << 30, "100B": 100, "2 MiB": 2 << 20,
	} {
		var b byteSize
		if err := b.Set(in); err != nil || int(b) != want {
			t.Errorf("Set(%q) = %d, %v; want %d", in, b, err, want)
		}
	}
	for in, want := range map[int]string{1 << 20: "1MiB", 1536: "1536", 3 << 30: "3GiB", 0: "0", 2048: "2KiB"} {
		b := byteSize(in)
		if got := b.String(); got != want {
			t.Errorf("String(%d) = %q, want %q", in, got, want)
		}
	}
}
