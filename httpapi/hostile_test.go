package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rosterhq/roster/fsm"
	"github.com/rosterhq/roster/internal/testutil"
)

// Hostile clients against a real server (Server.Serve, its own listener
// and limits): each does its worst while a prober measures how the server
// answers everyone else, and the server's memory is measured in-process
// (heap and goroutine stacks, after a collection). The bounds asserted here
// are the ones the README's "Limits" section states.
//
// These tests are not parallel: their memory figures must be their own.

// liveBytes is the memory the process holds after a collection: live heap
// objects plus goroutine stacks.
func liveBytes() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc + m.StackInuse)
}

func TestHostileIdleConnections(t *testing.T) {
	const n = 2000 // about 4,000 descriptors in this process: both ends
	s := newServed(t, nil)
	p := startProber(t, s.url)
	before := liveBytes()
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	// Each makes one request and then keeps its connection open without
	// another (a keep-alive connection waits up to 2 minutes; one that
	// never sends a whole head is closed after 10 s, too soon to count
	// thousands of them on a loaded machine).
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, c)
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		res, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
	if open := promtest.ToFloat64(s.srv.metrics.conns); open < n {
		t.Fatalf("%v connections open, want %d", open, n)
	}
	per := (liveBytes() - before) / n
	t.Logf("%d idle connections: %d bytes each (both ends, this process)", n, per)
	if per > idleConnBound {
		t.Errorf("an idle connection costs %d bytes, over %d", per, idleConnBound)
	}
	p.check(t)
}

// idleConnBound is what an idle keep-alive connection may cost (README
// "Limits"): net/http's goroutine and its 4 KiB read and write buffers,
// plus this process's client end.
const idleConnBound = 24 << 10

func TestHostileSlowBodiesAndHugeHeaders(t *testing.T) {
	s := newServed(t, func(c *Config) { c.ReadTimeout = time.Second })
	p := startProber(t, s.url)
	const slow, huge = 40, 20
	var wg sync.WaitGroup
	cutAfter := make(chan time.Duration, slow)
	for i := 0; i < slow; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, took := slowRequest(t, s.addr, fmt.Sprintf("PUT /v1/kv/slow/%d HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n", i),
				strings.Repeat("v", 100), 500*time.Millisecond)
			cutAfter <- took
		}()
	}
	answers := make(chan int, huge)
	head := []byte("GET /v1/cluster HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("h", 1<<20) + "\r\n\r\n")
	for i := 0; i < huge; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", s.addr)
			if err != nil {
				answers <- 0
				return
			}
			defer c.Close()
			go c.Write(head)
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			res, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				answers <- 0
				return
			}
			res.Body.Close()
			answers <- res.StatusCode
		}()
	}
	wg.Wait()
	close(cutAfter)
	close(answers)
	for took := range cutAfter {
		if took > time.Second+p.slack() {
			t.Errorf("a slow body was cut off after %v; the read timeout is 1s", took)
		}
	}
	for code := range answers {
		if code != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("1 MiB of headers answered %d, want 431", code)
		}
	}
	p.check(t)
	if n := s.storeRevision(); n != 0 {
		t.Errorf("cut-off requests wrote: revision %d", n)
	}
}

func TestHostileWatchersThatNeverRead(t *testing.T) {
	s := newServed(t, func(c *Config) { c.WatchWriteTimeout = time.Second })
	p := startProber(t, s.url)
	hist := s.node.History()
	// write commits 16 MiB in Txns of 16 puts of 32 KiB.
	value := []byte(strings.Repeat("x", 32<<10))
	write := func() {
		for round := 0; round < 32; round++ {
			var ops []fsm.Command
			for k := 0; k < 16; k++ {
				ops = append(ops, fsm.Put{Key: fmt.Sprintf("/stall/%d", k), Value: value})
			}
			if _, err := s.node.Txn(context.Background(), ops); err != nil {
				t.Fatal(err)
			}
		}
	}
	// What the member keeps of the writes themselves (the history, raft's
	// cache of recent entries, the checkpoint) is measured first with
	// nobody watching: the stalled watchers must add only their own.
	held := func() int64 { return liveBytes() - hist.Bytes() } // the history is bounded apart
	before := held()
	write()
	// (Less than nothing when what earlier tests left was collected.)
	control := max(held()-before, 0)

	const stalled = 20
	for i := 0; i < stalled; i++ {
		neverRead(t, s.addr, "/v1/watch/stall/?prefix=true")
	}
	testutil.Eventually(t, 10*time.Second, "stalled watchers open", func() bool {
		return promtest.ToFloat64(s.srv.metrics.watchers) == stalled
	})
	before = held()
	write() // 16 MiB to each watcher: far more than its socket buffers
	during := held() - before
	t.Logf("%d watchers that never read: memory grew by %d KiB as 16 MiB was written to each, %d KiB with nobody watching",
		stalled, during>>10, control>>10)
	// Each stalled watcher holds its unsent buffer (32 KiB) and the frame
	// it is blocked on, shared with the frame cache (16 MiB at most).
	if bound := control + int64(stalled*(watchFlushAt+2*len(value))) + frameCacheBytes; during > bound {
		t.Errorf("memory grew by %d bytes, over %d", during, bound)
	}
	// And every one of them is cut off, within the write timeout.
	testutil.Eventually(t, time.Second+p.slack(), "stalled watchers cut off", func() bool {
		return promtest.ToFloat64(s.srv.metrics.watchers) == 0
	})
	p.check(t)
}

