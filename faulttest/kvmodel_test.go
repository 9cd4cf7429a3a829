package faulttest

import (
	"fmt"
	"strings"

	"github.com/anishathalye/porcupine"
)

// The porcupine model of one key (the history is partitioned by key, so
// each key is checked on its own and checking stays fast). Values are
// integers: puts write unique ones, incr adds to them.
//
// One model serves both front ends, whose operations on a key share one
// history: HTTP (put, cas, get, delete, incr) and the Redis port (GET,
// SET, SET … NX as create, DEL, INCR/INCRBY, and MULTI/EXEC of those on
// one key as txn). The Redis port reports no revisions: its answers carry
// Rev 0, and a change without a known revision leaves the key's ModRev
// unknown until a read over HTTP learns it. Every rule is in step.

type opKind int

const (
	opGet opKind = iota
	opPut
	opCAS
	opDelete
	opIncr
	opCreate // Redis SET k v NX: put only if absent
	opTxn    // Redis MULTI/EXEC: Txn's operations, atomically, in order
)

func (k opKind) String() string {
	return [...]string{"get", "put", "cas", "delete", "incr", "create", "txn"}[k]
}

// kvInput is what a client asked.
type kvInput struct {
	Kind   opKind
	Key    string
	Value  int64     // put, cas
	Expect int64     // cas: the mod_revision expected (0: absent)
	By     int64     // incr
	Txn    []kvInput // txn: its operations, all on Key
}

// kvOutput is what it was answered. Unknown: the outcome is not known
// (the operation's return is then the end of the history).
type kvOutput struct {
	Unknown   bool
	Found     bool       // get
	Value     int64      // get, incr
	Rev       int64      // get: mod_revision; writes: the revision of the change
	Deleted   int64      // delete
	CASFailed bool       // cas: 409 cas_failed
	Current   int64      // cas_failed: current_mod_revision
	NotInt    bool       // incr: 400, the value is not an integer
	Created   bool       // create: +OK (else the nil reply: the key existed)
	Txn       []kvOutput // txn: one answer per operation (none when Unknown)
}

// kvState is one key. ModRev is -1 when a change whose revision was never
// seen wrote it (an operation of unknown outcome, or one over the Redis
// port); the next read over HTTP learns it.
type kvState struct {
	Exists bool
	Value  int64
	ModRev int64
}

const revUnknown = -1

// newerThan: a change's revision must exceed the key's current one (store
// revisions only grow), unless that one is unknown.
func (s kvState) newerThan(rev int64) bool { return s.ModRev == revUnknown || rev > s.ModRev }

// write is the key after a change to value answered with revision rev: 0
// (an unknown outcome, or the Redis port) leaves its ModRev unknown; a
// revision that does not exceed the key's is a violation (nil).
func (s kvState) write(value, rev int64) []any {
	if rev == 0 {
		return []any{kvState{Exists: true, Value: value, ModRev: revUnknown}}
	}
	if !s.newerThan(rev) {
		return nil
	}
	return []any{kvState{Exists: true, Value: value, ModRev: rev}}
}

func kvStep(st, in, out any) []any {
	return step(st.(kvState), in.(kvInput), out.(kvOutput))
}

// step is the model: the states a key in state s may be in after the
// operation i answered o (none: the answer is a violation).
func step(s kvState, i kvInput, o kvOutput) []any {
	switch i.Kind {
	case opGet:
		if o.Unknown {
			return []any{s} // only inside a txn of unknown outcome
		}
		if o.Found != s.Exists {
			return nil
		}
		if !o.Found {
			return []any{s}
		}
		if o.Value != s.Value {
			return nil
		}
		if o.Rev != 0 { // the Redis port reports none
			if s.ModRev != revUnknown && o.Rev != s.ModRev {
				return nil
			}
			s.ModRev = o.Rev
		}
		return []any{s}
	case opPut:
		return s.write(i.Value, o.Rev)
	case opCreate:
		if s.Exists {
			if o.Created {
				return nil
			}
			return []any{s}
		}
		if !o.Unknown && !o.Created {
			return nil
		}
		return s.write(i.Value, 0)
	case opTxn:
		return txnStep(s, i, o)
	case opCAS:
		return casStep(s, i, o)
	case opDelete:
		if o.Unknown {
			return []any{kvState{}}
		}
		if want := map[bool]int64{true: 1, false: 0}[s.Exists]; o.Deleted != want {
			return nil
		}
		return []any{kvState{}}
	case opIncr:
		base := int64(0)
		if s.Exists {
			base = s.Value
		}
		if o.NotInt {
			return nil // every value written here is an integer
		}
		if !o.Unknown && o.Value != base+i.By {
			return nil
		}
		return s.write(base+i.By, o.Rev)
	}
	return nil
}

