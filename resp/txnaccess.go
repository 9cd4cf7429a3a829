package resp

import (
	"github.com/rosterhq/roster/fsm"
)

// mayPlay checks a write EXEC just played on the dry run (d, from the
// state before: before) for what the rules ask of the puts the
// transaction will propose for the keys it changed (dryRun.txn: a put of
// the key's value on its lease now): a key kept on a lease of the state
// read (INCR, SET … KEEPTTL) needs what renewing that lease needs. A
// write refused so is undone on the dry run and answers NOPERM inside
// EXEC's array, the rest applying, as a command no longer permitted does
// (play), instead of the whole transaction being refused when it is
// proposed (casLoop's check of the Txn, which stays as the backstop).
func (s *session) mayPlay(d *dryRun, before *fsm.State, c fsm.Command) error {
	for _, k := range writtenKeys(c) {
		kv, ok := d.cur.Get(k)
		if !ok || kv.Lease == 0 || d.granted(kv.Lease) {
			continue // gone, on no lease, or on one the transaction grants
		}
		if was, ok := before.Get(k); ok && was.ModRevision == kv.ModRevision {
			continue // not changed by this write
		}
		if err := s.mayPropose(d.base, fsm.Put{Key: k, Lease: kv.Lease}); err != nil {
			d.cur = before
			return err
		}
	}
	return nil
}

// writtenKeys lists the keys a write the port builds names.
func writtenKeys(c fsm.Command) []string {
	switch c := c.(type) {
	case fsm.Put:
		return []string{c.Key}
	case fsm.Delete:
		return []string{c.Key}
	case fsm.Incr:
		return []string{c.Key}
	case fsm.Txn:
		var keys []string
		for _, op := range c.Ops {
			keys = append(keys, writtenKeys(op)...)
		}
		return keys
	}
	return nil
}
