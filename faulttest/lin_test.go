package faulttest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/rosterhq/roster/internal/cluster"
	"github.com/rosterhq/roster/internal/testutil"
)

// linWorkload runs clients that put / get / cas / delete / incr a handful
// of keys under /lin/ at random members and records a porcupine history:
// HTTP clients, and Redis clients on the same keys (linresp_test.go) when
// the members serve the Redis port.
//
// The keys change every keyPeriod (/lin/g<generation>/k<i>), as Jepsen's
// independent keys do: porcupine checks each key on its own, and an
// operation of unknown outcome stays pending until the end of its key's
// history, so short per-key histories keep a long run checkable (one set
// of keys for ten minutes is beyond porcupine's reach).
type linWorkload struct {
	c     *cluster.Cluster
	nkeys int
	start time.Time

	mu      sync.Mutex
	ops     []porcupine.Operation
	unknown int // operations of unknown outcome
	dropped int // provably without effect, left out
	respOps int // operations over the Redis port (in ops)
	respUnk int // of which of unknown outcome
	respBy  map[opKind]int
	weird   []string
	weirdN  int // Redis answers the workload did not expect (kept as unknown)
	nextCID atomic.Int64
}

// keyPeriod is how long one generation of keys is used.
const keyPeriod = 5 * time.Second

func newLinWorkload(c *cluster.Cluster, nkeys int) *linWorkload {
	return &linWorkload{c: c, nkeys: nkeys, start: time.Now(), respBy: map[opKind]int{}}
}

// key picks one of the current generation's keys.
func (w *linWorkload) key(rng *rand.Rand) string {
	gen := int(time.Since(w.start) / keyPeriod)
	return fmt.Sprintf("/lin/g%d/k%d", gen, rng.IntN(w.nkeys))
}

// run starts n HTTP clients and nresp Redis clients (the members must
// have Redis ports then); they stop when ctx ends.
func (w *linWorkload) run(ctx context.Context, wg *sync.WaitGroup, seed uint64, n, nresp int) {
	for i := range n + nresp {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.client(ctx, newRand(seed, 100+i), i, i >= n)
		}()
	}
}

func (w *linWorkload) now() int64 { return int64(time.Since(w.start)) }

func (w *linWorkload) client(ctx context.Context, rng *rand.Rand, id int, redis bool) {
	cid := int(w.nextCID.Add(1) - 1)
	lastRev := map[string]int64{}
	conns := respConns{}
	defer conns.close()
	var seq int64
	for ctx.Err() == nil {
		key := w.key(rng)
		m := randomMember(rng, w.c)
		// Every value written is unique: one per write, several in a
		// transaction each taking the next sequence number.
		value := func() int64 { seq++; return int64(id+1)*1_000_000_000 + seq }
		var in kvInput
		if redis {
			in = respInput(rng, key, value)
		} else {
			in = httpInput(rng, key, value, lastRev[key])
		}
		call := w.now()
		var out kvOutput
		var keep bool
		if redis {
			out, keep = w.doRESP(conns, m, in)
		} else {
			out, keep = w.do(m, in)
		}
		ret := w.now()
		if !keep {
			w.mu.Lock()
			w.dropped++
			w.mu.Unlock()
			// Refused (no leader): back off before the next operation;
			// the nemesis, not this client, decides when a leader returns.
			if !testutil.Pace(ctx.Done(), 20*time.Millisecond) {
				return
			}
			continue
		}
		if !out.Unknown && (in.Kind == opGet && out.Found || in.Kind != opGet && !out.CASFailed) {
			lastRev[key] = out.Rev
		}
		if in.Kind == opDelete && !out.Unknown {
			lastRev[key] = 0
		}
		op := porcupine.Operation{ClientId: cid, Input: in, Call: call, Output: out, Return: ret, Metadata: m.ID}
		w.mu.Lock()
		if out.Unknown {
			op.Return = -1 // set to the end of the history by history()
			w.unknown++
		}
		if redis {
			op.Metadata = m.ID + " redis"
			w.respOps++
			w.respBy[in.Kind]++
			if out.Unknown {
				w.respUnk++
			}
		}
		w.ops = append(w.ops, op)
		w.mu.Unlock()
		if out.Unknown {
			// This client's operation may still be pending: go on as a new
			// client, as Jepsen does with a crashed process.
			cid = int(w.nextCID.Add(1) - 1)
		}
	}
}

// httpInput picks an HTTP operation; lastRev is the key's mod_revision
// as this client last saw it, which a CAS mostly expects.
func httpInput(rng *rand.Rand, key string, value func() int64, lastRev int64) kvInput {
	in := kvInput{Key: key}
	switch p := rng.IntN(100); {
	case p < 35:
		in.Kind = opGet
	case p < 55:
		in.Kind, in.Value = opPut, value()
	case p < 75:
		in.Kind, in.Value = opCAS, value()
		in.Expect = lastRev
		if rng.IntN(4) == 0 {
			in.Expect = int64(rng.IntN(3)) // often stale or absent: failures matter too
		}
	case p < 85:
		in.Kind = opDelete
	default:
		in.Kind, in.By = opIncr, int64(1+rng.IntN(5))
	}
	return in
}

