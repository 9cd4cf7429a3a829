package resp

import (
	"fmt"
	"math"
	"sort"

	"github.com/rosterhq/roster/fsm"
	"github.com/rosterhq/roster/registry"
)

// dryRun is how EXEC plays a transaction: on the state machine itself,
// without proposing. Starting from one linearizable state, each queued
// write (the command a pipeline would propose) is previewed on the state
// the writes before it left (fsm.State.Preview), so its answer is the
// state machine's, and the reads after it see it. Nothing here restates
// a rule of the state machine.
//
// It records every key the transaction read, wrote or watched: the Txn
// it proposes (txn) compares each on the mod revision the state read had
// for it, so that it applies only to the state the answers came from.
type dryRun struct {
	base     *fsm.State // the state read
	cur      *fsm.State // the state the writes so far leave
	maxValue int
	keys     map[string]bool // read, written or watched
	lastID   int64           // the last provisional lease ID given out
}

func newDryRun(st *fsm.State, maxValue int) *dryRun {
	return &dryRun{base: st, cur: st, maxValue: maxValue, keys: make(map[string]bool), lastID: st.MaxLeaseID()}
}

// Get is the key as the transaction sees it.
func (d *dryRun) Get(key string) (*fsm.KV, bool) {
	d.keys[key] = true
	return d.cur.Get(key)
}

// Lease is a lease of the state, or one the transaction granted (its
// full TTL: it starts when the Txn applies).
func (d *dryRun) Lease(id int64) (fsm.LeaseStatus, bool) { return d.cur.Lease(id) }

func (d *dryRun) LeaseRemainingMs(id int64) (int64, bool) { return d.cur.LeaseRemainingMs(id) }

// watch records a watched key, compared like the ones read.
func (d *dryRun) watch(key string) { d.keys[key] = true }

// apply previews one write the port builds (a Put, Delete, Incr, or a Txn
// of grants, puts and deletes) as it would be proposed: the node's value
// limit checked first, as the node checks it before proposing, and the
// lease IDs of its grants chosen (provisional); a refused write changes
// nothing. Its answer may depend on any key it names, so each is
// compared at commit.
func (d *dryRun) apply(c fsm.Command) (fsm.Result, error) {
	var ops []fsm.Command
	switch c := c.(type) {
	case fsm.Txn:
		ops = c.Ops
	default:
		ops = []fsm.Command{c}
	}
	for _, op := range ops {
		switch op := op.(type) {
		case fsm.Put:
			d.keys[op.Key] = true
			if err := registry.CheckValueSize(op.Value, d.maxValue); err != nil {
				return fsm.Result{}, err
			}
		case fsm.Delete:
			d.keys[op.Key] = true
		case fsm.Incr:
			d.keys[op.Key] = true
		}
	}
	if t, ok := c.(fsm.Txn); ok {
		resolved, err := registry.ResolveTxnLeases(t.Ops, d.pick)
		if err != nil {
			return fsm.Result{}, err
		}
		c = fsm.Txn{Ops: resolved}
	}
	r, next := d.cur.Preview(fsm.StrictDeadlines(c))
	if r.Err != nil {
		return r, r.Err
	}
	d.cur = next
	return r, nil
}

// pick is the ID of a lease the transaction grants, for the dry run
// only: above every ID the state read has seen, so it names no lease of
// that state. The Txn proposed lets the leader choose the real IDs, as
// every grant of this port does; no answer shows one.
func (d *dryRun) pick(int) (int64, error) {
	if d.lastID == math.MaxInt64 {
		return 0, fmt.Errorf("%w: no lease ID above the largest one ever granted", fsm.ErrInvalidArgument)
	}
	d.lastID++
	return d.lastID, nil
}

// granted says whether lease id is one the transaction granted.
func (d *dryRun) granted(id int64) bool { return id > d.base.MaxLeaseID() }

// txn is what the transaction proposes: a grant for each lease it
// granted that a key ends on, then, in key order, each key it read,
// wrote or watched, compared on its mod revision in the state read (0:
// absent): a put of its value and lease now when it was written, a delete
// when it is gone, else a compare-only fsm.Check. propose names the
// grants' leases by placeholder (registry.TxnLease) for the leader to
// choose; preview is the same Txn with the dry run's lease IDs, for
// fsm.State.Preview on the state read. wrote is false when no key
// changed: then there is nothing to propose.
func (d *dryRun) txn() (propose, preview fsm.Txn, wrote bool) {
	keys := make([]string, 0, len(d.keys))
	for k := range d.keys {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	both := func(p, v fsm.Command) {
		propose.Ops = append(propose.Ops, p)
		preview.Ops = append(preview.Ops, v)
	}
	grantAt := make(map[int64]int) // a lease granted here → its grant's index
	for _, k := range keys {
		kv, ok := d.cur.Get(k)
		if !ok || !d.granted(kv.Lease) {
			continue
		}
		if _, seen := grantAt[kv.Lease]; !seen {
			l, _ := d.cur.Lease(kv.Lease)
			grantAt[kv.Lease] = len(propose.Ops)
			both(fsm.Grant{TTL: l.TTL, Name: l.Name}, fsm.Grant{ID: kv.Lease, TTL: l.TTL, Name: l.Name})
		}
	}
	for _, k := range keys {
		was, existed := d.base.Get(k)
		var rev int64
		if existed {
			rev = was.ModRevision
		}
		kv, exists := d.cur.Get(k)
		switch {
		case exists && kv.ModRevision != rev:
			put := fsm.Put{Key: k, Value: kv.Value, Lease: kv.Lease, HasCAS: true, CAS: rev, DropOldLease: true}
			v := put
			if i, ok := grantAt[kv.Lease]; ok {
				put.Lease = registry.TxnLease(i)
			}
			both(put, v)
			wrote = true
		case !exists && existed:
			del := fsm.Delete{Key: k, HasCAS: true, CAS: rev, DropOldLease: true}
			both(del, del)
			wrote = true
		default:
			check := fsm.Check{Key: k, ModRevision: rev}
			both(check, check)
		}
	}
	return propose, preview, wrote
}
