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
	last     time.Time
	inflight int64 // ms taken by ticks not yet known to be applied
}

// NewMeter starts measuring at now(). max caps what one TakeMs returns (0:
// no cap) so that a stalled process cannot jump the clock by minutes at
// once; capping errs on the side of leases living longer.
func NewMeter(now func() time.Time, max time.Duration) *Meter {
	return &Meter{now: now, last: now(), max: max}
}

// TakeMs returns the whole milliseconds elapsed since the measurement
// (re)started and restarts it. The sub-millisecond remainder is carried to
// the next call, so the lease clock does not drift behind real time. The
// caller reports the tick's fate with Done.
func (m *Meter) TakeMs() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := m.now()
	d := t.Sub(m.last)
	if d <= 0 {
		return 0
	}
	var ms int64
	if m.max > 0 && d > m.max {
		m.last = t
		ms = m.max.Milliseconds()
	} else {
		ms = d.Milliseconds()
		m.last = m.last.Add(time.Duration(ms) * time.Millisecond)
	}
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

// SlackMs is how far real time may be ahead of the applied lease clock:
// the time not yet taken, rounded up, plus what ticks in flight carry.
func (m *Meter) SlackMs() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.now().Sub(m.last)
	if d < 0 {
		d = 0
	}
	return int64((d+time.Millisecond-1)/time.Millisecond) + m.inflight
}
