package gctune

import (
	"log/slog"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"time"
)

// Defaults for Config's zero fields.
const (
	DefaultFloor    = 24 << 20
	DefaultRatio    = 0.4
	DefaultInterval = 250 * time.Millisecond
	// MinPercent bounds how often a tiny headroom could make the runtime
	// collect.
	MinPercent = 20
)

// Config sets the headroom the tuner gives the heap.
type Config struct {
	// Floor is the headroom in bytes always allowed above the live heap,
	// as long as that is not more than Go's default would allow.
	Floor int64
	// Ratio is the headroom as a fraction of the live heap, where that is
	// more than Floor.
	Ratio float64
	// Interval is how often the tuner looks for a finished collection.
	Interval time.Duration
	Logger   *slog.Logger
}

func (c *Config) fill() {
	if c.Floor <= 0 {
		c.Floor = DefaultFloor
	}
	if c.Ratio <= 0 {
		c.Ratio = DefaultRatio
	}
	if c.Interval <= 0 {
		c.Interval = DefaultInterval
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Percent is the GOGC value that gives a live heap of live bytes the
// headroom max(Floor, Ratio × live), between MinPercent and 100.
func (c Config) Percent(live uint64) int {
	c.fill()
	if live == 0 {
		return 100
	}
	head := max(float64(c.Floor), c.Ratio*float64(live))
	p := int(100 * head / float64(live))
	return min(max(p, MinPercent), 100)
}

// Tuner sets GOGC after each collection. It is started by Start and
// stopped by Close.
type Tuner struct {
	cfg     Config
	initial int // GOGC when the tuner started, restored by Close

	mu      sync.Mutex // guards percent
	percent int

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

var tunerMetrics = []string{"/gc/cycles/total:gc-cycles", "/gc/heap/live:bytes"}

// Start tunes GOGC until Close, from a goroutine the Tuner owns.
func Start(cfg Config) *Tuner {
	cfg.fill()
	t := &Tuner{cfg: cfg, stop: make(chan struct{}), done: make(chan struct{})}
	t.initial = debug.SetGCPercent(100)
	t.percent = 100
	samples := make([]metrics.Sample, len(tunerMetrics))
	for i, name := range tunerMetrics {
		samples[i].Name = name
	}
	t.look(samples, ^uint64(0))
	go t.loop(samples)
	return t
}

// Percent is the GOGC the tuner set last.
func (t *Tuner) Percent() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.percent
}

// Close stops the tuner and restores the GOGC it found. It is idempotent.
func (t *Tuner) Close() {
	t.closeOnce.Do(func() {
		close(t.stop)
		<-t.done
		debug.SetGCPercent(t.initial)
	})
}

func (t *Tuner) loop(samples []metrics.Sample) {
	defer close(t.done)
	tick := time.NewTicker(t.cfg.Interval)
	defer tick.Stop()
	cycles := samples[0].Value.Uint64()
	for {
		select {
		case <-t.stop:
			return
		case <-tick.C:
			cycles = t.look(samples, cycles)
		}
	}
}

// look reads the runtime's collection count and, if a collection finished
// since the one seen last, sets GOGC for the heap it found live. It
// returns the count seen.
func (t *Tuner) look(samples []metrics.Sample, seen uint64) uint64 {
	metrics.Read(samples)
	if samples[0].Value.Kind() != metrics.KindUint64 || samples[1].Value.Kind() != metrics.KindUint64 {
		return seen // a runtime without these metrics: leave GOGC alone
	}
	cycles := samples[0].Value.Uint64()
	if cycles == seen {
		return seen
	}
	p := t.cfg.Percent(samples[1].Value.Uint64())
	t.mu.Lock()
	changed := p != t.percent
	t.percent = p
	t.mu.Unlock()
	if changed {
		debug.SetGCPercent(p)
		t.cfg.Logger.Debug("gc pacing", "gogc", p, "live_heap_bytes", samples[1].Value.Uint64())
	}
	return cycles
}
