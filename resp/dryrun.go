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
// It records every key the transaction read, wrote or watched, and how
// the transaction first met it: the Txn it proposes (txn) compares each
// key whose state read an answer or a write may depend on, on the mod
// revision the state read had for it, so that it applies only to the
// state the answers came from. A key the transaction first overwrote
// blindly (a SET without options, SETEX, MSET: nothing it answers, and
// nothing it leaves, depends on what the key held) is not compared, as
// Redis's EXEC never fails for it: its writes apply over whatever a
// concurrent writer left, as the same commands would at the commit.
//
// A write carried into the Txn as apply-time operations (txnlate.go) is
// not compared when no other command touches its keys: at says which
// command plays, first which one first touched each key, shared which
// keys more than one touched (or a WATCH and a command).
type dryRun struct {
	base     *fsm.State // the state read
	cur      *fsm.State // the state the writes so far leave
	maxValue int
	keys     map[string]keyUse // read, written or watched
	lastID   int64             // the last provisional lease ID given out

	applyTime  bool // carry the writes that have an apply-time form (lateOf)
	at         int  // the command playing; -1 while watching
	first      map[string]int
	shared     map[string]bool
	carried    []carried
	proposedAt map[string]int // a key carried at apply time → its operation's index in the Txn
}

// carried is a command played at apply time: its position in the
// queue, its form, and its operations' results on the dry run.
type carried struct {
	at      int
	l       *lateCmd
	preview []fsm.Result
}

// keyUse is how a transaction first met a key.
type keyUse uint8

const (
	// compared: read, watched or written in a way that depends on the
	// key's state read (a condition, an answer, a kept lease).
	compared keyUse = iota + 1
	// overwritten: first written blindly; what the transaction answers
	// and leaves of it is the same whatever the key held.
	overwritten
)

func newDryRun(st *fsm.State, maxValue int, applyTime bool) *dryRun {
	return &dryRun{base: st, cur: st, maxValue: maxValue, keys: make(map[string]keyUse), lastID: st.MaxLeaseID(),
		applyTime: applyTime, at: -1, first: make(map[string]int), shared: make(map[string]bool), proposedAt: make(map[string]int)}
}

// meet records the first use of key; later uses change nothing (after a
// blind write, the transaction sees only what it wrote itself). It notes
// too whether another command than the first touches the key.
func (d *dryRun) meet(key string, u keyUse) {
	if i, ok := d.first[key]; !ok {
		d.first[key] = d.at
	} else if i != d.at || d.at < 0 {
		d.shared[key] = true
	}
	if d.keys[key] == 0 {
		d.keys[key] = u
	}
}

// carry records a command played at apply time, with its operations'
// results on the dry run.
func (d *dryRun) carry(l *lateCmd, preview []fsm.Result) {
	d.carried = append(d.carried, carried{at: d.at, l: l, preview: preview})
}

// lateOp is an operation carried at apply time, and for a put on a
// lease its command grants (SET … EX), that grant.
type lateOp struct {
	op    fsm.Command
	grant *fsm.Grant
}

// lateOps lists the operations carried at apply time by key: those of
// a carried command whose key no other command touched.
func (d *dryRun) lateOps() map[string]lateOp {
	ops := make(map[string]lateOp)
	for _, c := range d.carried {
		for _, op := range c.l.ops {
			k, ok := lateKey(op)
			if !ok || d.shared[k] {
				continue
			}
			lo := lateOp{op: op}
			if p, isPut := op.(fsm.Put); isPut && p.Lease < 0 {
				if g, isGrant := c.l.ops[-1-p.Lease].(fsm.Grant); isGrant {
					lo.grant = &g
				}
			}
			ops[k] = lo
		}
	}
	return ops
}

