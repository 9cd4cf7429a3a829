package registry_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rosterhq/roster/fsm"
	"github.com/rosterhq/roster/internal/testutil"
	"github.com/rosterhq/roster/registry"
)

// TestTxnGrantsAndAttaches is SET k v EX 2 as the Redis port sends it: a
// lease the leader picks, and the key attached to it by placeholder, in one
// entry; the key then expires with the lease.
func TestTxnGrantsAndAttaches(t *testing.T) {
	n := openNode(t, t.TempDir(), 20*time.Millisecond)
	ctx := context.Background()
	if _, err := n.Put(ctx, fsm.Put{Key: "/b", Value: []byte("old")}); err != nil {
		t.Fatal(err)
	}
	res, err := n.Txn(ctx, []fsm.Command{
		fsm.Grant{TTL: 2, Name: "/redis"},
		fsm.Put{Key: "/k", Value: []byte("v"), Lease: registry.TxnLease(0)},
		fsm.Delete{Key: "/b"},
	})
	if err != nil || len(res.Ops) != 3 || res.Revision != 3 {
		t.Fatalf("txn: %+v, %v", res, err)
	}
	id := res.Ops[0].Lease.ID
	if id <= 0 || res.Ops[0].Lease.TTL != 2 {
		t.Fatalf("granted %+v", res.Ops[0].Lease)
	}
	st := n.FSM().State()
	if kv, ok := st.Get("/k"); !ok || kv.Lease != id || kv.ModRevision != 2 {
		t.Fatalf("/k: %+v", kv)
	}
	if _, ok := st.Get("/b"); ok {
		t.Fatal("/b not deleted")
	}
	testutil.Eventually(t, 5*time.Second, "expiry", func() bool {
		_, ok := n.FSM().State().Get("/k")
		return !ok
	})
	// A condition that fails refuses the whole txn, grant included.
	leases := n.FSM().State().LeaseCount()
	_, err = n.Txn(ctx, []fsm.Command{
		fsm.Grant{TTL: 5},
		fsm.Put{Key: "/c", Value: []byte("x"), Lease: registry.TxnLease(0)},
		fsm.Put{Key: "/d", HasCAS: true, CAS: 99},
	})
	var ce *fsm.CASError
	if !errors.As(err, &ce) || ce.Current != 0 || !strings.Contains(err.Error(), "txn operation 3") {
		t.Fatalf("failing txn: %v", err)
	}
	if st := n.FSM().State(); st.LeaseCount() != leases || st.KeyCount() != 0 {
		t.Fatalf("refused txn left %d leases (want %d), %d keys", st.LeaseCount(), leases, st.KeyCount())
	}
}