// do runs one operation over HTTP; keep is false when it provably changed nothing
// (and, for a read, when it returned nothing).
func (w *linWorkload) do(m *cluster.Member, in kvInput) (kvOutput, bool) {
	u := m.URL("/v1/kv" + in.Key)
	var r reply
	switch in.Kind {
	case opGet:
		r = send("GET", u, nil)
	case opPut:
		r = send("PUT", u, []byte(strconv.FormatInt(in.Value, 10)))
	case opCAS:
		r = send("PUT", u+"?cas="+strconv.FormatInt(in.Expect, 10), []byte(strconv.FormatInt(in.Value, 10)))
	case opDelete:
		r = send("DELETE", u, nil)
	case opIncr:
		r = send("POST", u+"/incr", []byte(`{"by":`+strconv.FormatInt(in.By, 10)+`}`))
	}
	switch r.fate {
	case noEffect:
		return kvOutput{}, false
	case unknownFx:
		return kvOutput{Unknown: true}, in.Kind != opGet
	}
	var out kvOutput
	switch {
	case r.status == 200:
	case in.Kind == opGet && r.status == 404 && r.code == "not_found":
		return kvOutput{Found: false}, true
	case in.Kind == opCAS && r.status == 409 && r.code == "cas_failed":
		var e struct {
			Error struct {
				Current int64 `json:"current_mod_revision"`
			} `json:"error"`
		}
		_ = r.decode(&e)
		return kvOutput{CASFailed: true, Current: e.Error.Current}, true
	case in.Kind == opIncr && r.status == 400:
		return kvOutput{NotInt: true}, true
	default:
		// Any other 4xx changed nothing and says nothing about the key.
		return kvOutput{}, false
	}
	switch in.Kind {
	case opGet:
		var kv struct {
			Value       string `json:"value"`
			ModRevision int64  `json:"mod_revision"`
		}
		if r.decode(&kv) != nil {
			return kvOutput{}, false
		}
		v, err := strconv.ParseInt(kv.Value, 10, 64)
		if err != nil {
			v = -1 // not a value any client wrote: the model rejects it
		}
		out = kvOutput{Found: true, Value: v, Rev: kv.ModRevision}
	case opPut, opCAS:
		var p struct {
			Revision int64 `json:"revision"`
		}
		_ = r.decode(&p)
		out = kvOutput{Rev: p.Revision}
	case opDelete:
		var d struct {
			Revision int64 `json:"revision"`
			Deleted  int64 `json:"deleted"`
		}
		_ = r.decode(&d)
		out = kvOutput{Rev: d.Revision, Deleted: d.Deleted}
	case opIncr:
		var d struct {
			Revision int64 `json:"revision"`
			Value    int64 `json:"value"`
		}
		_ = r.decode(&d)
		out = kvOutput{Rev: d.Revision, Value: d.Value}
	}
	return out, true
}

// history returns the recorded operations, those of unknown outcome
// returning at the end of the history.
func (w *linWorkload) history() []porcupine.Operation {
	w.mu.Lock()
	defer w.mu.Unlock()
	end := w.now() + 1
	ops := append([]porcupine.Operation(nil), w.ops...)
	for i := range ops {
		if ops[i].Return == -1 {
			ops[i].Return = end
		}
	}
	return ops
}

// checkLinearizable runs porcupine over ops, one key at a time (the model
// is per key), each with its own timeout, so that one hard key is named
// rather than sinking the whole check. On a violation it writes that key's
// visualisation to a file that outlives the test and fails naming it; a
// key porcupine cannot decide fails the test too: it proves nothing.
func checkLinearizable(t testing.TB, ops []porcupine.Operation, timeout time.Duration) porcupine.CheckResult {
	t.Helper()
	model := kvModel.ToModel()
	start := time.Now()
	byKey := kvModel.Partition(ops)
	result := porcupine.Ok
	var slowest time.Duration
	for _, part := range byKey {
		key := part[0].Input.(kvInput).Key
		began := time.Now()
		res, info := porcupine.CheckOperationsVerbose(model, part, timeout)
		slowest = max(slowest, time.Since(began))
		switch res {
		case porcupine.Illegal:
			result = porcupine.Illegal
			path := artifactPath(t, "porcupine", "html")
			if err := porcupine.VisualizePath(model, info, path); err != nil {
				t.Errorf("writing the visualisation: %v", err)
			}
			t.Errorf("history of key %s (%d operations) is NOT linearizable; visualisation: %s", key, len(part), path)
		case porcupine.Unknown:
			if result == porcupine.Ok {
				result = porcupine.Unknown
			}
			t.Errorf("porcupine gave up on key %s after %v: its %d operations (%d of unknown outcome) are neither proved nor refuted",
				key, timeout, len(part), unknownOps(part))
		}
	}
	t.Logf("porcupine: %d operations on %d keys, result %s, checked in %v (slowest key %v)",
		len(ops), len(byKey), result, time.Since(start).Round(time.Millisecond), slowest.Round(time.Millisecond))
	return result
}

func unknownOps(ops []porcupine.Operation) int {
	n := 0
	for _, op := range ops {
		if op.Output.(kvOutput).Unknown {
			n++
		}
	}
	return n
}