// hostileListing is how many keys the listing test stores, and how large
// their values are: ROSTER_HOSTILE_KEYS keys of 100 bytes (the issue's
// case: ROSTER_HOSTILE_KEYS=1000000), else a short profile with an answer
// of the same order of size (10 MiB, well over the socket buffers).
func hostileListing(t *testing.T) (keys, valueSize int) {
	if v := os.Getenv("ROSTER_HOSTILE_KEYS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			t.Fatalf("ROSTER_HOSTILE_KEYS=%q", v)
		}
		return n, 100
	}
	return 10_000, 1000
}

func TestHostileHugeListing(t *testing.T) {
	keys, valueSize := hostileListing(t)
	s := newServed(t, nil)
	// Fill through Txns of up to 5,000 puts and 2 MiB: one raft entry each.
	value := []byte(strings.Repeat("v", valueSize))
	for done := 0; done < keys; {
		var ops []fsm.Command
		for ; done < keys && len(ops) < 5000 && len(ops)*valueSize < 2<<20; done++ {
			ops = append(ops, fsm.Put{Key: fmt.Sprintf("/big/%08d", done), Value: value})
		}
		if _, err := s.node.Txn(context.Background(), ops); err != nil {
			t.Fatalf("filling: %v", err)
		}
	}
	answer := int64(keys) * int64(valueSize+90) // about: the kv with its field names
	p := startProber(t, s.url)
	before := liveBytes()

	// One client asks for everything and never reads.
	stuck := neverRead(t, s.addr, "/v1/kv/big/?prefix=true")
	sent := func() float64 {
		return promtest.ToFloat64(s.srv.metrics.requests.WithLabelValues("/v1/kv/*key", "GET", "200"))
	}
	// Wait until it is stuck writing: the client's receive queue holds
	// part of the answer and has stopped growing over several polls (the
	// probes use another route). Memory is sampled all along.
	var during int64
	last, still := -1, 0
	testutil.Eventually(t, 30*time.Second, "the listing to fill the socket buffers", func() bool {
		during = max(during, liveBytes()-before)
		q := unreadBytes(stuck)
		if q > 0 && q == last {
			still++
		} else {
			still = 0
		}
		last = q
		return still >= 10
	})
	t.Logf("%d keys (%d MiB answer): memory grew by %d KiB while a client read none of it", keys, answer>>20, during>>10)
	if bound := min(answer/4, 8<<20); during > bound {
		t.Errorf("memory grew by %d bytes while the listing was stuck, over %d", during, bound)
	}
	if sent() != 0 {
		t.Errorf("the stuck listing was answered already")
	}

	// Another client reads it all: every key, in order, valid JSON.
	res, err := http.Get(s.url + "/v1/kv/big/?prefix=true&keys_only=true")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	dec := json.NewDecoder(res.Body)
	var got struct {
		Revision int64 `json:"revision"`
		KVs      []struct {
			Key string `json:"key"`
		} `json:"kvs"`
		More bool `json:"more"`
	}
	if err := dec.Decode(&got); err != nil {
		t.Fatal(err)
	}
	if len(got.KVs) != keys || got.More {
		t.Fatalf("listed %d keys (more %v), want %d", len(got.KVs), got.More, keys)
	}
	for i, kv := range got.KVs {
		if kv.Key != fmt.Sprintf("/big/%08d", i) {
			t.Fatalf("key %d is %q", i, kv.Key)
		}
	}
	if _, err := io.Copy(io.Discard, res.Body); err != nil {
		t.Fatal(err)
	}
	p.check(t)
}
