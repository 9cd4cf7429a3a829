package registry

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/rosterhq/roster/fsm"
)

// TestFollowerBatchCommitsOnTheLeader: a follower's Batch travels to the
// leader as one request and commits there in the order given, with each
// command's own result; an invalid command gets its error and is not sent;
// a batch larger than one chunk (batchChunk) goes in several requests,
// still in order.
func TestFollowerBatchCommitsOnTheLeader(t *testing.T) {
	tc := startCluster(t, 3, clusterOpts{})
	leader := tc.leader()
	f := tc.followers(leader)[0]
	ctx := ctxT(t, 30*time.Second)

	cmds := []fsm.Command{
		fsm.Put{Key: "/b/1", Value: []byte("one")},
		fsm.Put{Key: "no-slash", Value: []byte("x")}, // invalid: not sent
		fsm.Incr{Key: "/b/n", By: 5},
		fsm.Put{Key: "/b/1", Value: []byte("two"), HasCAS: true, CAS: 999999}, // fails on the leader: not the key's revision
		fsm.Delete{Key: "/b/1"},
		fsm.Incr{Key: "/b/n", By: 1},
	}
	res := f.Batch(ctx, cmds)
	if len(res) != len(cmds) {
		t.Fatalf("%d results for %d commands", len(res), len(cmds))
	}
	if res[0].Err != nil || res[2].Err != nil || res[4].Err != nil || res[5].Err != nil {
		t.Fatalf("valid commands failed: %+v", res)
	}
	if !errors.Is(res[1].Err, fsm.ErrInvalidArgument) {
		t.Fatalf("invalid key: %v, want ErrInvalidArgument", res[1].Err)
	}
	if !errors.Is(res[3].Err, fsm.ErrCASFailed) {
		t.Fatalf("failed CAS: %v, want ErrCASFailed", res[3].Err)
	}
	// In order, one revision each for the writes that applied.
	if r0, r2, r4, r5 := res[0].Result.Revision, res[2].Result.Revision, res[4].Result.Revision, res[5].Result.Revision; !(r0 < r2 && r2 < r4 && r4 < r5) {
		t.Fatalf("revisions out of order: %d %d %d %d", r0, r2, r4, r5)
	}
	if res[5].Result.Value != 6 {
		t.Fatalf("second incr answered %d, want 6", res[5].Result.Value)
	}
	st := leader.FSM().State()
	if _, ok := st.Get("/b/1"); ok {
		t.Fatal("/b/1 still present on the leader after the batch deleted it")
	}
	if _, ok := st.Get("/no-slash"); ok {
		t.Fatal("the invalid command was applied")
	}

	// Larger than a chunk: 3 values of 600 KB and small ones between them.
	big := bytes.Repeat([]byte("v"), 600<<10)
	var many []fsm.Command
	for i := range 9 {
		v := []byte(fmt.Sprint(i))
		if i%3 == 1 {
			v = big
		}
		many = append(many, fsm.Put{Key: "/big/k", Value: v})
	}
	res = f.Batch(ctx, many)
	prev := int64(0)
	for i, r := range res {
		if r.Err != nil {
			t.Fatalf("command %d: %v", i, r.Err)
		}
		if r.Result.Revision <= prev {
			t.Fatalf("command %d committed at %d, after %d: out of order", i, r.Result.Revision, prev)
		}
		prev = r.Result.Revision
	}
	if kv, ok := leader.FSM().State().Get("/big/k"); !ok || string(kv.Value) != "8" {
		t.Fatalf("/big/k on the leader after the batch: %v", ok)
	}

	// A txn granting a lease (the Redis port's SET … EX) goes as given:
	// only the leader can pick the lease's ID.
	res = f.Batch(ctx, []fsm.Command{fsm.Txn{Ops: []fsm.Command{
		fsm.Grant{TTL: 30, Name: "/b/ex"},
		fsm.Put{Key: "/b/ex", Value: []byte("v"), Lease: TxnLease(0)},
	}}})
	if res[0].Err != nil {
		t.Fatalf("a txn with a grant via a follower: %v", res[0].Err)
	}
	if kv, ok := leader.FSM().State().Get("/b/ex"); !ok || kv.Lease == 0 || kv.Lease != res[0].Result.Ops[0].Lease.ID {
		t.Fatalf("/b/ex on the leader after the txn: %+v %v, result %+v", kv, ok, res[0].Result)
	}
}

// TestBatchCodec: the channel's batch encodings round-trip, and malformed
// ones are errors, never panics.
func TestBatchCodec(t *testing.T) {
	cmds := []fsm.Command{fsm.Put{Key: "/a", Value: []byte("1")}, fsm.Delete{Key: "/b", Prefix: true}}
	encs := [][]byte{fsm.Encode(cmds[0]), fsm.Encode(cmds[1])}
	got, err := decodeBatch(encodeBatch(encs))
	if err != nil || len(got) != 2 || fmt.Sprint(got) != fmt.Sprint(cmds) {
		t.Fatalf("decodeBatch: %v %v", got, err)
	}
	res := []BatchResult{
		{Result: fsm.Result{Revision: 7}},
		{Err: fmt.Errorf("%w: gone", ErrTimeout)},
		{Result: fsm.Result{Revision: 8, Err: fsm.ErrCASFailed}, Err: fsm.ErrCASFailed},
	}
	back, err := decodeBatchResults(encodeBatchResults(res), 3)
	if err != nil {
		t.Fatal(err)
	}
	if back[0].Err != nil || back[0].Result.Revision != 7 || !errors.Is(back[1].Err, ErrTimeout) || !errors.Is(back[2].Err, fsm.ErrCASFailed) {
		t.Fatalf("decodeBatchResults: %+v", back)
	}
	if _, err := decodeBatchResults(encodeBatchResults(res), 2); err == nil {
		t.Fatal("a count other than asked for was accepted")
	}
	good := encodeBatch(encs)
	for i := range good {
		if _, err := decodeBatch(good[:i]); err == nil {
			t.Fatalf("a batch truncated to %d bytes was accepted", i)
		}
	}
	for _, bad := range [][]byte{nil, {0xff}, {1, 0}, {1, 5, 1}, append(good, 0)} {
		if _, err := decodeBatch(bad); err == nil {
			t.Fatalf("decodeBatch(%x) accepted", bad)
		}
	}
}
