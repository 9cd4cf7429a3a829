package faulttest

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

func op(client int, call, ret int64, in kvInput, out kvOutput) porcupine.Operation {
	return porcupine.Operation{ClientId: client, Call: call, Return: ret, Input: in, Output: out}
}

// The model accepts what a linearizable store may answer, including
// operations of unknown outcome that did or did not happen.
func TestKVModelAcceptsLinearizableHistories(t *testing.T) {
	k := "/k"
	hist := []porcupine.Operation{
		op(0, 0, 10, kvInput{Kind: opPut, Key: k, Value: 5}, kvOutput{Rev: 3}),
		op(1, 11, 20, kvInput{Kind: opGet, Key: k}, kvOutput{Found: true, Value: 5, Rev: 3}),
		op(1, 21, 30, kvInput{Kind: opCAS, Key: k, Expect: 3, Value: 7}, kvOutput{Rev: 4}),
		op(0, 31, 40, kvInput{Kind: opCAS, Key: k, Expect: 3, Value: 8}, kvOutput{CASFailed: true, Current: 4}),
		op(2, 41, 1000, kvInput{Kind: opIncr, Key: k, By: 2}, kvOutput{Unknown: true}),
		op(0, 50, 60, kvInput{Kind: opGet, Key: k}, kvOutput{Found: true, Value: 9, Rev: 6}),
		op(0, 61, 70, kvInput{Kind: opDelete, Key: k}, kvOutput{Rev: 7, Deleted: 1}),
		op(3, 71, 1000, kvInput{Kind: opPut, Key: k, Value: 11}, kvOutput{Unknown: true}),
		op(0, 80, 90, kvInput{Kind: opGet, Key: k}, kvOutput{Found: false}),
		op(0, 91, 95, kvInput{Kind: opCAS, Key: k, Expect: 0, Value: 12}, kvOutput{Rev: 9}),
	}
	if res := checkLinearizable(t, hist, 10*time.Second); res != porcupine.Ok {
		t.Fatalf("a linearizable history was judged %s", res)
	}
}

// Each kind of violation the suite looks for is caught: a stale read, a
// lost acknowledged write, a revision going back, a CAS that succeeded on
// the wrong revision. The visualisation file is written and named.
func TestKVModelRejectsViolations(t *testing.T) {
	k := "/k"
	put := op(0, 0, 10, kvInput{Kind: opPut, Key: k, Value: 5}, kvOutput{Rev: 3})
	cases := map[string][]porcupine.Operation{
		"stale read": {put,
			op(0, 11, 20, kvInput{Kind: opPut, Key: k, Value: 6}, kvOutput{Rev: 4}),
			op(1, 21, 30, kvInput{Kind: opGet, Key: k}, kvOutput{Found: true, Value: 5, Rev: 3})},
		"lost write": {put,
			op(1, 21, 30, kvInput{Kind: opGet, Key: k}, kvOutput{Found: false})},
		"revision going back": {put,
			op(0, 11, 20, kvInput{Kind: opPut, Key: k, Value: 6}, kvOutput{Rev: 2})},
		"cas on a wrong revision": {put,
			op(1, 21, 30, kvInput{Kind: opCAS, Key: k, Expect: 2, Value: 9}, kvOutput{Rev: 4})},
		"incr from a wrong base": {put,
			op(1, 21, 30, kvInput{Kind: opIncr, Key: k, By: 1}, kvOutput{Rev: 4, Value: 1})},
	}
	dir := t.TempDir()
	t.Setenv("ROSTER_ARTIFACTS", dir)
	for name, hist := range cases {
		inner := &recorder{TB: t}
		if res := checkLinearizable(inner, hist, 10*time.Second); res != porcupine.Illegal {
			t.Errorf("%s: judged %s, want Illegal", name, res)
			continue
		}
		if !strings.Contains(inner.errs, dir) {
			t.Errorf("%s: the failure does not name the visualisation: %q", name, inner.errs)
		}
	}
	files, _ := os.ReadDir(dir)
	if len(files) != len(cases) {
		t.Errorf("%d visualisation files for %d violations", len(files), len(cases))
	}
}

