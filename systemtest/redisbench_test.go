package systemtest

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rosterhq/roster/internal/cluster"
)

// BenchmarkRedisPort compares, on one three-member cluster in one run, the
// HTTP put rate with redis-benchmark's SET and GET rates, without and with
// pipelining, all against the leader and with 50 clients each. It prints a
// table; docs/benchmarks.md quotes it. Hold the machine's benchmark lock so
// that nothing else measures at the same time:
//
//	flock bench.lock go test ./systemtest -run '^$' -bench RedisPort -benchtime 1x
//
// redis-benchmark comes with Debian's redis-tools.
func BenchmarkRedisPort(b *testing.B) {
	bench, err := exec.LookPath("redis-benchmark")
	if err != nil {
		b.Skip("redis-benchmark is not installed (Debian's redis-tools)")
	}
	c := cluster.New(b)
	ports := map[*cluster.Member]string{}
	for i := range 3 {
		m := c.Add()
		ports[m] = freeAddr(b)
		args := []string{"-redis", ports[m]}
		if i > 0 {
			args = append(args, "-join", c.Members[0].HTTP)
		}
		m.Start(args...)
		c.WaitReady(60*time.Second, m)
	}
	c.WaitVoters(60*time.Second, 3)
	leader := c.Leader(30 * time.Second)
	host, port, _ := strings.Cut(ports[leader], ":")
	const clients = 50
	for range b.N {
		httpRate := httpPuts(b, leader, 20_000, clients)
		type row struct {
			name string
			rps  float64
		}
		rows := []row{{"HTTP PUT /v1/kv (3-byte values)", httpRate}}
		for _, p := range []struct {
			n, pipeline int
		}{{20_000, 1}, {200_000, 16}} {
			out, err := exec.Command(bench, "-h", host, "-p", port, "-t", "set,get", "-n", strconv.Itoa(p.n),
				"-c", strconv.Itoa(clients), "-P", strconv.Itoa(p.pipeline), "--csv").Output()
			if err != nil {
				b.Fatalf("redis-benchmark: %v\n%s", err, out)
			}
			recs, err := csv.NewReader(bytes.NewReader(out)).ReadAll()
			if err != nil {
				b.Fatalf("redis-benchmark output %q: %v", out, err)
			}
			for _, r := range recs[1:] {
				rps, _ := strconv.ParseFloat(r[1], 64)
				rows = append(rows, row{fmt.Sprintf("redis-benchmark %s -P %d", r[0], p.pipeline), rps})
			}
		}
		var sb strings.Builder
		fmt.Fprintf(&sb, "\n| what (50 clients, against the leader) | requests/s | vs HTTP put |\n|---|---|---|\n")
		for _, r := range rows {
			fmt.Fprintf(&sb, "| %s | %.0f | %.2fx |\n", r.name, r.rps, r.rps/httpRate)
		}
		fmt.Print(sb.String())
		b.ReportMetric(httpRate, "http-puts/s")
		for _, r := range rows[1:] {
			if strings.HasPrefix(r.name, "redis-benchmark SET") {
				b.ReportMetric(r.rps/httpRate, "x-http("+strings.TrimPrefix(strings.ReplaceAll(r.name, " ", ""), "redis-benchmark")+")")
			}
		}
	}
}

// httpPuts is the rate of n PUTs of 3-byte values by clients concurrent
// clients against m.
func httpPuts(b *testing.B, m *cluster.Member, n, clients int) float64 {
	tr := &http.Transport{MaxIdleConnsPerHost: clients}
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	defer tr.CloseIdleConnections()
	var next, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				req, _ := http.NewRequest(http.MethodPut, m.URL("/v1/kv/bench/"+strconv.FormatInt(i%10_000, 10)), strings.NewReader("xxx"))
				resp, err := hc.Do(req)
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				if resp.StatusCode != http.StatusOK {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, resp.Status)
				}
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if f := failed.Load(); f > 0 {
		b.Fatalf("%d of %d HTTP puts failed; the first: %v", f, n, firstErr.Load())
	}
	return float64(n) / elapsed.Seconds()
}
