package registry_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rosterhq/roster/fsm"
	"github.com/rosterhq/roster/internal/cluster"
	"github.com/rosterhq/roster/internal/testutil"
	"github.com/rosterhq/roster/registry"
	"log/slog"
)

// TestRestartTimeManyKeys measures how long a one-member rosterd holding
// many keys takes from kill -9 to /readyz 200. It runs only when
// ROSTER_RESTART_KEYS is set (e.g. 1000000): building the state takes
// minutes.
//
//	ROSTER_RESTART_KEYS=1000000 go test -run TestRestartTimeManyKeys -v -timeout 30m ./registry/
//
// The keys (100-byte values, a tenth of them on leases) are written
// in-process with Txns of 10,000 puts, then a snapshot is taken and
// ROSTER_RESTART_WRITES (default 200,000) single puts follow from 64
// writers, as under sustained load, with the default snapshot policy
// deciding when raft snapshots: a restart reads back every log entry after
// the newest snapshot, so that policy bounds the restart time. rosterd then runs on the data,
// is killed with SIGKILL under a trickle of writes and restarted; each
// restart's time to /readyz is logged on a RESTART: line.
func TestRestartTimeManyKeys(t *testing.T) {
	keys, _ := strconv.Atoi(os.Getenv("ROSTER_RESTART_KEYS"))
	if keys <= 0 {
		t.Skip("set ROSTER_RESTART_KEYS to a number of keys to measure a restart")
	}
	c := cluster.New(t, "-tick", "500ms")
	m := c.Add()
	cfg := nodeConfig(m.Dir)
	cfg.RaftAddr = m.Raft
	cfg.HTTPAdvertise = m.HTTP
	n, err := registry.Open(cfg, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	testutil.Eventually(t, time.Minute, "the in-process node to be ready", func() bool { return n.Ready() == nil })
	built := time.Now()
	value := []byte(strings.Repeat("v", 100))
	for i := 0; i < keys; {
		var ops []fsm.Command
		for ; len(ops) < registry.MaxTxnOps-1 && i < keys; i++ {
			p := fsm.Put{Key: fmt.Sprintf("/services/svc-%04d/node-%08d", i%1000, i), Value: value}
			if i%10 == 0 {
				ops = append(ops, fsm.Grant{TTL: 3600})
				p.Lease = registry.TxnLease(len(ops) - 1)
			}
			ops = append(ops, p)
		}
		if _, err := n.Txn(ctx, ops); err != nil {
			t.Fatalf("txn at key %d: %v", i, err)
		}
	}
	if _, err := n.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("built %d keys in %v", keys, time.Since(built).Round(time.Second))
	writes := 200_000
	if w, err := strconv.Atoi(os.Getenv("ROSTER_RESTART_WRITES")); err == nil && w >= 0 {
		writes = w
	}
	sustained := time.Now()
	sustainWrites(t, n, writes, value)
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("then %d single puts from 64 writers in %v, the node's own snapshot policy in force", writes, time.Since(sustained).Round(time.Second))

	m.Start()
	c.WaitReady(5*time.Minute, m)
	for run := 1; run <= 3; run++ {
		// A trickle of writes, so the kill lands between checkpoints.
		for i := 0; i < 50; i++ {
			req, _ := http.NewRequest("PUT", m.URL(fmt.Sprintf("/v1/kv/trickle/%d/%d", run, i)), strings.NewReader("x"))
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}
		m.Kill()
		start := time.Now()
		m.Restart()
		if !testutil.Poll(5*time.Minute, func() bool { return c.Ready(m) || !m.Running() }) || !m.Running() {
			t.Fatalf("member not ready after %v:\n%s", time.Since(start), m.Logs())
		}
		t.Logf("RESTART: %d keys: ready %v after kill -9 (run %d)", keys, time.Since(start).Round(time.Millisecond), run)
	}
}

// sustainWrites makes count single puts from 64 writers, to count keys
// under /after/ in a scattered order.
func sustainWrites(t *testing.T, n *registry.Node, count int, value []byte) {
	t.Helper()
	var next atomic.Int64
	var failed atomic.Value
	var wg sync.WaitGroup
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= int64(count); i = next.Add(1) {
				k := (i * 7919) % int64(count)
				p := fsm.Put{Key: fmt.Sprintf("/after/%08d", k), Value: value}
				if _, err := n.Put(context.Background(), p); err != nil {
					failed.CompareAndSwap(nil, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		t.Fatal(err)
	}
}
