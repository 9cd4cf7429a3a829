package resp

import (
	"fmt"
	"sort"
	"strconv"

	"github.com/rosterhq/roster/fsm"
	"github.com/rosterhq/roster/registry"
)

// overlay is a transaction's view of one state: the state as read, with
// the transaction's own writes on top. EXEC plays the queued commands on
// it (the same command builders a pipeline proposes, applied here instead
// of proposed), then proposes what it wrote as one Txn (ops).
//
// It records every key the transaction looked at, with the mod revision
// the state had for it: the Txn compares each of them, so that it applies
// only to the state the answers were computed from.
type overlay struct {
	st       *fsm.State
	maxValue int
	kv       map[string]*fsm.KV // keys written: their value now, nil when deleted
	base     map[string]int64   // keys read, written or watched: their mod revision in st (0: absent)
	leases   map[int64]int64    // leases the transaction grants (IDs below 0): TTL in seconds
	rev      int64              // the last mod revision given to a write here
}

func newOverlay(st *fsm.State, maxValue int) *overlay {
	return &overlay{
		st: st, maxValue: maxValue, rev: st.Revision(),
		kv: make(map[string]*fsm.KV), base: make(map[string]int64), leases: make(map[int64]int64),
	}
}

// Get is the key as the transaction sees it.
func (o *overlay) Get(key string) (*fsm.KV, bool) {
	if kv, ok := o.kv[key]; ok {
		return kv, kv != nil
	}
	if _, seen := o.base[key]; !seen {
		o.base[key] = modRevision(o.st, key)
	}
	return o.st.Get(key)
}

// Lease is a lease of the state, or one the transaction grants (at its
// full TTL: it starts when the Txn applies).
func (o *overlay) Lease(id int64) (fsm.LeaseStatus, bool) {
	if id < 0 {
		ttl, ok := o.leases[id]
		return fsm.LeaseStatus{ID: id, TTL: ttl, Remaining: ttl}, ok
	}
	return o.st.Lease(id)
}

func (o *overlay) LeaseRemainingMs(id int64) (int64, bool) {
	if id < 0 {
		ttl, ok := o.leases[id]
		return ttl * 1000, ok
	}
	return o.st.LeaseRemainingMs(id)
}

// wrote says whether the transaction wrote anything.
func (o *overlay) wrote() bool { return len(o.kv) > 0 }

// apply applies one write the port builds (a Put, Delete, Incr, or a Txn
// of grants, puts and deletes) as the state machine would, with the
// node's value limit.
func (o *overlay) apply(c fsm.Command) (fsm.Result, error) {
	switch c := c.(type) {
	case fsm.Put:
		if err := o.checkPut(c); err != nil {
			return fsm.Result{}, err
		}
		return o.put(c, nil), nil
	case fsm.Delete:
		if err := o.checkCAS(c.Key, c.HasCAS, c.CAS); err != nil {
			return fsm.Result{}, err
		}
		return o.del(c.Key), nil
	case fsm.Incr:
		return o.incr(c)
	case fsm.Txn:
		return o.txn(c)
	}
	return fsm.Result{}, fmt.Errorf("%w: a transaction cannot hold %T", fsm.ErrInvalidArgument, c)
}

// checkCAS is a compare on key's mod revision as the state machine does it.
func (o *overlay) checkCAS(key string, has bool, want int64) error {
	if !has {
		return nil
	}
	var cur int64
	if kv, ok := o.Get(key); ok {
		cur = kv.ModRevision
	}
	if cur != want {
		return &fsm.CASError{Current: cur}
	}
	return nil
}

// checkPut is what refuses a put: its compare, its value's size (as the
// node checks it), a lease that does not exist.
func (o *overlay) checkPut(c fsm.Put) error {
	if err := o.checkCAS(c.Key, c.HasCAS, c.CAS); err != nil {
		return err
	}
	if len(c.Value) > o.maxValue {
		return fmt.Errorf("%w: value is %d bytes, the limit is %d", registry.ErrTooLarge, len(c.Value), o.maxValue)
	}
	if c.Lease > 0 {
		if _, ok := o.Lease(c.Lease); !ok {
			return fsm.ErrLeaseNotFound
		}
	}
	return nil
}