// TestTxnValidation: a bad txn is refused before it is proposed and
// changes nothing.
func TestTxnValidation(t *testing.T) {
	n := openNode(t, t.TempDir(), 100*time.Millisecond)
	ctx := context.Background()
	big := make([]byte, registry.DefaultMaxValue)
	many := make([]fsm.Command, registry.MaxTxnOps+1)
	for i := range many {
		many[i] = fsm.Delete{Key: "/k"}
	}
	var huge []fsm.Command
	for i := 0; i <= registry.TxnBytesFactor; i++ {
		huge = append(huge, fsm.Put{Key: "/h/" + strings.Repeat("x", i+1), Value: big})
	}
	cases := []struct {
		name string
		ops  []fsm.Command
		want error
	}{
		{"empty", nil, fsm.ErrInvalidArgument},
		{"too many", many, fsm.ErrInvalidArgument},
		{"key twice", []fsm.Command{fsm.Put{Key: "/a"}, fsm.Delete{Key: "/a"}}, fsm.ErrInvalidArgument},
		{"bad key", []fsm.Command{fsm.Put{Key: "a"}}, fsm.ErrInvalidArgument},
		{"value too large", []fsm.Command{fsm.Put{Key: "/a", Value: append(big, 0)}}, registry.ErrTooLarge},
		{"txn too large", huge, registry.ErrTooLarge},
		{"negative cas", []fsm.Command{fsm.Delete{Key: "/a", HasCAS: true, CAS: -1}}, fsm.ErrInvalidArgument},
		{"prefix delete", []fsm.Command{fsm.Delete{Key: "/a", Prefix: true}}, fsm.ErrInvalidArgument},
		{"placeholder without grant", []fsm.Command{fsm.Put{Key: "/a", Lease: registry.TxnLease(0)}}, fsm.ErrInvalidArgument},
		{"placeholder names a put", []fsm.Command{fsm.Put{Key: "/a"}, fsm.Put{Key: "/b", Lease: registry.TxnLease(0)}}, fsm.ErrInvalidArgument},
		{"placeholder names a later grant", []fsm.Command{fsm.Put{Key: "/a", Lease: registry.TxnLease(1)}, fsm.Grant{TTL: 5}}, fsm.ErrInvalidArgument},
		{"bad ttl", []fsm.Command{fsm.Grant{TTL: 1}}, fsm.ErrInvalidArgument},
		{"bad lease name", []fsm.Command{fsm.Grant{TTL: 5, Name: "a\x00"}}, fsm.ErrInvalidArgument},
		{"negative lease id", []fsm.Command{fsm.Grant{ID: -5, TTL: 5}}, fsm.ErrInvalidArgument},
		{"tick", []fsm.Command{fsm.Tick{ElapsedMs: 1}}, fsm.ErrInvalidArgument},
		{"check bad key", []fsm.Command{fsm.Check{Key: "a"}}, fsm.ErrInvalidArgument},
		{"check negative revision", []fsm.Command{fsm.Check{Key: "/a", ModRevision: -1}}, fsm.ErrInvalidArgument},
		{"check and put of one key", []fsm.Command{fsm.Check{Key: "/a"}, fsm.Put{Key: "/a"}}, fsm.ErrInvalidArgument},
		{"incr bad key", []fsm.Command{fsm.Incr{Key: "a", By: 1}}, fsm.ErrInvalidArgument},
		{"incr and put of one key", []fsm.Command{fsm.Incr{Key: "/a", By: 1}, fsm.Put{Key: "/a"}}, fsm.ErrInvalidArgument},
		// No replica could decode the entry: proposed, it stopped them all.
		{"put condition out of range", []fsm.Command{fsm.Put{Key: "/a", Only: fsm.PutIfPresent + 1}}, fsm.ErrInvalidArgument},
	}
	for _, tc := range cases {
		if _, err := n.Txn(ctx, tc.ops); !errors.Is(err, tc.want) {
			t.Errorf("%s: error %v, want %v", tc.name, err, tc.want)
		}
	}
	// A check alone is refused (in a batch; validate refuses it as a
	// single write), saying why.
	if err := n.Batch(ctx, []fsm.Command{fsm.Check{Key: "/a"}})[0].Err; !errors.Is(err, fsm.ErrCheckOutsideTxn) ||
		!strings.Contains(err.Error(), "only as an operation of a txn") {
		t.Errorf("a bare check: %v, want ErrCheckOutsideTxn", err)
	}
	// A put alone, or in a batch, with a condition no replica can decode
	// is refused too, before it is proposed.
	if _, err := n.Put(ctx, fsm.Put{Key: "/a", Only: 3}); !errors.Is(err, fsm.ErrInvalidArgument) {
		t.Errorf("a put with condition 3: %v, want ErrInvalidArgument", err)
	}
	if err := n.Batch(ctx, []fsm.Command{fsm.Put{Key: "/a", Only: 255}})[0].Err; !errors.Is(err, fsm.ErrInvalidArgument) {
		t.Errorf("a batched put with condition 255: %v, want ErrInvalidArgument", err)
	}
	if st := n.FSM().State(); st.Revision() != 0 || st.LeaseCount() != 0 {
		t.Fatalf("refused txns changed the state: revision %d, %d leases", st.Revision(), st.LeaseCount())
	}
	// The state machine still applies.
	if _, err := n.Put(ctx, fsm.Put{Key: "/a", Value: []byte("v"), Only: fsm.PutIfAbsent}); err != nil {
		t.Fatalf("a put after the refused ones: %v", err)
	}
}

// TestTxnCheckCountsNoValue: a Txn compares a key it only read with a
// Check, which counts the key's bytes toward the Txn's size bound but
// carries no value: a Txn reading values that together pass the bound
// still applies, and a stale check refuses all of it.
func TestTxnCheckCountsNoValue(t *testing.T) {
	n := openNode(t, t.TempDir(), 100*time.Millisecond)
	ctx := context.Background()
	big := make([]byte, registry.DefaultMaxValue)
	var checks []fsm.Command
	for i := 0; i <= registry.TxnBytesFactor; i++ {
		r, err := n.Put(ctx, fsm.Put{Key: "/big/" + strings.Repeat("x", i+1), Value: big})
		if err != nil {
			t.Fatal(err)
		}
		checks = append(checks, fsm.Check{Key: "/big/" + strings.Repeat("x", i+1), ModRevision: r.Revision})
	}
	res, err := n.Txn(ctx, append(checks, fsm.Put{Key: "/w", Value: []byte("v")}))
	if err != nil || len(res.Ops) != len(checks)+1 {
		t.Fatalf("txn checking %d MiB of values: %+v, %v", len(checks), res, err)
	}
	if kv, ok := n.FSM().State().Get("/w"); !ok || string(kv.Value) != "v" {
		t.Fatalf("/w: %+v", kv)
	}
	rev := n.FSM().State().Revision()
	_, err = n.Txn(ctx, append(checks, fsm.Put{Key: "/w", Value: []byte("v2")})) // the checks still hold
	if err != nil {
		t.Fatal(err)
	}
	stale := append([]fsm.Command{fsm.Check{Key: "/w", ModRevision: rev}}, fsm.Put{Key: "/z", Value: []byte("z")})
	if _, err := n.Txn(ctx, stale); !errors.Is(err, fsm.ErrCASFailed) {
		t.Fatalf("stale check: %v, want ErrCASFailed", err)
	}
	if _, ok := n.FSM().State().Get("/z"); ok {
		t.Fatal("a txn whose check failed wrote")
	}
}
