package registry

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/rosterhq/roster/fsm"
	"github.com/rosterhq/roster/internal/testutil"
)

// TestFollowersServeTheWholeAPI runs every write through followers, over
// the forwarding channel, and checks the leader's results and errors come
// back unchanged: grants get IDs from the leader's generator, renewals
// join its group commit, state errors keep their type and fields, and a
// linearizable read on any member sees every write acknowledged before it.
func TestFollowersServeTheWholeAPI(t *testing.T) {
	tc := startCluster(t, 3, clusterOpts{})
	leader := tc.leader()
	fs := tc.followers(leader)
	ctx := ctxT(t, 60*time.Second)

	for i, f := range fs {
		l, err := f.Grant(ctx, 30, fmt.Sprintf("/svc/%d", i), 0)
		if err != nil || l.ID <= 0 || l.TTL != 30 || l.Remaining != 30 {
			t.Fatalf("grant via %s: %+v %v", f.ID(), l, err)
		}
		if _, err := f.Grant(ctx, 30, "", l.ID); !errors.Is(err, fsm.ErrLeaseExists) {
			t.Fatalf("grant of a taken id via %s: %v", f.ID(), err)
		}
		key := fmt.Sprintf("/svc/%d/ep", i)
		res, err := f.Put(ctx, fsm.Put{Key: key, Value: []byte("a"), Lease: l.ID})
		if err != nil || res.Revision <= 0 {
			t.Fatalf("put via %s: %+v %v", f.ID(), res, err)
		}
		res2, err := f.Put(ctx, fsm.Put{Key: key, Value: []byte("b"), Lease: l.ID, HasCAS: true, CAS: res.Revision})
		if err != nil || res2.Prev == nil || string(res2.Prev.Value) != "a" {
			t.Fatalf("cas put via %s: %+v %v", f.ID(), res2, err)
		}
		_, err = f.Put(ctx, fsm.Put{Key: key, Value: []byte("c"), HasCAS: true, CAS: res.Revision})
		var cas *fsm.CASError
		if !errors.As(err, &cas) || cas.Current != res2.Revision {
			t.Fatalf("stale cas via %s: %v, want a CAS error at %d", f.ID(), err, res2.Revision)
		}
		if _, err := f.Put(ctx, fsm.Put{Key: "/x", Lease: 12345}); !errors.Is(err, fsm.ErrLeaseNotFound) {
			t.Fatalf("put on a missing lease via %s: %v", f.ID(), err)
		}
		if _, err := f.Put(ctx, fsm.Put{Key: "/big", Value: make([]byte, f.MaxValueBytes()+1)}); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("oversized put via %s: %v", f.ID(), err)
		}
		renewed, notFound, err := f.KeepAlive(ctx, []int64{l.ID, 777, l.ID})
		if err != nil || len(renewed) != 1 || renewed[0].ID != l.ID || len(notFound) != 1 || notFound[0] != 777 {
			t.Fatalf("keepalive via %s: %+v %v %v", f.ID(), renewed, notFound, err)
		}
		st, err := f.Read(ctx, false)
		if err != nil {
			t.Fatal(err)
		}
		if kv, ok := st.Get(key); !ok || string(kv.Value) != "b" || kv.Lease != l.ID {
			t.Fatalf("read via %s after its own writes: %+v %v", f.ID(), kv, ok)
		}
		rev, err := f.Revoke(ctx, l.ID)
		if err != nil || rev <= res2.Revision {
			t.Fatalf("revoke via %s: %d %v", f.ID(), rev, err)
		}
		if _, err := f.Revoke(ctx, l.ID); !errors.Is(err, fsm.ErrLeaseNotFound) {
			t.Fatalf("second revoke via %s: %v", f.ID(), err)
		}
		if _, err := f.Incr(ctx, key, 1); err != nil && !errors.Is(err, fsm.ErrInvalidArgument) {
			t.Fatalf("incr of a missing key via %s: %v", f.ID(), err)
		}
		// A txn whose grant gets its ID on the leader and whose put names
		// that lease by placeholder; then one refused by its CAS.
		tres, err := f.Txn(ctx, []fsm.Command{
			fsm.Grant{TTL: 20, Name: "/txn"},
			fsm.Put{Key: "/txn/" + f.ID(), Value: []byte("t"), Lease: TxnLease(0)},
		})
		if err != nil || len(tres.Ops) != 2 || tres.Ops[0].Lease.ID <= 0 {
			t.Fatalf("txn via %s: %+v %v", f.ID(), tres, err)
		}
		_, err = f.Txn(ctx, []fsm.Command{fsm.Put{Key: "/txn/" + f.ID(), HasCAS: true, CAS: 1}})
		if !errors.As(err, &cas) || cas.Current != tres.Revision || !strings.Contains(err.Error(), "txn operation 1") {
			t.Fatalf("refused txn via %s: %v", f.ID(), err)
		}
		// Access control changes travel the same way.
		role := "r-" + f.ID()
		if err := f.PutRole(ctx, fsm.Role{Name: role, Rules: []fsm.Rule{{Prefix: "/svc/", Read: true}}}); err != nil {
			t.Fatalf("put role via %s: %v", f.ID(), err)
		}
		if _, secret, err := f.CreateToken(ctx, "tok-"+f.ID(), []string{role}); err != nil || secret == "" {
			t.Fatalf("create token via %s: %v", f.ID(), err)
		}
		if st, err := f.Read(ctx, false); err != nil {
			t.Fatal(err)
		} else if _, ok := st.Role(role); !ok {
			t.Fatalf("role made via %s not there", f.ID())
		}
		d, err := f.Delete(ctx, fsm.Delete{Key: "/svc/", Prefix: true})
		if err != nil {
			t.Fatalf("prefix delete via %s: %+v %v", f.ID(), d, err)
		}
	}

	// Concurrent increments through every member add up, and a read
	// through each member right after sees the total.
	const per = 40
	var wg sync.WaitGroup
	for _, n := range tc.nodes {
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range per / 4 {
					if _, err := n.Incr(ctx, "/counter", 1); err != nil {
						t.Errorf("incr via %s: %v", n.ID(), err)
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	for _, n := range tc.nodes {
		st, err := n.Read(ctx, false)
		if err != nil {
			t.Fatal(err)
		}
		if kv, ok := st.Get("/counter"); !ok || string(kv.Value) != strconv.Itoa(3*per) {
			t.Fatalf("counter via %s: %+v", n.ID(), kv)
		}
	}
}

// TestFollowerReadsAreLinearizable writes through the leader and reads
// through a follower at once, many times: the follower's read index makes
// it wait for the write to apply on its own replica.
func TestFollowerReadsAreLinearizable(t *testing.T) {
	tc := startCluster(t, 3, clusterOpts{})
	leader := tc.leader()
	ctx := ctxT(t, 60*time.Second)
	for i := range 100 {
		f := tc.followers(leader)[i%2]
		want := strconv.Itoa(i)
		if _, err := leader.Put(ctx, fsm.Put{Key: "/lin", Value: []byte(want)}); err != nil {
			t.Fatal(err)
		}
		st, err := f.Read(ctx, false)
		if err != nil {
			t.Fatal(err)
		}
		if kv, ok := st.Get("/lin"); !ok || string(kv.Value) != want {
			t.Fatalf("read %d via %s: %+v, want %q", i, f.ID(), kv, want)
		}
	}
}

// keepAliveGroups is how many keep-alive groups n committed or forwarded.
func keepAliveGroups(t *testing.T, n *Node) uint64 {
	t.Helper()
	var m dto.Metric
	if err := n.met.keepAliveBatch.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram().GetSampleCount()
}

// TestFollowerCoalescesKeepAlives: renewals sent to a follower at once
// travel to the leader in groups, not one request each, and every caller
// still gets its own answer: its lease renewed, the unknown ID not found.
func TestFollowerCoalescesKeepAlives(t *testing.T) {
	tc := startCluster(t, 3, clusterOpts{})
	leader := tc.leader()
	f := tc.followers(leader)[0]
	ctx := ctxT(t, 30*time.Second)
	const n = 200
	ids := make([]int64, n)
	for i := range ids {
		l, err := leader.Grant(ctx, 60, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = l.ID
	}
	before := keepAliveGroups(t, f)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, nf, err := f.KeepAlive(ctx, []int64{ids[i], 1, ids[i]})
			if err != nil || len(r) != 1 || r[0].ID != ids[i] || r[0].TTL != 60 || len(nf) != 1 || nf[0] != 1 {
				t.Errorf("keepalive %d at the follower: %+v %v %v", i, r, nf, err)
			}
		}()
	}
	wg.Wait()
	groups := keepAliveGroups(t, f) - before
	t.Logf("%d renewals at the follower went to the leader in %d groups", n, groups)
	if groups == 0 || groups >= n {
		t.Fatalf("%d renewals at the follower went to the leader in %d groups", n, groups)
	}
}

// TestFollowerKeepAlivesWithoutLeader: renewals coalesced at a follower
// that can reach no leader each fail, as refused (ErrNoLeader) or, when
// the follower led for a moment (the closing leader hands leadership over)
// and lost it with them in flight, as of unknown outcome (ErrTimeout); and
// none waits out its deadline.
func TestFollowerKeepAlivesWithoutLeader(t *testing.T) {
	tc := startCluster(t, 3, clusterOpts{})
	leader := tc.leader()
	l, err := leader.Grant(ctxT(t, 10*time.Second), 60, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	fs := tc.followers(leader)
	f := fs[0]
	testutil.Eventually(t, 10*time.Second, "the follower holds the lease", func() bool {
		_, ok := f.FSM().State().Lease(l.ID)
		return ok
	})
	for _, n := range []*Node{leader, fs[1]} {
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, err := f.KeepAlive(ctx, []int64{l.ID})
			if !errors.Is(err, ErrNoLeader) && !errors.Is(err, ErrTimeout) {
				t.Errorf("keepalive %d at a follower without a leader: %v, want ErrNoLeader or ErrTimeout", i, err)
			}
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		t.Fatal("the renewals waited out their deadline")
	}
}
