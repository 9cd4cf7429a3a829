package httpapi

import (
	"bufio"
	"fmt"
	"net"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rosterhq/roster/internal/testutil"
)

// rawWatch opens a watch on a plain TCP connection and calls onEvent with
// each event id as it arrives (nil onEvent: never read, an idle watcher).
func rawWatch(tb testing.TB, addr, path string, onEvent func(id int64)) net.Conn {
	tb.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n", path)
	if onEvent != nil {
		go func() {
			br := bufio.NewReader(conn)
			for {
				line, err := br.ReadString('\n')
				if err != nil {
					return
				}
				if strings.HasPrefix(line, "id: ") {
					id, _ := strconv.ParseInt(strings.TrimSpace(line[4:]), 10, 64)
					onEvent(id)
				}
			}
		}()
	}
	return conn
}

// fanout opens n watchers on /f/ and returns, per revision, how many
// watchers got it and when each arrived.
type fanout struct {
	mu   sync.Mutex
	got  map[int64]int
	seen map[int64][]time.Time
}

func (f *fanout) on(id int64) {
	now := time.Now()
	f.mu.Lock()
	f.got[id]++
	f.seen[id] = append(f.seen[id], now)
	f.mu.Unlock()
}

func (f *fanout) count(id int64) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.got[id]
}

func openFanout(tb testing.TB, e *env, n int, read bool) (*fanout, []net.Conn) {
	f := &fanout{got: map[int64]int{}, seen: map[int64][]time.Time{}}
	addr := strings.TrimPrefix(e.ts.URL, "http://")
	conns := make([]net.Conn, n)
	for i := range conns {
		on := f.on
		if !read {
			on = nil
		}
		conns[i] = rawWatch(tb, addr, "/v1/watch/f/?prefix=true", on)
	}
	testutil.Eventually(tb, 60*time.Second, "watchers open", func() bool {
		return int(promtest.ToFloat64(e.srv.metrics.watchers)) == n
	})
	return f, conns
}

func TestThousandWatchersReceiveEveryEvent(t *testing.T) {
	n, events := 1000, 20
	if testing.Short() {
		n = 100
	}
	e := newEnv(t)
	f, conns := openFanout(t, e, n, true)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	var revs []int64
	for i := 0; i < events; i++ {
		revs = append(revs, e.doStr("PUT", fmt.Sprintf("/v1/kv/f/k%d", i%5), strconv.Itoa(i)).ok(t, 200, nil).revision(t))
	}
	testutil.Eventually(t, 60*time.Second, "every watcher got every event", func() bool {
		for _, r := range revs {
			if f.count(r) != n {
				return false
			}
		}
		return true
	})
	for _, r := range revs {
		if c := f.count(r); c != n {
			t.Fatalf("revision %d delivered %d times, want %d", r, c, n)
		}
	}
}

// BenchmarkWatchFanout1000 measures the time from a put's commit (its 200
// answer) to its arrival at each of 1,000 watchers of the prefix.
func BenchmarkWatchFanout1000(b *testing.B) {
	e := newBenchEnv(b)
	f, conns := openFanout(b, e, 1000, true)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := e.doStr("PUT", "/v1/kv/f/k", strconv.Itoa(i))
		committed := time.Now()
		rev := r.revision(b)
		testutil.Eventually(b, 30*time.Second, "fan-out", func() bool { return f.count(rev) == 1000 })
		f.mu.Lock()
		for _, at := range f.seen[rev] {
			lat = append(lat, at.Sub(committed))
		}
		f.mu.Unlock()
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50_ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99_ms")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkIdleWatcherMemory reports the server-side heap and stack per idle
// watch stream (the clients are bare sockets that read nothing).
func BenchmarkIdleWatcherMemory(b *testing.B) {
	e := newBenchEnv(b)
	const n = 2000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, conns := openFanout(b, e, n, false)
	runtime.GC()
	runtime.ReadMemStats(&after)
	for _, c := range conns {
		c.Close()
	}
	per := float64((after.HeapInuse+after.StackInuse)-(before.HeapInuse+before.StackInuse)) / n
	b.ReportMetric(per, "bytes/watcher")
	b.ReportMetric(float64(after.HeapInuse-before.HeapInuse)/n, "heap_bytes/watcher")
	b.ReportMetric(float64(after.StackInuse-before.StackInuse)/n, "stack_bytes/watcher")
	b.ReportMetric(float64(runtime.NumGoroutine()), "goroutines")
	b.ReportMetric(0, "ns/op")
}
