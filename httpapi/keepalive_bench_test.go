package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rosterhq/roster/registry"
)

// BenchmarkKeepAliveHTTP renews 10,000 leases round-robin from 64 concurrent
// clients through POST /v1/leases/{id}/keepalive on one member (bbolt and
// raft log fsync on, as in production); renewals are group-committed.
func BenchmarkKeepAliveHTTP(b *testing.B) {
	e := newEnvWith(b, func(c *registry.Config) { c.NoSync = false; c.Tick = registry.DefaultTick }, nil)
	ids := grantMany(b, e, 10000)
	tr := &http.Transport{MaxIdleConnsPerHost: 128}
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	var next atomic.Int64
	b.SetParallelism(32) // 64 goroutines on 2 cores
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := ids[next.Add(1)%int64(len(ids))]
			resp, err := hc.Post(e.ts.URL+"/v1/leases/"+id+"/keepalive", "", nil)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("keepalive: %d", resp.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "renewals/s")
}

// BenchmarkKeepAliveBatchHTTP renews 100 leases per request through
// POST /v1/leases/keepalive from 16 concurrent clients.
func BenchmarkKeepAliveBatchHTTP(b *testing.B) {
	e := newEnvWith(b, func(c *registry.Config) { c.NoSync = false; c.Tick = registry.DefaultTick }, nil)
	ids := grantMany(b, e, 10000)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 30 * time.Second}
	var next atomic.Int64
	b.SetParallelism(8)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := int(next.Add(100)) % (len(ids) - 100)
			body, _ := json.Marshal(map[string]any{"ids": ids[i : i+100]})
			resp, err := hc.Post(e.ts.URL+"/v1/leases/keepalive", "application/json", strings.NewReader(string(body)))
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
	b.ReportMetric(float64(b.N)*100/time.Since(start).Seconds(), "renewals/s")
}

func grantMany(b *testing.B, e *env, n int) []string {
	b.Helper()
	ids := make([]string, n)
	var wg sync.WaitGroup
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 32 {
				l, err := e.node.Grant(context.Background(), 600, "", 0)
				if err != nil {
					b.Error(err)
					return
				}
				ids[i] = strconv.FormatInt(l.ID, 10)
			}
		}()
	}
	wg.Wait()
	return ids
}
