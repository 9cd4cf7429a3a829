package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rosterhq/roster/registry"
)

// The cluster benchmarks drive an in-process three-member cluster over
// HTTP the way peerbench drives rosterd processes: 64 concurrent clients,
// each request to the next member in turn (two thirds reach a follower),
// keep-alive connections, durable logs (fsync on). They report ops/s; run
// them with -benchtime 10s for figures comparable to peerbench's:
//
//	go test -run '^$' -bench 'Cluster' -benchtime 10s ./httpapi/
//
// The client shares the process, so the figures are the cluster's and the
// client's cost together.

const benchClients = 64

// benchCluster starts three members with fsync on and returns their base
// URLs and a client pooled for the load.
func benchCluster(b *testing.B) ([]string, *http.Client) {
	b.Helper()
	envs := newClusterEnvWith(b, 3, func(c *registry.Config) {
		c.NoSync = false
		c.CommitTimeout = 50 * time.Millisecond // rosterd's default
		c.Tick = registry.DefaultTick
	})
	var urls []string
	for _, e := range envs {
		urls = append(urls, e.ts.URL)
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: benchClients, MaxIdleConns: 3 * benchClients}}
	b.Cleanup(hc.CloseIdleConnections)
	return urls, hc
}

// runClients runs op from benchClients goroutines, b.N times in all, each
// call on the next member, and reports ops/s.
func runClients(b *testing.B, urls []string, op func(base string, i int) error) {
	b.Helper()
	var next, failed atomic.Int64
	b.SetParallelism((benchClients + 1) / max(1, testingProcs()))
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := int(next.Add(1))
			if err := op(urls[i%len(urls)], i); err != nil {
				if failed.Add(1) < 5 {
					b.Error(err)
				}
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "ops/s")
}

func testingProcs() int { return runtime.GOMAXPROCS(0) }

func do(hc *http.Client, method, url string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(context.Background(), method, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	res, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	if err == nil && res.StatusCode/100 != 2 {
		err = fmt.Errorf("%s %s: %d %s", method, url, res.StatusCode, out)
	}
	return out, err
}

// BenchmarkClusterPut: 256-byte values at random keys of 100,000
// (peerbench put).
//
// Each benchmark starts its cluster once, in the parent, and measures in a
// sub-benchmark, which the testing package may call several times.
func BenchmarkClusterPut(b *testing.B) {
	urls, hc := benchCluster(b)
	value := bytes.Repeat([]byte("v"), 256)
	b.Run("256B", func(b *testing.B) {
		runClients(b, urls, func(base string, i int) error {
			_, err := do(hc, "PUT", fmt.Sprintf("%s/v1/kv/bench/%d", base, rand.N(100000)), value)
			return err
		})
	})
}

// BenchmarkClusterKeepAlive: 10,000 leases renewed one per request, in
// turn (peerbench keepalive).
func BenchmarkClusterKeepAlive(b *testing.B) {
	urls, hc := benchCluster(b)
	ids := grantLeases(b, hc, urls[0], 10000)
	b.Run("one-per-request", func(b *testing.B) {
		runClients(b, urls, func(base string, i int) error {
			_, err := do(hc, "POST", base+"/v1/leases/"+ids[i%len(ids)]+"/keepalive", nil)
			return err
		})
	})
	b.Run("100-per-request", func(b *testing.B) {
		runClients(b, urls, func(base string, i int) error {
			from := (i * 100) % len(ids)
			body, _ := json.Marshal(map[string][]string{"ids": ids[from : from+100]})
			_, err := do(hc, "POST", base+"/v1/leases/keepalive", body)
			return err
		})
	})
}

// BenchmarkClusterRegister: a grant of TTL 30 s, then a put of a 200-byte
// value under /services/svc-N/inst-M attached to it (peerbench register).
// Each registration is two writes, one after the other, each on the next
// member; the leases are left to expire.
func BenchmarkClusterRegister(b *testing.B) {
	urls, hc := benchCluster(b)
	value := bytes.Repeat([]byte("r"), 200)
	b.Run("grant+put", func(b *testing.B) {
		runClients(b, urls, func(base string, i int) error {
			out, err := do(hc, "POST", base+"/v1/leases", []byte(`{"ttl":30}`))
			if err != nil {
				return err
			}
			var g struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal(out, &g); err != nil {
				return err
			}
			_, err = do(hc, "PUT", fmt.Sprintf("%s/v1/kv/services/svc-%d/inst-%d?lease=%s", urls[(i+1)%len(urls)], i%100, i, g.ID), value)
			return err
		})
	})
}

// BenchmarkClusterLookup: prefix reads of 50 keys of 200 bytes, among 100
// prefixes (peerbench lookup), linearizable and stale.
func BenchmarkClusterLookup(b *testing.B) {
	urls, hc := benchCluster(b)
	value := bytes.Repeat([]byte("x"), 200)
	for s := range 100 {
		for k := range 50 {
			if _, err := do(hc, "PUT", fmt.Sprintf("%s/v1/kv/services/svc-%d/inst-%d", urls[0], s, k), value); err != nil {
				b.Fatal(err)
			}
		}
	}
	for _, u := range urls { // every member has applied the setup
		if _, err := do(hc, "GET", u+"/v1/kv/services/?prefix=true&count_only=true", nil); err != nil {
			b.Fatal(err)
		}
	}
	// "writes": one more client puts to a key outside the listings the
	// whole time, so every listing cached at a revision is soon outdated:
	// the listing cache's worst case.
	for _, mode := range []string{"stale=false", "stale=true", "stale=true/writes"} {
		q := "?prefix=true"
		if strings.HasPrefix(mode, "stale=true") {
			q += "&stale=true"
		}
		b.Run(mode, func(b *testing.B) {
			if strings.HasSuffix(mode, "/writes") {
				stop := make(chan struct{})
				done := make(chan struct{})
				var writes atomic.Int64
				go func() {
					defer close(done)
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						if _, err := do(hc, "PUT", fmt.Sprintf("%s/v1/kv/elsewhere/%d", urls[i%len(urls)], i%100), value); err != nil {
							b.Error(err)
							return
						}
						writes.Add(1)
					}
				}()
				start := time.Now()
				defer func() {
					close(stop)
					<-done
					b.ReportMetric(float64(writes.Load())/time.Since(start).Seconds(), "writes/s")
				}()
			}
			runClients(b, urls, func(base string, i int) error {
				out, err := do(hc, "GET", fmt.Sprintf("%s/v1/kv/services/svc-%d/%s", base, rand.N(100), q), nil)
				if err == nil && strings.Count(string(out), `"key":`) != 50 {
					err = fmt.Errorf("answer without 50 kvs: %.100s", out)
				}
				return err
			})
		})
	}
}

// grantLeases grants n leases of TTL 120 s and returns their IDs.
func grantLeases(b *testing.B, hc *http.Client, base string, n int) []string {
	b.Helper()
	ids := make([]string, n)
	for i := range ids {
		out, err := do(hc, "POST", base+"/v1/leases", []byte(`{"ttl":120}`))
		if err != nil {
			b.Fatal(err)
		}
		var g struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(out, &g); err != nil {
			b.Fatal(err)
		}
		ids[i] = g.ID
	}
	return ids
}