// answerLate answers again, in replies, each carried command of which
// an operation was evaluated at apply time, from res, the Txn's result
// (its other operations' results are the dry run's: their keys were
// compared).
func (d *dryRun) answerLate(res fsm.Result, replies []reply) {
	for _, c := range d.carried {
		rs := append([]fsm.Result(nil), c.preview...)
		late := false
		for j, op := range c.l.ops {
			k, ok := lateKey(op)
			if !ok {
				continue
			}
			if i, ok := d.proposedAt[k]; ok && i < len(res.Ops) {
				rs[j], late = res.Ops[i], true
			}
		}
		if late {
			replies[c.at] = c.l.answer(rs)
		}
	}
}

// Get is the key as the transaction sees it.
func (d *dryRun) Get(key string) (*fsm.KV, bool) {
	d.meet(key, compared)
	return d.cur.Get(key)
}

// Lease is a lease of the state, or one the transaction granted (its
// full TTL: it starts when the Txn applies).
func (d *dryRun) Lease(id int64) (fsm.LeaseStatus, bool) { return d.cur.Lease(id) }

func (d *dryRun) LeaseRemainingMs(id int64) (int64, bool) { return d.cur.LeaseRemainingMs(id) }

// watch records a watched key, compared like the ones read (never
// carried at apply time: EXEC answers nil when it changed).
func (d *dryRun) watch(key string) {
	d.meet(key, compared)
	d.shared[key] = true
}

// apply previews one write the port builds (a Put, Delete, Incr, or a Txn
// of grants, puts and deletes) as it would be proposed: the node's value
// limit checked first, as the node checks it before proposing, and the
// lease IDs of its grants chosen (provisional); a refused write changes
// nothing. Its answer may depend on any key it names, so each is
// compared at commit, unless blind says the command's answer shows
// nothing of its keys (see blindWrite) and it applied: then a key it
// meets first is overwritten, not compared.
func (d *dryRun) apply(c fsm.Command, blind bool) (fsm.Result, error) {
	var ops []fsm.Command
	switch c := c.(type) {
	case fsm.Txn:
		ops = c.Ops
	default:
		ops = []fsm.Command{c}
	}
	r, err := d.preview(c, ops)
	use := compared
	if blind && err == nil && blindWrite(ops) {
		use = overwritten
	}
	for _, k := range writtenKeys(c) {
		d.meet(k, use)
	}
	return r, err
}

