package httpapi

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rosterhq/roster/fsm"
	"github.com/rosterhq/roster/internal/testutil"
	"golang.org/x/sys/unix"
)

// prober sends a cheap request every few milliseconds while a hostile
// client does its worst, and records how long each took: the server must
// keep answering everyone else. It first measures the same requests before
// the attack: on this shared machine "normal latency" is whatever that
// baseline is, and a bound must hold over it as well as in absolute terms.
type prober struct {
	mu   sync.Mutex
	lat  []time.Duration
	errs []string
	base time.Duration // the slowest probe before the attack
	stop chan struct{}
	done chan struct{}
}

// baselineProbes is how many probes the prober measures before the
// attack (about 300 ms of them).
const baselineProbes = 25

// startProber probes url's server baselineProbes times, then goes on in the
// background until check.
func startProber(t testing.TB, url string) *prober {
	p := &prober{stop: make(chan struct{}), done: make(chan struct{})}
	client := &http.Client{Timeout: 10 * time.Second}
	go func() {
		defer close(p.done)
		for {
			select {
			case <-p.stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			start := time.Now()
			// A read of the state, on a route of its own (the tests watch
			// the KV routes' counters).
			resp, err := client.Get(url + "/v1/leases?limit=1&stale=true")
			d := time.Since(start)
			p.mu.Lock()
			switch {
			case err != nil:
				p.errs = append(p.errs, err.Error())
			default:
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					p.errs = append(p.errs, resp.Status)
				}
				p.lat = append(p.lat, d)
			}
			p.mu.Unlock()
		}
	}()
	t.Cleanup(p.finish)
	testutil.Eventually(t, 30*time.Second, "the prober's baseline", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return len(p.lat)+len(p.errs) >= baselineProbes
	})
	p.mu.Lock()
	for _, d := range p.lat {
		p.base = max(p.base, d)
	}
	p.lat = p.lat[:0]
	p.mu.Unlock()
	return p
}

// slack is what a bound on the server's timing must allow on top of the
// guarantee: scheduling on a loaded machine, at least 1 s or four times
// the slowest probe before the attack.
func (p *prober) slack() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return max(time.Second, 4*p.base)
}

func (p *prober) finish() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
}

// check stops the prober and asserts every probe succeeded and the 99th
// percentile of the ones during the attack stayed under the slack (a
// generous bound: this is no benchmark).
func (p *prober) check(t testing.TB) {
	t.Helper()
	bound := p.slack()
	p.finish()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.errs) > 0 {
		t.Fatalf("%d probes failed, first: %s", len(p.errs), p.errs[0])
	}
	if len(p.lat) < 5 {
		t.Fatalf("only %d probes answered", len(p.lat))
	}
	lat := append([]time.Duration(nil), p.lat...)
	for i := range lat { // insertion sort: a few hundred entries
		for j := i; j > 0 && lat[j] < lat[j-1]; j-- {
			lat[j], lat[j-1] = lat[j-1], lat[j]
		}
	}
	p99 := lat[(len(lat)*99)/100]
	t.Logf("%d probes, p50 %v, p99 %v, max %v (slowest before: %v)", len(lat), lat[len(lat)/2], p99, lat[len(lat)-1], p.base)
	if p99 > bound {
		t.Fatalf("probe p99 %v over %v", p99, bound)
	}
}

// neverRead sends GET path on a new connection with a small receive
// buffer and never reads the answer; the connection closes with the test.
func neverRead(t *testing.T, addr, path string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(4096)
	}
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path)
	return c
}

// unreadBytes is how many bytes wait in c's receive queue (TIOCINQ, Linux's FIONREAD);
// -1 when it cannot be told.
func unreadBytes(c net.Conn) int {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return -1
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1
	}
	n := -1
	_ = rc.Control(func(fd uintptr) {
		if v, err := unix.IoctlGetInt(int(fd), unix.TIOCINQ); err == nil {
			n = v
		}
	})
	return n
}

// slowRequest sends head, then the body one byte every interval until the
// server answers or closes; it returns what the server said (empty when it
// closed without an answer) and how long after the head that was.
func slowRequest(t *testing.T, addr, head, body string, interval time.Duration) (string, time.Duration) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for i := 0; i < len(body); i++ {
			select {
			case <-stop:
				return
			case <-time.After(interval):
			}
			if _, err := conn.Write([]byte{body[i]}); err != nil {
				return
			}
		}
	}()
	_ = conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return "", time.Since(start)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return fmt.Sprintf("%d %s", resp.StatusCode, b), time.Since(start)
}