// txnStep plays a transaction's operations in order, each on the state
// the one before left, as EXEC applies them in one raft entry. Of unknown
// outcome, every operation happened (porcupine may still place the whole
// transaction after every other operation: it did not happen).
func txnStep(s kvState, i kvInput, o kvOutput) []any {
	if !o.Unknown && len(o.Txn) != len(i.Txn) {
		return nil
	}
	states := []any{s}
	for k, sub := range i.Txn {
		so := kvOutput{Unknown: true}
		if !o.Unknown {
			so = o.Txn[k]
		}
		var next []any
		for _, st := range states {
			next = append(next, step(st.(kvState), sub, so)...)
		}
		if states = next; len(states) == 0 {
			return nil
		}
	}
	return states
}

// casStep: a CAS succeeds exactly when the key's mod_revision is the one
// expected (0: absent). When the current revision is unknown, both
// outcomes are possible and what the answer says is learned.
func casStep(s kvState, i kvInput, o kvOutput) []any {
	written := kvState{Exists: true, Value: i.Value, ModRev: o.Rev}
	var match, known bool
	switch {
	case !s.Exists:
		match, known = i.Expect == 0, true
	case s.ModRev == revUnknown && i.Expect == 0:
		match, known = false, true // it exists: "absent" cannot match
	case s.ModRev == revUnknown:
		match, known = false, false // may match, may not
	default:
		match, known = s.ModRev == i.Expect, true
	}
	switch {
	case o.Unknown:
		written.ModRev = revUnknown
		if known && match {
			return []any{written}
		}
		if known {
			return []any{s}
		}
		return []any{written, s}
	case o.CASFailed:
		if known && match {
			return nil
		}
		cur := int64(0)
		if s.Exists {
			cur = s.ModRev
		}
		if s.Exists && s.ModRev == revUnknown {
			if o.Current == i.Expect || o.Current <= 0 {
				return nil
			}
			s.ModRev = o.Current
			return []any{s}
		}
		if o.Current != cur {
			return nil
		}
		return []any{s}
	default:
		if known && !match || !s.newerThan(o.Rev) {
			return nil
		}
		return []any{written}
	}
}

var kvModel = porcupine.NondeterministicModel{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range history {
			k := op.Input.(kvInput).Key
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() []any { return []any{kvState{}} },
	Step: kvStep,
	// Without a hash porcupine keeps every state reached with the same set
	// of linearized operations in one list; incr and unknown outcomes make
	// many, and a soak's hardest keys then took minutes.
	Hash: func(st any) uint64 {
		s := st.(kvState)
		h := uint64(s.Value)*0x9e3779b97f4a7c15 ^ uint64(s.ModRev)*0xbf58476d1ce4e5b9
		if s.Exists {
			h ^= 0x94d049bb133111eb
		}
		return h
	},
	DescribeOperation: func(in, out any) string { return describe(in.(kvInput), out.(kvOutput)) },
	DescribeState: func(st any) string {
		s := st.(kvState)
		if !s.Exists {
			return "absent"
		}
		if s.ModRev == revUnknown {
			return fmt.Sprintf("%d @?", s.Value)
		}
		return fmt.Sprintf("%d @%d", s.Value, s.ModRev)
	},
}

// describe names an operation and its answer in porcupine's
// visualisation; "@0" is a revision the Redis port did not report.
func describe(i kvInput, o kvOutput) string {
	var call string
	switch i.Kind {
	case opGet:
		call = "get(" + i.Key + ")"
	case opPut:
		call = fmt.Sprintf("put(%s, %d)", i.Key, i.Value)
	case opCAS:
		call = fmt.Sprintf("cas(%s, rev %d, %d)", i.Key, i.Expect, i.Value)
	case opDelete:
		call = "delete(" + i.Key + ")"
	case opIncr:
		call = fmt.Sprintf("incr(%s, %d)", i.Key, i.By)
	case opCreate:
		call = fmt.Sprintf("create(%s, %d)", i.Key, i.Value)
	case opTxn:
		parts := make([]string, len(i.Txn))
		for k, sub := range i.Txn {
			so := kvOutput{Unknown: true}
			if k < len(o.Txn) {
				so = o.Txn[k]
			}
			parts[k] = describe(sub, so)
		}
		if o.Unknown {
			return "txn[" + strings.Join(parts, "; ") + "] -> unknown"
		}
		return "txn[" + strings.Join(parts, "; ") + "]"
	}
	switch {
	case o.Unknown:
		return call + " -> unknown"
	case i.Kind == opGet && !o.Found:
		return call + " -> not found"
	case i.Kind == opGet:
		return fmt.Sprintf("%s -> %d @%d", call, o.Value, o.Rev)
	case i.Kind == opCreate && !o.Created:
		return call + " -> existed"
	case o.CASFailed:
		return fmt.Sprintf("%s -> cas_failed (current %d)", call, o.Current)
	case o.NotInt:
		return call + " -> not an integer"
	case i.Kind == opDelete:
		return fmt.Sprintf("%s -> deleted %d @%d", call, o.Deleted, o.Rev)
	case i.Kind == opIncr:
		return fmt.Sprintf("%s -> %d @%d", call, o.Value, o.Rev)
	}
	return fmt.Sprintf("%s -> ok @%d", call, o.Rev)
}