// Redis operations share the model and the history with HTTP ones: they
// report no revisions, SET … NX creates only an absent key, and a
// MULTI/EXEC applies its operations at one point, in order.
func TestKVModelAcceptsMixedFrontEnds(t *testing.T) {
	k := "/k"
	txn := func(subs ...kvInput) kvInput { return kvInput{Kind: opTxn, Key: k, Txn: subs} }
	hist := []porcupine.Operation{
		op(0, 0, 10, kvInput{Kind: opCreate, Key: k, Value: 5}, kvOutput{Created: true}),
		op(1, 11, 20, kvInput{Kind: opGet, Key: k}, kvOutput{Found: true, Value: 5, Rev: 3}),
		op(1, 21, 30, kvInput{Kind: opCreate, Key: k, Value: 6}, kvOutput{Created: false}),
		op(0, 31, 40, txn(kvInput{Kind: opIncr, Key: k, By: 2}, kvInput{Kind: opGet, Key: k}),
			kvOutput{Txn: []kvOutput{{Value: 7}, {Found: true, Value: 7}}}),
		op(1, 41, 50, kvInput{Kind: opCAS, Key: k, Expect: 3, Value: 8}, kvOutput{CASFailed: true, Current: 4}),
		op(2, 51, 1000, txn(kvInput{Kind: opDelete, Key: k}, kvInput{Kind: opCreate, Key: k, Value: 9}), kvOutput{Unknown: true}),
		op(0, 60, 70, kvInput{Kind: opGet, Key: k}, kvOutput{Found: true, Value: 9}),
		op(0, 71, 80, kvInput{Kind: opDelete, Key: k}, kvOutput{Deleted: 1}),
		op(1, 81, 90, kvInput{Kind: opPut, Key: k, Value: 10}, kvOutput{Rev: 9}),
		op(1, 91, 99, kvInput{Kind: opIncr, Key: k, By: 1}, kvOutput{Value: 11}),
	}
	if res := checkLinearizable(t, hist, 10*time.Second); res != porcupine.Ok {
		t.Fatalf("a linearizable history was judged %s", res)
	}
}

// What the Redis workers could see go wrong is caught: a stale GET, a
// SET NX creating a key that exists, a DEL counting a key that is gone, a
// transaction whose operations did not apply at one point.
func TestKVModelRejectsRedisViolations(t *testing.T) {
	k := "/k"
	put := op(0, 0, 10, kvInput{Kind: opPut, Key: k, Value: 5}, kvOutput{Rev: 3})
	cases := map[string][]porcupine.Operation{
		"stale GET": {put,
			op(0, 11, 20, kvInput{Kind: opPut, Key: k, Value: 6}, kvOutput{}),
			op(1, 21, 30, kvInput{Kind: opGet, Key: k}, kvOutput{Found: true, Value: 5})},
		"SET NX over an existing key": {put,
			op(1, 11, 20, kvInput{Kind: opCreate, Key: k, Value: 7}, kvOutput{Created: true})},
		"DEL of a deleted key": {put,
			op(1, 11, 20, kvInput{Kind: opDelete, Key: k}, kvOutput{Deleted: 1}),
			op(1, 21, 30, kvInput{Kind: opDelete, Key: k}, kvOutput{Deleted: 1})},
		"EXEC not atomic": {put,
			op(1, 11, 40, kvInput{Kind: opTxn, Key: k, Txn: []kvInput{{Kind: opIncr, Key: k, By: 1}, {Kind: opGet, Key: k}}},
				kvOutput{Txn: []kvOutput{{Value: 6}, {Found: true, Value: 8}}}),
			op(2, 12, 39, kvInput{Kind: opIncr, Key: k, By: 2}, kvOutput{Value: 8})},
		"INCR from a wrong base": {put,
			op(1, 11, 20, kvInput{Kind: opIncr, Key: k, By: 1}, kvOutput{Value: 1})},
	}
	t.Setenv("ROSTER_ARTIFACTS", t.TempDir())
	for name, hist := range cases {
		inner := &recorder{TB: t}
		if res := checkLinearizable(inner, hist, 10*time.Second); res != porcupine.Illegal {
			t.Errorf("%s: judged %s, want Illegal", name, res)
		}
	}
}

// recorder keeps the errors a check reports instead of failing the test.
type recorder struct {
	testing.TB
	errs string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.errs += strings.TrimSpace(fmtSprintf(format, args...)) + "\n"
}

var fmtSprintf = fmt.Sprintf
