package faulttest

import (
	"errors"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/rosterhq/roster/internal/cluster"
)

// The Redis side of the linearizability workload: its clients send RESP
// commands to random members' Redis ports, on the same keys as the HTTP
// clients (the RESP key k is the HTTP key /k, docs/redis.md), and record
// them in the same history, so one check covers both front ends.

// respInput picks a Redis operation: GET, SET, SET … NX, DEL, INCR or
// INCRBY, or a MULTI/EXEC of one to three of those on the key. A one-
// command transaction takes the apply-time path (INCR, DEL, SET NX travel
// as operations evaluated when the entry applies); several on one key are
// compared and played again when the key changed (docs/redis.md).
func respInput(rng *rand.Rand, key string, value func() int64) kvInput {
	if rng.IntN(100) < 20 {
		in := kvInput{Kind: opTxn, Key: key}
		for range 1 + rng.IntN(3) {
			in.Txn = append(in.Txn, respSingle(rng, key, value))
		}
		return in
	}
	return respSingle(rng, key, value)
}

func respSingle(rng *rand.Rand, key string, value func() int64) kvInput {
	in := kvInput{Key: key}
	switch p := rng.IntN(100); {
	case p < 35:
		in.Kind = opGet
	case p < 55:
		in.Kind, in.Value = opPut, value()
	case p < 70:
		in.Kind, in.Value = opCreate, value()
	case p < 82:
		in.Kind = opDelete
	default:
		in.Kind, in.By = opIncr, int64(1+rng.IntN(5))
	}
	return in
}

// respCommand is the RESP command of one (non-transaction) operation.
func respCommand(in kvInput) []string {
	k := strings.TrimPrefix(in.Key, "/")
	switch in.Kind {
	case opGet:
		return []string{"GET", k}
	case opPut:
		return []string{"SET", k, strconv.FormatInt(in.Value, 10)}
	case opCreate:
		return []string{"SET", k, strconv.FormatInt(in.Value, 10), "NX"}
	case opDelete:
		return []string{"DEL", k}
	case opIncr:
		if in.By == 1 {
			return []string{"INCR", k}
		}
		return []string{"INCRBY", k, strconv.FormatInt(in.By, 10)}
	}
	panic("resp: no command for " + in.Kind.String())
}

// respConns is one Redis client's connections, one per member, dialled
// when first needed and dropped after any failure.
type respConns map[string]*respConn

func (cs respConns) close() {
	for id, c := range cs {
		c.Close()
		delete(cs, id)
	}
}

