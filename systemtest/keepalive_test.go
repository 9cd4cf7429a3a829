package systemtest

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rosterhq/roster/internal/cluster"
)

// TestKeepAliveThroughFollowers renews leases through followers, which
// coalesce concurrent renewals into batch requests to the leader: answers
// keep the single and batch shapes, unknown IDs stay not found.
func TestKeepAliveThroughFollowers(t *testing.T) {
	c := cluster.Start(t, 3, "-tick", "100ms")
	leader := c.Leader(30 * time.Second)
	followers := c.Followers(leader)
	var ids []string
	for i := 0; i < 20; i++ {
		ids = append(ids, grant(t, leader.URL(""), 30, fmt.Sprintf("/ka/%d", i)).ID)
	}

	var one leaseJSON
	code, b := do(t, "POST", followers[0].URL("/v1/leases/"+ids[0]+"/keepalive"), nil)
	mustJSON(t, code, b, &one)
	if one.ID != ids[0] || one.TTL != 30 || one.Remaining != 30 {
		t.Fatalf("single keep-alive via follower: %s", b)
	}
	code, b = do(t, "POST", followers[0].URL("/v1/leases/123456789/keepalive"), nil)
	if code != 404 || !strings.Contains(string(b), `"lease_not_found"`) {
		t.Fatalf("unknown lease via follower: %d %s", code, b)
	}
	body, _ := json.Marshal(map[string]any{"ids": append([]string{"42", ids[1], ids[1]}, ids[2:5]...)})
	var batch struct {
		Leases   []leaseJSON `json:"leases"`
		NotFound []string    `json:"not_found"`
	}
	code, b = do(t, "POST", followers[1].URL("/v1/leases/keepalive"), body)
	mustJSON(t, code, b, &batch)
	if len(batch.Leases) != 4 || batch.Leases[0].ID != ids[1] || len(batch.NotFound) != 1 || batch.NotFound[0] != "42" {
		t.Fatalf("batch keep-alive via follower: %s", b)
	}

	// Many concurrent renewals through both followers all succeed.
	var wg sync.WaitGroup
	errs := make(chan string, 400)
	for i := 0; i < 400; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f := followers[i%len(followers)]
			code, b, err := try("POST", f.URL("/v1/leases/"+ids[i%len(ids)]+"/keepalive"), nil)
			if err != nil || code != 200 {
				errs <- fmt.Sprintf("%d %s %v", code, b, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatalf("concurrent keep-alive via follower failed: %s", e)
	}
}
