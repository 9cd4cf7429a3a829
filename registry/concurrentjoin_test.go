package registry_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rosterhq/roster/internal/logging/logtest"
	"github.com/rosterhq/roster/internal/testutil"
	"github.com/rosterhq/roster/registry"
)

// TestConcurrentJoinsGetDistinctNodeNumbers: members added at the same
// time (the README's recipe starts n2 and n3 one after the other, each
// joining at once) each read the state for a free snowflake node number
// before the other's record was applied, and got the same one; the next
// leader then logged "snowflake node number already used by another
// member" although nobody gave -bind. Each add now gets its own.
func TestConcurrentJoinsGetDistinctNodeNumbers(t *testing.T) {
	n, err := registry.Open(registry.Config{
		ID: "n1", DataDir: t.TempDir(), RaftAddr: "127.0.0.1:0", Bootstrap: true, NodeNumber: -1,
		HTTPAdvertise: "127.0.0.1:1", NoSync: true,
	}, logtest.ForTest(t), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	testutil.Eventually(t, 10*time.Second, "n1 ready", func() bool { return n.Ready() == nil })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const joins = 6
	var wg sync.WaitGroup
	errs := make(chan error, joins)
	for i := range joins {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Non-voters may be added before they run: nothing need answer.
			id := "nv" + strconv.Itoa(i)
			errs <- n.AddMember(ctx, registry.JoinRequest{ID: id, RaftAddr: "127.0.0.1:" + strconv.Itoa(20001+i), HTTPAddr: "127.0.0.1:" + strconv.Itoa(21001+i)})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("add: %v", err)
		}
	}
	seen := map[int64]string{}
	members := n.FSM().State().Members()
	if len(members) != joins+1 {
		t.Fatalf("%d member records, want %d: %+v", len(members), joins+1, members)
	}
	for _, m := range members {
		if m.Node <= 0 {
			t.Fatalf("member %s has no node number: %+v", m.ID, members)
		}
		if other, dup := seen[m.Node]; dup {
			t.Fatalf("members %s and %s share node number %d: %+v", other, m.ID, m.Node, members)
		}
		seen[m.Node] = m.ID
	}
}