// doRESP runs one operation over m's Redis port and sorts the answer as
// send does an HTTP one (docs/redis.md, Errors): -TRYAGAIN, a refused
// connection or any failed dial, a command that was not sent, an -ERR
// refusing the command changed nothing (keep false); -TIMEOUT, a failure after sending, an
// internal error, an answer this workload does not expect leave the
// outcome unknown (weird counts those last two, which a healthy run has
// none of, to be reported).
func (w *linWorkload) doRESP(cs respConns, m *cluster.Member, in kvInput) (out kvOutput, keep bool) {
	c := cs[m.ID]
	if c == nil {
		var err error
		if c, err = dialRESP(m.Redis); err != nil {
			return kvOutput{}, false // refused or timed out: nothing was sent
		}
		cs[m.ID] = c
	}
	var cmds [][]string
	if in.Kind == opTxn {
		cmds = append(cmds, []string{"MULTI"})
		for _, sub := range in.Txn {
			cmds = append(cmds, respCommand(sub))
		}
		cmds = append(cmds, []string{"EXEC"})
	} else {
		cmds = [][]string{respCommand(in)}
	}
	replies, err := c.do(cmds...)
	if err != nil {
		c.Close()
		delete(cs, m.ID)
		if errors.Is(err, errNotSent) {
			return kvOutput{}, false
		}
		return kvOutput{Unknown: true}, in.Kind != opGet
	}
	last := replies[len(replies)-1]
	if last.kind == '-' && !(in.Kind == opIncr && strings.HasPrefix(last.str, "ERR value is not an integer")) {
		switch fate := respErrorFate(last.str); fate {
		case noEffect:
			return kvOutput{}, false
		default:
			if !strings.HasPrefix(last.str, "TIMEOUT") {
				w.noteWeird(m, cmds, last)
			}
			return kvOutput{Unknown: true}, in.Kind != opGet
		}
	}
	if in.Kind != opTxn {
		o, ok := respOutput(in, last)
		if !ok {
			w.noteWeird(m, cmds, last)
			return kvOutput{Unknown: true}, in.Kind != opGet
		}
		return o, true
	}
	for _, q := range replies[1 : len(replies)-1] {
		if q.kind != '+' { // OK, then QUEUED each
			w.noteWeird(m, cmds, q)
			return kvOutput{Unknown: true}, true
		}
	}
	if last.kind != '*' || last.null || len(last.elems) != len(in.Txn) {
		w.noteWeird(m, cmds, last)
		return kvOutput{Unknown: true}, true
	}
	out.Txn = make([]kvOutput, len(in.Txn))
	for k, sub := range in.Txn {
		o, ok := respOutput(sub, last.elems[k])
		if !ok {
			w.noteWeird(m, cmds, last)
			return kvOutput{Unknown: true}, true
		}
		out.Txn[k] = o
	}
	return out, true
}

// respErrorFate sorts an error reply (docs/redis.md, Errors): TRYAGAIN
// (no leader: nothing was proposed), a syntax or argument error, and
// "the key kept changing" (EXEC gave up, writing nothing) changed
// nothing; TIMEOUT and anything else (an internal error, say one
// forwarding to the leader) may have.
func respErrorFate(text string) fate {
	switch {
	case strings.HasPrefix(text, "TRYAGAIN "),
		strings.HasPrefix(text, "ERR syntax error"),
		strings.HasPrefix(text, "ERR wrong number of arguments"),
		strings.HasPrefix(text, "ERR the key kept changing"):
		return noEffect
	}
	return unknownFx
}

// respOutput reads the answer to one command; ok is false for an answer
// the command cannot give.
func respOutput(in kvInput, v respValue) (kvOutput, bool) {
	switch in.Kind {
	case opGet:
		if v.kind != '$' {
			return kvOutput{}, false
		}
		if v.null {
			return kvOutput{Found: false}, true
		}
		n, err := strconv.ParseInt(v.str, 10, 64)
		if err != nil {
			n = -1 // not a value any client wrote: the model rejects it
		}
		return kvOutput{Found: true, Value: n}, true
	case opPut:
		return kvOutput{}, v.kind == '+' && v.str == "OK"
	case opCreate:
		if v.kind == '$' && v.null {
			return kvOutput{Created: false}, true
		}
		return kvOutput{Created: true}, v.kind == '+' && v.str == "OK"
	case opDelete:
		return kvOutput{Deleted: v.num}, v.kind == ':'
	case opIncr:
		if v.kind == '-' && strings.HasPrefix(v.str, "ERR value is not an integer") {
			return kvOutput{NotInt: true}, true
		}
		return kvOutput{Value: v.num}, v.kind == ':'
	}
	return kvOutput{}, false
}

// noteWeird records an answer this workload does not expect; the test
// reports them (a handful of internal errors under faults is news, not
// necessarily a violation: the history keeps the operation as unknown).
func (w *linWorkload) noteWeird(m *cluster.Member, cmds [][]string, v respValue) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.weird) < 20 {
		w.weird = append(w.weird, m.ID+": "+strings.Join(flatten(cmds), " ")+" -> "+v.String())
	}
	w.weirdN++
}

func flatten(cmds [][]string) []string {
	var out []string
	for _, c := range cmds {
		out = append(out, c...)
	}
	return out
}
