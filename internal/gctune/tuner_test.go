package gctune_test

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/rosterhq/roster/internal/gctune"
	"github.com/rosterhq/roster/internal/testutil"
)

const mib = 1 << 20

func TestPercent(t *testing.T) {
	def := gctune.Config{}
	for _, c := range []struct {
		name string
		cfg  gctune.Config
		live uint64
		want int
	}{
		{"nothing live yet", def, 0, 100},
		{"small heap: Go's default", def, 10 * mib, 100},
		{"floor exactly the live heap", def, 24 * mib, 100},
		{"floor above 40% of the heap", def, 30 * mib, 80},
		{"40% of the heap above the floor", def, 100 * mib, 40},
		{"a million leases", def, 600 * mib, 40},
		{"custom ratio", gctune.Config{Floor: 8 * mib, Ratio: 0.25}, 64 * mib, 25},
		{"never below MinPercent", gctune.Config{Floor: 1, Ratio: 0.01}, 1000 * mib, gctune.MinPercent},
	} {
		if got := c.cfg.Percent(c.live); got != c.want {
			t.Errorf("%s: Percent(%d MiB) = %d, want %d", c.name, c.live/mib, got, c.want)
		}
	}
}

func gogc(t *testing.T) int {
	t.Helper()
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		t.Fatal("runtime has no /gc/gogc:percent")
	}
	return int(s[0].Value.Uint64())
}

func liveHeap() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// The tuner sets GOGC from the heap found live at the last collection,
// follows it when it grows, and Close restores what it found.
func TestTunerFollowsTheLiveHeap(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(77))
	cfg := gctune.Config{Floor: 4 * mib, Ratio: 0.5, Interval: 5 * time.Millisecond}
	tu := gctune.Start(cfg)
	defer tu.Close()

	// 64 MiB held live: the headroom is half of it, GOGC about 50.
	ballast := make([][]byte, 64)
	for i := range ballast {
		ballast[i] = make([]byte, mib)
		ballast[i][0] = 1
	}
	runtime.GC()
	want := cfg.Percent(liveHeap())
	if want >= 100 || want < 45 {
		t.Fatalf("with 64 MiB live, want a GOGC near 50 to test; Percent = %d", want)
	}
	// Another collection may find a slightly different live heap: allow a
	// few points either way, but GOGC must be what the tuner set.
	near := func(p int) bool { return p >= want-3 && p <= want+3 }
	if !testutil.Poll(10*time.Second, func() bool { return near(tu.Percent()) && gogc(t) == tu.Percent() }) {
		t.Fatalf("GOGC %d, tuner %d; want %d±3 within 10 s of a collection", gogc(t), tu.Percent(), want)
	}
	runtime.KeepAlive(ballast)

	tu.Close()
	tu.Close() // idempotent
	if got := gogc(t); got != 77 {
		t.Fatalf("GOGC after Close = %d, want the 77 it found", got)
	}
}
