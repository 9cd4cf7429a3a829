package lease_test

import (
	"testing"
	"time"

	"github.com/rosterhq/roster/lease"
)

// fakeClock is a settable time source for Meter.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func TestMeterTakeMs(t *testing.T) {
	type step struct {
		advance time.Duration
		want    int64
	}
	cases := []struct {
		name  string
		max   time.Duration
		steps []step
	}{
		{"nothing elapsed", 0, []step{{0, 0}, {0, 0}}},
		{"whole ms", 0, []step{{500 * time.Millisecond, 500}, {250 * time.Millisecond, 250}}},
		{"sub-ms remainder is carried", 0, []step{
			{1500 * time.Microsecond, 1}, // 0.5 ms carried
			{1500 * time.Microsecond, 2}, // 0.5 + 1.5
			{700 * time.Microsecond, 0},  // 0.7 carried
			{300 * time.Microsecond, 1},  // 0.7 + 0.3
		}},
		{"many small steps add up", 0, []step{
			{400 * time.Microsecond, 0}, {400 * time.Microsecond, 0}, {400 * time.Microsecond, 1},
			{400 * time.Microsecond, 0}, {400 * time.Microsecond, 1},
		}},
		{"capped", time.Second, []step{{5 * time.Second, 1000}, {200 * time.Millisecond, 200}}},
		{"cap drops the excess and its remainder", time.Second, []step{
			{2500*time.Millisecond + 300*time.Microsecond, 1000},
			{700 * time.Microsecond, 0}, // the 0.3 ms was dropped with the excess
			{300 * time.Microsecond, 1},
		}},
		{"exactly the cap", time.Second, []step{{time.Second, 1000}, {time.Millisecond, 1}}},
		{"just under the cap carries", time.Second, []step{{999*time.Millisecond + 600*time.Microsecond, 999}, {400 * time.Microsecond, 1}}},
		{"clock going back", 0, []step{{-time.Second, 0}, {time.Second, 0}, {5 * time.Millisecond, 5}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := &fakeClock{t: time.Unix(1_700_000_000, 0)}
			m := lease.NewMeter(c.now, tc.max)
			for i, s := range tc.steps {
				c.advance(s.advance)
				if got := m.TakeMs(); got != s.want {
					t.Fatalf("step %d (+%v): TakeMs = %d, want %d", i, s.advance, got, s.want)
				}
			}
		})
	}
}

// TestMeterDoesNotDrift: taken often at odd intervals, the sum of what the
// meter reports trails real time by less than a millisecond.
func TestMeterDoesNotDrift(t *testing.T) {
	c := &fakeClock{t: time.Unix(0, 0)}
	m := lease.NewMeter(c.now, time.Minute)
	var total int64
	var real time.Duration
	for i := 0; i < 10_000; i++ {
		d := time.Duration(137+i%1000) * 3701 * time.Nanosecond
		c.advance(d)
		real += d
		total += m.TakeMs()
	}
	lag := real - time.Duration(total)*time.Millisecond
	if lag < 0 || lag >= time.Millisecond {
		t.Fatalf("reported %d ms for %v of real time (lag %v)", total, real, lag)
	}
}

// TestMeterStartsAtCreation: time before NewMeter (e.g. without a leader)
// is never counted.
func TestMeterStartsAtCreation(t *testing.T) {
	c := &fakeClock{t: time.Unix(0, 0)}
	c.advance(time.Hour)
	m := lease.NewMeter(c.now, 0)
	if got := m.TakeMs(); got != 0 {
		t.Fatalf("TakeMs right after NewMeter = %d", got)
	}
	c.advance(3 * time.Millisecond)
	if got := m.TakeMs(); got != 3 {
		t.Fatalf("TakeMs = %d", got)
	}
}

func TestMeterSlack(t *testing.T) {
	c := &fakeClock{t: time.Unix(0, 0)}
	m := lease.NewMeter(c.now, 0)
	steps := []struct {
		name string
		do   func()
		want int64
	}{
		{"fresh", func() {}, 0},
		{"untaken time rounds up", func() { c.advance(1500 * time.Microsecond) }, 2},
		{"taken but not done", func() {
			if ms := m.TakeMs(); ms != 1 {
				t.Fatalf("TakeMs = %d", ms)
			}
		}, 2}, // 0.5 ms untaken (rounds to 1) + 1 in flight
		{"done", func() { m.Done(1) }, 1},
		{"two ticks in flight", func() {
			c.advance(10*time.Millisecond + 500*time.Microsecond)
			if ms := m.TakeMs(); ms != 11 {
				t.Fatalf("TakeMs = %d", ms)
			}
			c.advance(4 * time.Millisecond)
			if ms := m.TakeMs(); ms != 4 {
				t.Fatalf("TakeMs = %d", ms)
			}
		}, 15},
		{"first done", func() { m.Done(11) }, 4},
		{"second failed", func() { m.Done(4) }, 0},
		{"clock going back", func() { c.advance(-time.Second) }, 0},
	}
	for _, s := range steps {
		s.do()
		if got := m.SlackMs(); got != s.want {
			t.Fatalf("%s: SlackMs = %d, want %d", s.name, got, s.want)
		}
	}
	capped := lease.NewMeter(c.now, time.Second)
	c.advance(5 * time.Second)
	if ms := capped.TakeMs(); ms != 1000 || capped.SlackMs() != 1000 {
		t.Fatalf("capped: TakeMs %d, SlackMs %d", ms, capped.SlackMs())
	}
	capped.Done(1000)
	if s := capped.SlackMs(); s != 0 {
		t.Fatalf("capped after Done: SlackMs %d", s)
	}
}