// preview previews c (whose operations are ops) on the state so far and
// keeps the state it leaves when it applies.
func (d *dryRun) preview(c fsm.Command, ops []fsm.Command) (fsm.Result, error) {
	for _, op := range ops {
		if p, ok := op.(fsm.Put); ok {
			if err := registry.CheckValueSize(p.Value, d.maxValue); err != nil {
				return fsm.Result{}, err
			}
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

// blindWrite says whether ops write their keys whatever the keys hold:
// puts without a compare, on no lease or on one the same write grants,
// and grants. A delete is not (its answer counts the keys it found), nor
// an increment, nor a put that compares or keeps a lease of the state
// (so mayPlay, which refuses only a key kept on a lease of the state
// read, never undoes a blind write).
func blindWrite(ops []fsm.Command) bool {
	for _, op := range ops {
		switch op := op.(type) {
		case fsm.Grant:
		case fsm.Put:
			if op.HasCAS || op.Lease > 0 {
				return false
			}
		default:
			return false
		}
	}
	return true
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
// absent) when the transaction's answers or writes depend on it: a put
// of its value and lease now when it was written, a delete when it is
// gone, else a compare-only fsm.Check. A key it overwrote blindly is put
// or deleted as it ends, without a compare. A key carried at apply time
// (lateOps: written by one command only, whose answer depends on it)
// gets that command's operation, without a compare, when the
// transaction changes anything (else it proposes nothing, every answer
// holding of the state read). propose names the grants'
// leases by placeholder (registry.TxnLease) for the leader to choose;
// preview is the same Txn with the dry run's lease IDs, for
// fsm.State.Preview on the state read. wrote is false when no key
// changed: then there is nothing to propose (every answer holds of the
// state read, and so does what the transaction leaves).
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
	var late map[string]lateOp
	if d.changes(keys) {
		// Else nothing is proposed: every answer holds of the state read
		// (a SET … NX of a held lock, a DEL of absent keys), which never
		// plays again, and costs no entry.
		late = d.lateOps()
	}
	// A put whose command grants its lease costs one operation more
	// carried than compared when the play did not make it (a grant of
	// its own and the put, for a compare): only while the Txn stays
	// within its bound, which the compared form meets.
	room := registry.MaxTxnOps - len(propose.Ops) - len(keys)
	for _, k := range keys {
		if p, v, ok := d.lateForm(k, late[k], grantAt, len(propose.Ops), &room); ok {
			for i := range p {
				both(p[i], v[i])
			}
			d.proposedAt[k] = len(propose.Ops) - 1 // the key's operation comes last
			wrote = true                           // it may write whatever the dry run found
			continue
		}
		was, existed := d.base.Get(k)
		var rev int64
		if existed {
			rev = was.ModRevision
		}
		cas, casRev := d.keys[k] == compared, int64(0)
		if cas {
			casRev = rev
		}
		kv, exists := d.cur.Get(k)
		switch {
		case exists && kv.ModRevision != rev:
			put := fsm.Put{Key: k, Value: kv.Value, Lease: kv.Lease, HasCAS: cas, CAS: casRev, DropOldLease: true}
			v := put
			if i, ok := grantAt[kv.Lease]; ok {
				put.Lease = registry.TxnLease(i)
			}
			both(put, v)
			wrote = true
		case !exists && (existed || !cas):
			// Gone: deleted, compared or not. A key overwritten and
			// deleted again that was absent in the state read is deleted
			// too, unconditionally, in case a writer created it since:
			// the commands at the commit would leave it absent.
			del := fsm.Delete{Key: k, HasCAS: cas, CAS: casRev, DropOldLease: true}
			both(del, del)
			wrote = wrote || existed
		default:
			check := fsm.Check{Key: k, ModRevision: rev}
			both(check, check)
		}
	}
	return propose, preview, wrote
}

// changes says whether the dry run leaves any of keys otherwise than
// the state read had it.
func (d *dryRun) changes(keys []string) bool {
	for _, k := range keys {
		kv, exists := d.cur.Get(k)
		was, existed := d.base.Get(k)
		if exists != existed || exists && kv.ModRevision != was.ModRevision {
			return true
		}
	}
	return false
}

// lateForm is the apply-time operation lo of key k (none: ok false) as
// proposed (p) and as previewed (v), without a compare, with the grant it
// needs first when it needs one: a put on the lease its command granted
// names, when the dry run made it, the grant txn adds for the key's lease
// (grantAt), else (a SET … NX|XX EX that the dry run did not make) a
// grant of its own, which comes at index at, while room (the operations
// the Txn may still take beyond one per key) lasts.
func (d *dryRun) lateForm(k string, lo lateOp, grantAt map[int64]int, at int, room *int) (p, v []fsm.Command, ok bool) {
	if lo.op == nil {
		return nil, nil, false
	}
	put, isPut := lo.op.(fsm.Put)
	if !isPut || put.Lease == 0 {
		return []fsm.Command{lo.op}, []fsm.Command{lo.op}, true
	}
	pv := put
	if kv, exists := d.cur.Get(k); exists {
		if i, granted := grantAt[kv.Lease]; granted {
			pv.Lease, put.Lease = kv.Lease, registry.TxnLease(i)
			return []fsm.Command{put}, []fsm.Command{pv}, true
		}
	}
	if lo.grant == nil || *room <= 0 {
		return nil, nil, false
	}
	*room--
	id, err := d.pick(at)
	if err != nil {
		return nil, nil, false
	}
	g, gv := *lo.grant, *lo.grant
	g.ID, gv.ID = 0, id
	pv.Lease, put.Lease = id, registry.TxnLease(at)
	return []fsm.Command{g, put}, []fsm.Command{gv, pv}, true
}
