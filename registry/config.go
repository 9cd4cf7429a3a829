package registry

import (
	"crypto/tls"
	"fmt"
	"time"

	"github.com/rosterhq/roster/fsm"
)

// Config configures a Node. Zero fields take the defaults below.
type Config struct {
	// ID is this member's raft server ID.
	ID string
	// DataDir holds raft/ (log, stable store, snapshots) and state.db.
	DataDir string
	// RaftAddr is the raft bind address; "127.0.0.1:0" picks a free port.
	RaftAddr string
	// RaftAdvertise is the raft address others dial (default: the bound one).
	RaftAdvertise string
	// HTTPAdvertise is this member's HTTP address as others should dial it;
	// it is replicated as member metadata so followers can forward.
	HTTPAdvertise string
	// Bootstrap creates a new one-member cluster on a first start (no state
	// in DataDir) when Join is empty.
	Bootstrap bool
	// Join lists HTTP addresses of existing members to ask for admission.
	Join []string
	// NodeNumber is the snowflake node number; -1 picks one automatically.
	NodeNumber int64

	// Tick is the lease tick interval (default 500ms).
	Tick time.Duration
	// ExpireLimit caps the leases one tick expires (default 5000); the rest
	// follow in immediate extra ticks.
	ExpireLimit int
	// MaxValue is the largest value accepted, in bytes (default 1 MiB).
	MaxValue int
	// ApplyTimeout bounds how long a write waits to commit (default 10s).
	ApplyTimeout time.Duration
	// LeaderWait bounds how long an operation waits for a leader to appear
	// before failing with ErrNoLeader (default 3s).
	LeaderWait time.Duration
	// KeepAliveBatch caps IDs per coalesced keep-alive entry (default 20000).
	KeepAliveBatch int
	// KeepAliveLinger is how long, at most, a keep-alive group waits under
	// load to grow as large as the group before it (keepalive.go; default
	// 3ms, at most 100ms). Negative: groups never wait.
	KeepAliveLinger time.Duration
	// WatchHistory is how many recent events are kept in memory for watch
	// resumes and blocking reads (default 100000).
	WatchHistory int
	// WatchHistoryBytes bounds the bytes of keys and values (current and
	// previous) those events hold (default 64 MiB).
	WatchHistoryBytes int64

	// Raft timing; defaults are hashicorp/raft's LAN defaults.
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration
	// Snapshots: threshold of new entries, check interval, retained files,
	// and entries kept after a snapshot for slow followers.
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
	SnapshotRetain    int
	TrailingLogs      uint64

	// CheckpointInterval is how long after the first change the state
	// machine's checkpoint is committed to the state file (default
	// 100ms); CheckpointEntries applied entries commit it sooner (default
	// 10000). Neither is on the acknowledgement path.
	CheckpointInterval time.Duration
	CheckpointEntries  int
	// CheckpointJournal bounds the state file's journal in bytes: a
	// checkpoint appends its changes to it, and merges them into place
	// once the journal would outgrow this (fsm/journal.go). 0 means
	// DefaultCheckpointJournal; negative turns the journal off.
	CheckpointJournal int

	// PeerTLS, when set, secures the raft port: the listener requires and
	// verifies client certificates, and this member dials others with TLS,
	// presenting its certificate and verifying theirs. Raft and the
	// forwarding channel both use it. nil: plain TCP.
	PeerTLS *tls.Config

	// NoSync skips fsync of the state file (tests and benchmarks only).
	NoSync bool

	// Failpoint, when set, is called with the name of each crash point the
	// node passes (see Failpoints); crash tests make it kill the process.
	Failpoint func(name string)

	// Auth says this member enforces access control (only for its log
	// messages: the front ends enforce it, with this flag, and without it
	// once the applied state has access control on; watchAccessControl).
	Auth bool
	// MaxTokenWaits bounds the requests that wait at once on this member
	// for a token its replica does not know (ReadForUnknownToken); the
	// others are refused as unknown at once. Default
	// DefaultMaxTokenWaits.
	MaxTokenWaits int
	// RootTokenHash is HashToken of the root token: a leader that finds
	// no token in the cluster creates it (auth.go). Never the secret.
	RootTokenHash []byte
}

