package lease

import "time"

// Meter measures, on the leader, how far the replicated lease clock should
// advance with the next tick. It starts when leadership starts, so time spent
// without a leader is never counted.
//
// Each Take consumes the time measured so far, whether or not the tick that
// carries it commits: a lost tick makes leases live longer, never shorter,
// which keeps the promise that a lease never expires before its TTL.
type Meter struct {
	now  func() time.Time
	last time.Time
	max  time.Duration
}

// NewMeter starts measuring at now(). max caps what one Take returns (0: no
// cap) so that a stalled process cannot jump the clock by minutes at once;
// capping errs on the side of leases living longer.
func NewMeter(now func() time.Time, max time.Duration) *Meter {
	return &Meter{now: now, last: now(), max: max}
}

// TakeMs returns the whole milliseconds elapsed since the measurement
// (re)started and restarts it. The sub-millisecond remainder is carried to
// the next call, so the lease clock does not drift behind real time.
func (m *Meter) TakeMs() int64 {
	t := m.now()
	d := t.Sub(m.last)
	if d <= 0 {
		return 0
	}
	if m.max > 0 && d > m.max {
		m.last = t
		return m.max.Milliseconds()
	}
	ms := d.Milliseconds()
	m.last = m.last.Add(time.Duration(ms) * time.Millisecond)
	return ms
}