// put stores a checked put; granted maps a Txn's lease placeholders
// (registry.TxnLease) to the leases its grants made here.
func (o *overlay) put(c fsm.Put, granted []int64) fsm.Result {
	prev, _ := o.Get(c.Key)
	lease := c.Lease
	if lease < 0 {
		lease = granted[-1-lease]
	}
	o.store(c.Key, c.Value, lease)
	return fsm.Result{Prev: prev}
}

func (o *overlay) del(key string) fsm.Result {
	prev, ok := o.Get(key)
	if !ok {
		return fsm.Result{}
	}
	o.kv[key] = nil
	return fsm.Result{Deleted: 1, Prev: prev}
}

func (o *overlay) store(key string, value []byte, lease int64) {
	o.rev++
	o.kv[key] = &fsm.KV{Key: key, Value: value, ModRevision: o.rev, Lease: lease}
}

// incr is fsm's Incr (fsm.Incr.Next): the key keeps its lease.
func (o *overlay) incr(c fsm.Incr) (fsm.Result, error) {
	prev, _ := o.Get(c.Key)
	next, write, err := c.Next(prev)
	if err != nil {
		return fsm.Result{}, err
	}
	if write {
		var lease int64
		if prev != nil {
			lease = prev.Lease
		}
		o.store(c.Key, []byte(strconv.FormatInt(next, 10)), lease)
	}
	return fsm.Result{Value: next, Prev: prev}, nil
}

// txn checks every operation first and applies them only when all hold,
// as the state machine's Txn does.
func (o *overlay) txn(c fsm.Txn) (fsm.Result, error) {
	for _, op := range c.Ops {
		var err error
		switch op := op.(type) {
		case fsm.Put:
			err = o.checkPut(op)
		case fsm.Delete:
			err = o.checkCAS(op.Key, op.HasCAS, op.CAS)
		case fsm.Grant:
		default:
			err = fmt.Errorf("%w: a txn cannot hold %T", fsm.ErrInvalidArgument, op)
		}
		if err != nil {
			return fsm.Result{}, err
		}
	}
	granted := make([]int64, len(c.Ops))
	out := make([]fsm.Result, 0, len(c.Ops))
	for i, op := range c.Ops {
		switch op := op.(type) {
		case fsm.Grant:
			id := -1 - int64(len(o.leases))
			o.leases[id] = op.TTL
			granted[i] = id
			out = append(out, fsm.Result{})
		case fsm.Put:
			out = append(out, o.put(op, granted))
		case fsm.Delete:
			out = append(out, o.del(op.Key))
		}
	}
	return fsm.Result{Ops: out}, nil
}

// ops is the Txn of the transaction: a grant for each lease a key ends
// on, then, in key order, each key written (compared on its revision as
// read) and each key only read or watched, compared without a change
// (fsm.Check).
func (o *overlay) ops() []fsm.Command {
	keys := make([]string, 0, len(o.base))
	for k := range o.base {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var ops []fsm.Command
	grantAt := make(map[int64]int) // a lease granted here → its grant's index
	for _, k := range keys {
		if kv := o.kv[k]; kv != nil && kv.Lease < 0 {
			if _, ok := grantAt[kv.Lease]; !ok {
				grantAt[kv.Lease] = len(ops)
				ops = append(ops, fsm.Grant{TTL: o.leases[kv.Lease], Name: k})
			}
		}
	}
	for _, k := range keys {
		rev := o.base[k]
		kv, written := o.kv[k]
		switch {
		case written && kv == nil:
			ops = append(ops, fsm.Delete{Key: k, HasCAS: true, CAS: rev, DropOldLease: true})
		case written:
			lease := kv.Lease
			if lease < 0 {
				lease = registry.TxnLease(grantAt[lease])
			}
			ops = append(ops, fsm.Put{Key: k, Value: kv.Value, Lease: lease, HasCAS: true, CAS: rev, DropOldLease: true})
		default:
			ops = append(ops, fsm.Check{Key: k, ModRevision: rev})
		}
	}
	return ops
}