// Defaults.
const (
	DefaultTick           = 500 * time.Millisecond
	DefaultExpireLimit    = 5000
	DefaultMaxValue       = 1 << 20
	DefaultApplyTimeout   = 10 * time.Second
	DefaultLeaderWait     = 3 * time.Second
	DefaultKeepAliveBatch = 20000
	DefaultMaxTokenWaits  = 256
	// DefaultKeepAliveLinger: measured on 3-member clusters, see
	// docs/benchmarks.md ("A keep-alive group waits for its followers").
	DefaultKeepAliveLinger = 3 * time.Millisecond
	MaxKeepAliveLinger     = 100 * time.Millisecond
	DefaultSnapshotRetain  = 2
	// A restart reads back, twice and one GetLog at a time, every log
	// entry after the newest snapshot: raft scans them for configuration
	// changes, then hands them to the state machine, which skips those
	// under its checkpoint. About 11 µs an entry, so the restart time
	// grows with the entries since the last snapshot. raft snapshots once
	// SnapshotThreshold entries came, but looks only every one to two
	// SnapshotIntervals: a short interval keeps what a restart reads back
	// near the threshold whatever the write rate (looking costs one read
	// transaction of the log store, and writes nothing).
	// docs/benchmarks.md, "Restart after sustained writes".
	DefaultSnapshotThreshold = 65536
	DefaultSnapshotInterval  = 250 * time.Millisecond

	DefaultCheckpointInterval = 100 * time.Millisecond
	DefaultCheckpointEntries  = fsm.DefaultCheckpointEntries
	DefaultCheckpointJournal  = fsm.DefaultJournalBytes
)

func (c *Config) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.Tick, DefaultTick)
	def(&c.ApplyTimeout, DefaultApplyTimeout)
	def(&c.LeaderWait, DefaultLeaderWait)
	def(&c.HeartbeatTimeout, time.Second)
	def(&c.ElectionTimeout, time.Second)
	def(&c.LeaderLeaseTimeout, 500*time.Millisecond)
	def(&c.CommitTimeout, 50*time.Millisecond)
	def(&c.SnapshotInterval, DefaultSnapshotInterval)
	def(&c.CheckpointInterval, DefaultCheckpointInterval)
	def(&c.KeepAliveLinger, DefaultKeepAliveLinger)
	if c.CheckpointEntries == 0 {
		c.CheckpointEntries = DefaultCheckpointEntries
	}
	if c.ExpireLimit == 0 {
		c.ExpireLimit = DefaultExpireLimit
	}
	if c.MaxValue == 0 {
		c.MaxValue = DefaultMaxValue
	}
	if c.MaxTokenWaits == 0 {
		c.MaxTokenWaits = DefaultMaxTokenWaits
	}
	if c.KeepAliveBatch == 0 {
		c.KeepAliveBatch = DefaultKeepAliveBatch
	}
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = DefaultSnapshotThreshold
	}
	if c.SnapshotRetain == 0 {
		c.SnapshotRetain = DefaultSnapshotRetain
	}
	if c.TrailingLogs == 0 {
		c.TrailingLogs = 10240
	}
}

// Validate checks the configuration after defaults are applied.
func (c *Config) Validate() error {
	switch {
	case c.ID == "":
		return fmt.Errorf("%w: member id is empty", fsm.ErrInvalidArgument)
	case c.DataDir == "":
		return fmt.Errorf("%w: data directory is empty", fsm.ErrInvalidArgument)
	case c.RaftAddr == "":
		return fmt.Errorf("%w: raft address is empty", fsm.ErrInvalidArgument)
	case c.Tick < 10*time.Millisecond:
		return fmt.Errorf("%w: tick %v is below 10ms", fsm.ErrInvalidArgument, c.Tick)
	case c.NodeNumber > 1023:
		return fmt.Errorf("%w: snowflake node number %d is above 1023", fsm.ErrInvalidArgument, c.NodeNumber)
	case c.MaxTokenWaits < 0:
		return fmt.Errorf("%w: max token waits %d is negative", fsm.ErrInvalidArgument, c.MaxTokenWaits)
	case c.KeepAliveLinger > MaxKeepAliveLinger:
		return fmt.Errorf("%w: keep-alive linger %v is above %v", fsm.ErrInvalidArgument, c.KeepAliveLinger, MaxKeepAliveLinger)
	}
	// A keep-alive sent just as the leader fails waits out an election; a
	// lease of the minimum TTL must outlast that plus one tick of lateness,
	// or clients could not keep short leases alive through a failover.
	minTTL := time.Duration(fsm.MinTTL) * time.Second
	if worst := c.ElectionTimeout + c.Tick; worst >= minTTL {
		return fmt.Errorf("%w: election timeout %v plus tick %v must be below the minimum lease TTL of %v",
			fsm.ErrInvalidArgument, c.ElectionTimeout, c.Tick, minTTL)
	}
	return nil
}
