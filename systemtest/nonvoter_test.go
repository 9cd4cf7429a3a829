package systemtest

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/rosterhq/roster/internal/cluster"
)

// replicationLag is how late the leader's bytes reach the non-voter in
// TestNonVoterServesEverything: long enough that the non-voter's replica
// is certainly behind when a write is acknowledged.
const replicationLag = 300 * time.Millisecond

// TestNonVoterServesEverything adds a non-voting member to a three-voter
// cluster (through a follower) and checks that it serves as a voter does:
// with the leader's appends reaching it late, a linearizable read on it
// still sees each write acknowledged just before (it waits for the read
// index), while its stale reads show its replica is behind; a blocking
// read waiting on it answers with the next write; its watch delivers the
// leader's writes in order; writes and renewals sent to it are forwarded.
// It never counts as a voter: /readyz says not_ready and the cluster
// keeps its three voters.
func TestNonVoterServesEverything(t *testing.T) {
	c := cluster.StartNet(t, 3, "-tick", "100ms")
	leader := c.Leader(30 * time.Second)
	nv := c.Add()
	nv.Start("-bootstrap=false")
	c.Eventually(30*time.Second, nv.ID+" serving HTTP", func() bool {
		code, _, err := try("GET", nv.URL("/healthz"), nil)
		return err == nil && code == 200
	})
	body := fmt.Sprintf(`{"id":%q,"raft_addr":%q,"http_addr":%q,"voter":false}`, nv.ID, nv.RaftProxy, nv.HTTPProxy)
	var added struct {
		ID    string `json:"id"`
		Voter bool   `json:"voter"`
	}
	code, b := do(t, "POST", c.Followers(leader)[0].URL("/v1/cluster/members"), []byte(body))
	mustJSON(t, code, b, &added)
	if added.ID != nv.ID || added.Voter {
		t.Fatalf("added through a follower: %s", b)
	}
	leader = c.WaitCaughtUp(30*time.Second, nv)
	c.WaitVoters(10*time.Second, 3)
	if code, b := do(t, "GET", nv.URL("/readyz"), nil); code != 503 || errorCode(b) != "not_ready" {
		t.Fatalf("/readyz on the non-voter: %d %s, want 503 not_ready", code, b)
	}

	// Reads: linearizable through the read index, though the replica lags.
	c.Net.SetLink(leader, nv, cluster.Link{Delay: replicationLag})
	behind := 0
	for i := range 5 {
		v := strconv.Itoa(i)
		if code, b := do(t, "PUT", leader.URL("/v1/kv/nv/x"), []byte(v)); code != 200 {
			t.Fatalf("put %d: %d %s", i, code, b)
		}
		var stale kvJSON
		code, b := do(t, "GET", nv.URL("/v1/kv/nv/x?stale=true"), nil)
		if code == 200 {
			mustJSON(t, code, b, &stale)
		}
		if stale.Value != v {
			behind++
		}
		var kv kvJSON
		code, b = do(t, "GET", nv.URL("/v1/kv/nv/x"), nil)
		mustJSON(t, code, b, &kv)
		if kv.Value != v {
			t.Fatalf("linearizable read on the non-voter right after put %d: %q", i, kv.Value)
		}
		var list listJSON
		code, b = do(t, "GET", nv.URL("/v1/kv/nv/?prefix=true"), nil)
		mustJSON(t, code, b, &list)
		if len(list.KVs) != 1 || list.KVs[0].Value != v {
			t.Fatalf("linearizable listing on the non-voter right after put %d: %s", i, b)
		}
	}
	if behind == 0 {
		t.Fatalf("the non-voter's stale reads were never behind: the delayed link did not delay, so the reads above proved nothing")
	}
	t.Logf("stale reads behind the acknowledged write: %d of 5", behind)
	c.Net.Heal()

	// A blocking read on the non-voter answers with the next write.
	var cur kvJSON
	code, b = do(t, "GET", nv.URL("/v1/kv/nv/x"), nil)
	mustJSON(t, code, b, &cur)
	blocked := make(chan kvJSON, 1)
	go func() {
		var kv kvJSON
		code, b, err := try("GET", nv.URL(fmt.Sprintf("/v1/kv/nv/x?wait=15s&index=%d", cur.ModRevision)), nil)
		if err != nil || code != 200 {
			t.Errorf("blocking read on the non-voter: %d %s %v", code, b, err)
		} else if err := json.Unmarshal(b, &kv); err != nil {
			t.Errorf("blocking read on the non-voter: %s: %v", b, err)
		}
		blocked <- kv
	}()
	// The write must find it waiting, or it would prove nothing.
	c.Eventually(10*time.Second, "the blocking read waiting on the non-voter", func() bool {
		ms, err := c.Metrics(nv)
		return err == nil && ms["roster_blocking_reads_open"] == 1
	})
	if code, b := do(t, "PUT", leader.URL("/v1/kv/nv/x"), []byte("next")); code != 200 {
		t.Fatalf("put after the blocking read: %d %s", code, b)
	}
	if kv := <-blocked; kv.Value != "next" {
		t.Fatalf("blocking read on the non-voter from revision %d answered %+v, want the next write", cur.ModRevision, kv)
	}

	// Watches: the leader's writes, in order, on the non-voter's stream.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	events := watchStream(ctx, t, nv.URL("/v1/watch/nvw/?prefix=true"))
	expectEvents(ctx, t, events, leasedPutsThenRevoke(t, leader, "/nvw"))

	// Writes and renewals sent to the non-voter reach the leader.
	l := grant(t, nv.URL(""), 30, "/nv/svc")
	if code, b := do(t, "PUT", nv.URL("/v1/kv/nv/svc?lease="+l.ID), []byte("ep")); code != 200 {
		t.Fatalf("put with lease via the non-voter: %d %s", code, b)
	}
	var ka leaseJSON
	code, b = do(t, "POST", nv.URL("/v1/leases/"+l.ID+"/keepalive"), nil)
	mustJSON(t, code, b, &ka)
	if ka.TTL != 30 {
		t.Fatalf("keep-alive via the non-voter: %s", b)
	}
	var kv kvJSON
	code, b = do(t, "GET", leader.URL("/v1/kv/nv/svc"), nil)
	mustJSON(t, code, b, &kv)
	if kv.Value != "ep" || kv.Lease != l.ID {
		t.Fatalf("the non-voter's write, read on the leader: %s", b)
	}
	c.WaitVoters(10*time.Second, 3)
}