// TestMeterSlackCoversRealTime: at any moment, the applied clock plus
// SlackMs is at least the real time elapsed since the meter started, so a
// deadline of clock+TTL+slack is never before real start+TTL.
func TestMeterSlackCoversRealTime(t *testing.T) {
	c := &fakeClock{t: time.Unix(0, 0)}
	start := c.t
	m := lease.NewMeter(c.now, 0)
	var applied int64
	var inflight []int64
	for i := 0; i < 5000; i++ {
		switch i % 7 {
		case 0, 3:
			inflight = append(inflight, m.TakeMs())
		case 5:
			if len(inflight) > 0 {
				applied += inflight[0]
				m.Done(inflight[0])
				inflight = inflight[1:]
			}
		default:
			c.advance(time.Duration(i%13*977+i%3) * time.Microsecond)
		}
		real := c.t.Sub(start)
		if covered := time.Duration(applied+m.SlackMs()) * time.Millisecond; covered < real {
			t.Fatalf("step %d: applied %d ms + slack %d ms < real %v", i, applied, m.SlackMs(), real)
		}
	}
}

// TestMeterConcurrent: the leader's ticker takes while proposers read the
// slack; run with -race.
func TestMeterConcurrent(t *testing.T) {
	m := lease.NewMeter(time.Now, time.Second)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 2000; i++ {
			if s := m.SlackMs(); s < 0 {
				t.Errorf("negative slack %d", s)
				return
			}
		}
	}()
	for i := 0; i < 2000; i++ {
		m.Done(m.TakeMs())
	}
	<-done
}

// TestMeterSampleSpansLongGapsBetweenTicks: ticks may be a minute apart
// (they follow lease deadlines); sampled every interval, the whole minute
// is counted, while one stall longer than the cap still counts only the
// cap. Slack covers everything measured and not yet taken.
func TestMeterSampleSpansLongGapsBetweenTicks(t *testing.T) {
	c, m := meterAfterAMinute((*lease.Meter).Sample)
	if s, got := m.SlackMs(), m.TakeMs(); s != 60_300 || got != 60_300 {
		t.Fatalf("after a sampled minute: SlackMs %d, TakeMs %d, want 60300 both", s, got)
	}
	m.Done(60_300)
	c.advance(time.Minute) // a stall: no sample ran
	if s := m.SlackMs(); s != 2000 {
		t.Fatalf("SlackMs across a stall = %d, want the 2000 cap", s)
	}
	m.Sample()
	c.advance(100 * time.Millisecond)
	if got := m.TakeMs(); got != 2100 {
		t.Fatalf("TakeMs after a stall = %d, want 2100", got)
	}
}

// TestMeterSkipDropsIdleTime: while no lease is alive the leader skips
// rather than samples, so a grant after an idle minute carries only the
// time since the last skip as slack, and the next tick carries no more.
func TestMeterSkipDropsIdleTime(t *testing.T) {
	c, m := meterAfterAMinute((*lease.Meter).Skip)
	if s, got := m.SlackMs(), m.TakeMs(); s != 300 || got != 300 {
		t.Fatalf("after an idle minute: SlackMs %d, TakeMs %d, want 300 both", s, got)
	}
	// What ticks in flight carry is not dropped: it is already on its way
	// into the clock.
	inflight := m.TakeMs()
	c.advance(400 * time.Millisecond)
	m.Skip()
	if s := m.SlackMs(); s != 300+inflight {
		t.Fatalf("SlackMs with a tick in flight after Skip = %d, want %d", s, 300+inflight)
	}
}

// meterAfterAMinute runs a meter through a minute of 500 ms intervals,
// calling step at each, then 300 ms more.
func meterAfterAMinute(step func(*lease.Meter)) (*fakeClock, *lease.Meter) {
	c := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	m := lease.NewMeter(c.now, 2*time.Second)
	for range 120 {
		c.advance(500 * time.Millisecond)
		step(m)
	}
	c.advance(300 * time.Millisecond)
	return c, m
}
