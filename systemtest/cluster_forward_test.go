package systemtest

import (
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/rosterhq/roster/internal/cluster"
)

// TestEveryMemberServesEverything forms a three-member cluster by -join
// through a follower and checks that any member answers anything: a
// write through one member is seen at once by a linearizable read through
// each of the others (no stale answer from a follower), concurrent
// increments through all members add up, a lease granted through one
// member is renewed through another and read through the third, and a
// stale read is served by the member's own replica (it answers while the
// leader is frozen).
func TestEveryMemberServesEverything(t *testing.T) {
	c := cluster.New(t, "-tick", "100ms")
	n1 := c.Add()
	n1.Start()
	c.WaitReady(30*time.Second, n1)
	n2 := c.Add()
	n2.Start("-join", n1.HTTP)
	c.WaitReady(30*time.Second, n2)
	n3 := c.Add()
	n3.Start("-join", n2.HTTP) // a follower: it forwards the join to the leader
	c.WaitReady(30*time.Second, n3)
	c.WaitVoters(30*time.Second, 3)

	// Read-your-writes across members, through linearizable reads.
	for i := range 60 {
		w := c.Members[i%3]
		if code, b := do(t, "PUT", w.URL("/v1/kv/fwd/x"), []byte(strconv.Itoa(i))); code != 200 {
			t.Fatalf("put %d via %s: %d %s", i, w.ID, code, b)
		}
		for _, r := range c.Members {
			if r == w {
				continue
			}
			var kv kvJSON
			code, b := do(t, "GET", r.URL("/v1/kv/fwd/x"), nil)
			mustJSON(t, code, b, &kv)
			if kv.Value != strconv.Itoa(i) {
				t.Fatalf("linearizable read via %s right after write %d via %s: %q", r.ID, i, w.ID, kv.Value)
			}
		}
	}

	// Concurrent increments through every member.
	const per = 30
	var wg sync.WaitGroup
	errs := make(chan string, 3*per)
	for _, m := range c.Members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range per {
				code, b, err := try("POST", m.URL("/v1/kv/fwd/counter/incr"), []byte(`{"by":1}`))
				if err != nil || code != 200 {
					errs <- fmt.Sprintf("incr via %s: %d %s %v", m.ID, code, b, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	for _, m := range c.Members {
		code, b := do(t, "GET", m.URL("/v1/kv/fwd/counter?raw=true"), nil)
		if code != 200 || string(b) != strconv.Itoa(3*per) {
			t.Fatalf("counter via %s: %d %q, want %d", m.ID, code, b, 3*per)
		}
	}

	// A lease's life through three different members.
	l := grant(t, n2.URL(""), 10, "/svc/fwd")
	if code, b := do(t, "PUT", n3.URL("/v1/kv/fwd/svc?lease="+l.ID), []byte("ep")); code != 200 {
		t.Fatalf("put with lease via n3: %d %s", code, b)
	}
	var ka leaseJSON
	code, b := do(t, "POST", n1.URL("/v1/leases/"+l.ID+"/keepalive"), nil)
	mustJSON(t, code, b, &ka)
	var got struct {
		leaseJSON
		Keys []string `json:"keys"`
	}
	code, b = do(t, "GET", n3.URL("/v1/leases/"+l.ID+"?keys=true"), nil)
	mustJSON(t, code, b, &got)
	if got.TTL != 10 || len(got.Keys) != 1 || got.Keys[0] != "/fwd/svc" {
		t.Fatalf("lease via n3: %s", b)
	}
	code, b = do(t, "DELETE", n1.URL("/v1/leases/"+l.ID), nil)
	if code != 200 {
		t.Fatalf("revoke via n1: %d %s", code, b)
	}
	for _, m := range c.Members {
		if code, b := do(t, "GET", m.URL("/v1/kv/fwd/svc"), nil); code != 404 {
			t.Fatalf("key of a revoked lease via %s: %d %s", m.ID, code, b)
		}
	}

	// Stale reads are local: with the leader frozen (followers still think
	// it leads for a while, so a forwarded read would hang), each
	// follower's stale read answers at once from its replica.
	leader := c.WaitCaughtUp(20 * time.Second)
	leader.Freeze()
	for _, f := range c.Followers(leader) {
		start := time.Now()
		code, b, err := tryWith(fastClient, "GET", f.URL("/v1/kv/fwd/x?stale=true"), nil)
		if err != nil || code != 200 {
			t.Fatalf("stale read on %s with the leader frozen: %d %s %v", f.ID, code, b, err)
		}
		if took := time.Since(start); took > time.Second {
			t.Fatalf("stale read on %s took %v: not served locally", f.ID, took)
		}
	}
	leader.Thaw()
	c.Leader(20 * time.Second)
	c.WaitVoters(20*time.Second, 3)
}
