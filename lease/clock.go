package lease

import (
	"sync"
	"time"
)

// Meter measures, on the leader, how far the replicated lease clock should
// advance with the next tick. It starts when leadership starts, so time spent
// without a leader is never counted.
//
// Each TakeMs consumes the time measured so far, whether or not the tick
// that carries it commits: a lost tick makes leases live longer, never
// shorter, which keeps the promise that a lease never expires before its
// TTL.
//
// The replicated clock lags real time by the time not yet carried by a
// committed tick. SlackMs reports that lag so grants and renewals can add
// it to their deadlines; without it a lease renewed just before a tick
// could expire up to one tick early.
type Meter struct {
	now func() time.Time
	max time.Duration

	mu       sync.Mutex
	last     time.Time // real time measured up to here
	acc      int64     // ms measured, not yet taken
	inflight int64     // ms taken by ticks not yet known to be applied
}

// NewMeter starts measuring at now(). max caps what one measurement step
// counts (0: no cap) so that a stalled process cannot jump the clock by
// minutes at once; capping errs on the side of leases living longer. Since
// ticks may be far apart (none while no lease is alive), the owner calls
// Sample about once a tick interval: the cap then applies per interval,
// not per tick.
func NewMeter(now func() time.Time, max time.Duration) *Meter {
	return &Meter{now: now, last: now(), max: max}
}

// Sample adds the whole milliseconds elapsed since the last measurement to
// what the next TakeMs returns (at most max of them: a longer gap means the
// process stalled). The sub-millisecond remainder is carried, so the lease
// clock does not drift behind real time.
func (m *Meter) Sample() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sample()
}

func (m *Meter) sample() {
	t := m.now()
	d := t.Sub(m.last)
	if d <= 0 {
		return
	}
	if m.max > 0 && d > m.max {
		m.last = t
		m.acc += m.max.Milliseconds()
		return
	}
	ms := d.Milliseconds()
	m.last = m.last.Add(time.Duration(ms) * time.Millisecond)
	m.acc += ms
}

// Skip drops the time measured and not yet taken, and measures again from
// now. The leader calls it while no lease is alive: nothing depends on the
// lease clock then, and the first lease granted afterwards must count from
// its grant. Carried instead, the idle time would be in the slack of every
// grant proposed before the next tick took it, and a grant applied after
// that tick would count it twice: it would live as much longer as the
// cluster had been idle (peerbench saw leases outlive a 5 s TTL by minutes
// after a run without leases).
func (m *Meter) Skip() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.last = m.now()
	m.acc = 0
}

// TakeMs returns the milliseconds measured since the last TakeMs (Sample
// included) and starts again. The caller reports the tick's fate with
// Done.
func (m *Meter) TakeMs() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sample()
	ms := m.acc
	m.acc = 0
	m.inflight += ms
	return ms
}

// Done records that the tick carrying ms (from TakeMs) was applied or
// definitely failed.
func (m *Meter) Done(ms int64) {
	m.mu.Lock()
	m.inflight -= ms
	m.mu.Unlock()
}

// SlackMs is how far the applied lease clock will advance for time that
// has already passed: what is measured and not taken, the time since the
// last measurement rounded up (capped like a sample), and what ticks in
// flight carry.
func (m *Meter) SlackMs() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.now().Sub(m.last)
	if d < 0 {
		d = 0
	}
	if m.max > 0 && d > m.max {
		d = m.max
	}
	return m.acc + int64((d+time.Millisecond-1)/time.Millisecond) + m.inflight
}
