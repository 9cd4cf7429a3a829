package systemtest

import (
	"fmt"
	"testing"
	"time"

	"github.com/rosterhq/roster/internal/cluster"
)

// TestKillRestartKeepsAcknowledgedState writes keys and leases, kills the
// process with SIGKILL (no clean shutdown), restarts it and checks that
// every acknowledged key and lease is back with a consistent remaining TTL.
func TestKillRestartKeepsAcknowledgedState(t *testing.T) {
	c := cluster.Start(t, 1, "-tick", "100ms")
	m := c.Members[0]
	base := m.URL("")
	const n = 200
	granted := time.Now()
	leases := map[string]leaseJSON{}
	for i := 0; i < 20; i++ {
		l := grant(t, base, 60, fmt.Sprintf("/svc/n%d", i))
		leases[l.ID] = l
	}
	ids := make([]string, 0, len(leases))
	for id := range leases {
		ids = append(ids, id)
	}
	for i := 0; i < n; i++ {
		url := fmt.Sprintf("%s/v1/kv/data/k%03d", base, i)
		if i%2 == 0 {
			url += "?lease=" + ids[i%len(ids)]
		}
		if code, b := do(t, "PUT", url, []byte(fmt.Sprintf("v%d", i))); code != 200 {
			t.Fatalf("put %d: %d %s", i, code, b)
		}
	}
	m.Kill()
	m.Restart()
	c.WaitReady(30*time.Second, m)

	var list listJSON
	code, b := do(t, "GET", base+"/v1/kv/data/?prefix=true", nil)
	mustJSON(t, code, b, &list)
	if len(list.KVs) != n || list.Revision != n {
		t.Fatalf("after restart: %d keys at revision %d, want %d", len(list.KVs), list.Revision, n)
	}
	for i, kv := range list.KVs {
		if want := fmt.Sprintf("v%d", i); kv.Value != want {
			t.Fatalf("key %s = %q, want %q", kv.Key, kv.Value, want)
		}
		if (i%2 == 0) != (kv.Lease != "") {
			t.Fatalf("key %s lease %q", kv.Key, kv.Lease)
		}
	}
	for id, before := range leases {
		var l leaseJSON
		code, b := do(t, "GET", base+"/v1/leases/"+id, nil)
		mustJSON(t, code, b, &l)
		// The lease clock does not run while the member is down: at most the
		// time since the grant has been counted against the lease.
		elapsed := int64(time.Since(granted).Seconds()) + 1
		if l.Name != before.Name || l.TTL != 60 || l.Remaining > 60 || l.Remaining < 60-elapsed {
			t.Fatalf("lease %s after restart: %+v (before %+v)", id, l, before)
		}
	}
}
