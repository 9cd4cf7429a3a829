package fsm

import (
	"bytes"
	"fmt"
)

// txn applies a Txn: first every condition is checked against the state as
// the operations before it would leave it, and only when all hold are the
// operations applied, through the same batch methods as the single
// commands (so the batch's change tracking records them). A refused Txn
// changed nothing.
func (b *batch) txn(c Txn) Result {
	if err := b.checkTxn(c); err != nil {
		return Result{Err: err, Revision: b.s.revision}
	}
	out := make([]Result, 0, len(c.Ops))
	var left []*KV              // keys taken off a lease by a write with DropOldLease
	var unused []int64          // leases granted here for a put with Only not made
	granted := map[int64]bool{} // lookups only
	for _, op := range c.Ops {
		switch op := op.(type) {
		case Grant:
			out = append(out, b.grant(op))
			granted[op.ID] = true
		case Incr: // its failure is its own result's, changing nothing
			out = append(out, b.incr(op))
		case Put:
			prev, _ := b.s.Get(op.Key)
			if !op.Only.Holds(prev) {
				if granted[op.Lease] {
					unused = append(unused, op.Lease)
				}
				out = append(out, Result{Revision: b.s.revision, Prev: prev})
				continue
			}
			if !(op.IfChanged && prev != nil && prev.Lease == op.Lease && bytes.Equal(prev.Value, op.Value)) {
				b.store(op.Key, op.Value, op.Lease, prev)
				if op.DropOldLease && oldLease(prev, op.Lease) != 0 {
					left = append(left, prev)
				}
			}
			out = append(out, Result{Revision: b.s.revision, Prev: prev})
		case Check: // compared in checkTxn; writes nothing
			out = append(out, Result{Revision: b.s.revision})
		case Delete:
			r := Result{Revision: b.s.revision}
			if prev, ok := b.s.Get(op.Key); ok {
				b.deleteKeys([]string{op.Key})
				r = Result{Revision: b.s.revision, Deleted: 1, Prev: prev}
				if op.DropOldLease && prev.Lease != 0 {
					left = append(left, prev)
				}
			}
			out = append(out, r)
		}
	}
	// Once every operation applied: a later one may have put a key on
	// the lease an earlier one left.
	for _, prev := range left {
		b.dropOldLease(prev, 0)
	}
	// A lease granted for a put with Only that wrote nothing (SET … NX EX
	// of a key that exists) goes too when no operation put a key on it:
	// it would stay, keyless, until its TTL ran out.
	for _, id := range unused {
		if _, ok := b.s.leases.Get(id); ok && !b.s.leases.HasKeys(id) {
			b.dropLease(id)
		}
	}
	return Result{Revision: b.s.revision, Ops: out}
}

// checkTxn checks a Txn's shape and conditions without changing anything.
// No key appears twice, so every CAS compares against the state before the
// Txn; a lease a Put names may also be granted by an earlier operation.
// Maps serve lookups only: no outcome depends on their order.
func (b *batch) checkTxn(c Txn) error {
	granted := make(map[int64]bool)
	keys := make(map[string]bool, len(c.Ops))
	for i, op := range c.Ops {
		var err error
		switch op := op.(type) {
		case Grant:
			if _, ok := b.s.leases.Get(op.ID); ok || granted[op.ID] {
				err = ErrLeaseExists
			}
			granted[op.ID] = true
		case Put:
			if keys[op.Key] {
				err = invalid("key %q appears twice", truncate(op.Key))
				break
			}
			keys[op.Key] = true
			if op.Lease != 0 {
				if !b.s.leaseAlive(op.Lease, op.Strict) && !granted[op.Lease] {
					err = ErrLeaseNotFound
					break
				}
			}
			prev, exists := b.s.Get(op.Key)
			err = checkCAS(op.HasCAS, op.CAS, prev, exists)
		case Delete:
			if op.Prefix {
				err = invalid("a prefix delete cannot be part of a txn")
				break
			}
			if keys[op.Key] {
				err = invalid("key %q appears twice", truncate(op.Key))
				break
			}
			keys[op.Key] = true
			prev, exists := b.s.Get(op.Key)
			err = checkCAS(op.HasCAS, op.CAS, prev, exists)
		case Incr: // no condition: evaluated as it applies
			if keys[op.Key] {
				err = invalid("key %q appears twice", truncate(op.Key))
				break
			}
			keys[op.Key] = true
		case Check:
			if keys[op.Key] {
				err = invalid("key %q appears twice", truncate(op.Key))
				break
			}
			keys[op.Key] = true
			prev, exists := b.s.Get(op.Key)
			err = checkCAS(true, op.ModRevision, prev, exists)
		default:
			err = invalid("a txn cannot hold %T", op)
		}
		if err != nil {
			return fmt.Errorf("txn operation %d: %w", i+1, err)
		}
	}
	return nil
}