func TestSlowRequestBodyIsCutOff(t *testing.T) {
	t.Parallel()
	const readTimeout = time.Second
	e := newEnvWith(t, nil, func(c *Config) { c.ReadTimeout = readTimeout })
	addr := strings.TrimPrefix(e.ts.URL, "http://")
	p := startProber(t, e.ts.URL)
	rev := e.storeRevision()

	cases := []struct{ name, head, body string }{
		{"value", "PUT /v1/kv/slow HTTP/1.1\r\nHost: x\r\nContent-Length: 64\r\n\r\n", strings.Repeat("v", 64)},
		{"chunked json", "POST /v1/leases HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", "1a\r\n{\"ttl\": 10, \"name\": \"/slow\"}\r\n0\r\n\r\n"},
		{"form", "POST /lease/grant HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 20\r\n\r\n", "ttl=10&name=/slow/ab"},
	}
	var wg sync.WaitGroup
	for _, tc := range cases {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A byte every 300 ms: the whole body would take 6 to 20 s.
			answer, took := slowRequest(t, addr, tc.head, tc.body, 300*time.Millisecond)
			if took > readTimeout+p.slack() {
				t.Errorf("%s: cut off after %v; the read timeout is %v", tc.name, took, readTimeout)
			}
			if answer != "" && !strings.HasPrefix(answer, "400 ") && !strings.HasPrefix(answer, "413 ") {
				t.Errorf("%s: answer %q, want 400 (or no answer)", tc.name, answer)
			}
			if answer != "" && !strings.Contains(answer, `"code":"invalid_argument"`) {
				t.Errorf("%s: answer %q is not the error envelope", tc.name, answer)
			}
		}()
	}
	wg.Wait()
	p.check(t)
	if got := e.storeRevision(); got != rev {
		t.Fatalf("revision moved from %d to %d", rev, got)
	}
	if n := e.leaseCount(); n != 0 {
		t.Fatalf("%d leases granted by cut-off requests", n)
	}
}

func TestSlowReaderOfAnAnswerIsCutOff(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, nil, func(c *Config) { c.WriteTimeout = 300 * time.Millisecond })
	// 8 MiB: more than loopback's socket buffers hold.
	big := []byte(strings.Repeat("x", 1<<20))
	for i := 0; i < 8; i += 2 {
		ops := []fsm.Command{fsm.Put{Key: fmt.Sprintf("/big/%d", i), Value: big}, fsm.Put{Key: fmt.Sprintf("/big/%d", i+1), Value: big}}
		if _, err := e.node.Txn(context.Background(), ops); err != nil {
			t.Fatal(err)
		}
	}
	answered := func() float64 {
		return promtest.ToFloat64(e.srv.metrics.requests.WithLabelValues("/v1/kv/*key", "GET", "200"))
	}
	before := answered()

	// Ask for 8 MiB and never read it: the handler's write blocks until the
	// write deadline ends it.
	neverRead(t, strings.TrimPrefix(e.ts.URL, "http://"), "/v1/kv/big/?prefix=true")
	testutil.Eventually(t, 5*time.Second, "the stalled answer given up", func() bool { return answered() > before })
	// Others are served meanwhile and after.
	e.doStr("GET", "/v1/kv/big/?prefix=true&keys_only=true", "").ok(t, 200, nil)
}

// A request must not be cut off by its read deadline while it waits (for a
// commit, say) longer than ReadTimeout once its body has arrived, nor a
// request without a body: net/http is then watching the connection for the
// client going away, and a read deadline passing would cancel the request.
func TestReadDeadlineNeverCutsAWaitingRequest(t *testing.T) {
	t.Parallel()
	const readTimeout = 200 * time.Millisecond
	e := newEnvWith(t, nil, func(c *Config) { c.ReadTimeout = readTimeout })
	// A test route (on the real middleware chain) that reads its body,
	// then stays busy past the read timeout as a slow commit would.
	e.srv.engine.POST("/test/slow-handler", func(c *gin.Context) {
		body, err := readBody(c, 1<<10)
		if err != nil {
			e.srv.fail(c, err)
			return
		}
		select {
		case <-time.After(3 * readTimeout):
			writeJSON(c, http.StatusOK, map[string]string{"body": string(body)})
		case <-c.Request.Context().Done():
			e.srv.fail(c, context.Cause(c.Request.Context()))
		}
	})
	e.doStr("POST", "/test/slow-handler", "hello").ok(t, 200, nil)
	// And a blocking read (no body) outlives the read timeout too.
	rev := e.doStr("PUT", "/v1/kv/blk", "1").ok(t, 200, nil).revision(t)
	start := time.Now()
	e.doStr("GET", fmt.Sprintf("/v1/kv/blk?index=%d&wait=1s", rev), "").ok(t, 200, nil)
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Fatalf("blocking read answered after %v, before its wait", d)
	}
}
