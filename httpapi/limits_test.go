package httpapi

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rosterhq/roster/fsm"
	"github.com/rosterhq/roster/internal/testcerts"
	"github.com/rosterhq/roster/internal/testutil"
	"github.com/rosterhq/roster/registry"
)

// served is the API served by Server.Serve itself (its own http.Server and
// connection cap), not by httptest, in front of env's node.
type served struct {
	*env
	url, addr string
	client    *http.Client // one connection per request
}

func newServed(t *testing.T, srvCfg func(*Config)) *served {
	t.Helper()
	return newServedTLS(t, srvCfg, nil, nil)
}

// newServedTLS serves over TLS with serverTLS (nil: plain HTTP); its client
// uses clientTLS.
func newServedTLS(t *testing.T, srvCfg func(*Config), serverTLS, clientTLS *tls.Config) *served {
	t.Helper()
	e := newEnvWith(t, nil, srvCfg)
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, scheme := raw, "http://"
	if serverTLS != nil {
		ln, scheme = tls.NewListener(raw, serverTLS), "https://"
	}
	done := make(chan error, 1)
	go func() { done <- e.srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := e.srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true, TLSClientConfig: clientTLS}, Timeout: 10 * time.Second}
	return &served{env: e, url: scheme + ln.Addr().String(), addr: ln.Addr().String(), client: client}
}

// get sends one GET on a fresh connection and returns the answer.
func (s *served) get(t *testing.T, path string) response {
	t.Helper()
	res, err := s.client.Get(s.url + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return response{code: res.StatusCode, hdr: res.Header, body: b}
}

func TestConnectionCap(t *testing.T) {
	t.Parallel()
	s := newServed(t, func(c *Config) { c.MaxConns = 5 })
	var idle []net.Conn
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	open := func() float64 { return promtest.ToFloat64(s.srv.metrics.conns) }
	for i := 0; i < 5; i++ {
		c, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		idle = append(idle, c)
	}
	testutil.Eventually(t, 5*time.Second, "5 connections open", func() bool { return open() == 5 })

	// The sixth is told why, in the error envelope, and closed.
	r := s.get(t, "/v1/cluster")
	r.fails(t, http.StatusTooManyRequests, "rate_limited")
	if r.hdr.Get("Retry-After") == "" {
		t.Errorf("no Retry-After on a 429")
	}
	if got := promtest.ToFloat64(s.srv.metrics.rejected.WithLabelValues("connections")); got != 1 {
		t.Errorf("rejected connections %v, want 1", got)
	}
	// A place freed is a place taken: the same request then succeeds.
	idle[0].Close()
	idle = idle[1:]
	testutil.Eventually(t, 5*time.Second, "a place freed", func() bool { return open() == 4 })
	s.get(t, "/v1/cluster").ok(t, 200, nil)
	testutil.Eventually(t, 5*time.Second, "its place given back", func() bool { return open() == 4 })
}

// The cap sits under TLS: net/http still sees TLS connections as such, and
// the 429 goes out encrypted.
func TestConnectionCapOverTLS(t *testing.T) {
	t.Parallel()
	certs := testcerts.New(t)
	serverTLS := &tls.Config{Certificates: []tls.Certificate{certs.Server.TLS(t)}}
	clientTLS := certs.ClientTLS(t, nil)
	s := newServedTLS(t, func(c *Config) { c.MaxConns = 2 }, serverTLS, clientTLS)
	var idle []net.Conn
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	for i := 0; i < 2; i++ {
		c, err := tls.Dial("tcp", s.addr, clientTLS)
		if err != nil {
			t.Fatal(err)
		}
		idle = append(idle, c)
	}
	testutil.Eventually(t, 5*time.Second, "2 connections open", func() bool { return promtest.ToFloat64(s.srv.metrics.conns) == 2 })
	s.get(t, "/v1/cluster").fails(t, http.StatusTooManyRequests, "rate_limited")
	idle[0].Close()
	testutil.Eventually(t, 5*time.Second, "a place freed", func() bool { return promtest.ToFloat64(s.srv.metrics.conns) == 1 })
	res, err := s.client.Get(s.url + "/v1/cluster")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || res.TLS == nil {
		t.Fatalf("status %d, TLS %v", res.StatusCode, res.TLS != nil)
	}
}

func TestWatchAndBlockingReadCaps(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, nil, func(c *Config) { c.MaxWatches, c.MaxBlockingReads = 2, 2 })
	rev := e.doStr("PUT", "/v1/kv/cap/k", "1").ok(t, 200, nil).revision(t)

	w1, w2 := e.openWatch("/v1/watch/cap/?prefix=true"), e.openWatch("/v1/watch/cap/k")
	r := e.doStr("GET", "/v1/watch/cap/?prefix=true", "")
	r.fails(t, http.StatusTooManyRequests, "rate_limited")
	if r.hdr.Get("Retry-After") == "" {
		t.Errorf("no Retry-After on a 429")
	}
	w1.close()
	testutil.Eventually(t, 5*time.Second, "a watch place freed", func() bool { return e.srv.watches.n.Load() == 1 })
	w3 := e.openWatch("/v1/watch/cap/?prefix=true")

	// Blocking reads: two wait, the third is refused at once.
	path := fmt.Sprintf("/v1/kv/cap/k?index=%d&wait=20s", rev)
	answers := make(chan int, 2)
	for i := 0; i < 2; i++ {
		go func() {
			res, err := e.client.Get(e.ts.URL + path)
			if err != nil {
				answers <- 0
				return
			}
			res.Body.Close()
			answers <- res.StatusCode
		}()
	}
	testutil.Eventually(t, 5*time.Second, "two blocking reads waiting", func() bool { return e.srv.blocking.n.Load() == 2 })
	e.doStr("GET", path, "").fails(t, http.StatusTooManyRequests, "rate_limited")
	// Watches and blocking reads count apart; plain reads are not capped.
	e.doStr("GET", "/v1/kv/cap/k", "").ok(t, 200, nil)

	// A change answers the waiting reads and reaches the watchers.
	e.doStr("PUT", "/v1/kv/cap/k", "2").ok(t, 200, nil)
	for i := 0; i < 2; i++ {
		if code := <-answers; code != 200 {
			t.Fatalf("blocking read answered %d", code)
		}
	}
	for _, w := range []*stream{w2, w3} {
		if _, we := w.next(); we.KV.Key != "/cap/k" {
			t.Fatalf("watch event %+v", we)
		}
	}
	testutil.Eventually(t, 5*time.Second, "blocking places freed", func() bool { return e.srv.blocking.n.Load() == 0 })
	if got := promtest.ToFloat64(e.srv.metrics.rejected.WithLabelValues("blocking_reads")); got != 1 {
		t.Errorf("rejected blocking reads %v, want 1", got)
	}
}

func TestOversizedHeadersAnswered431(t *testing.T) {
	t.Parallel()
	s := newServed(t, func(c *Config) { c.MaxHeaderBytes = 8 << 10 })
	conn, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Written in a goroutine: the server may answer and close before it
	// has read everything.
	go fmt.Fprintf(conn, "GET /v1/cluster HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n", strings.Repeat("h", 64<<10))
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("status %d, want 431", res.StatusCode)
	}
	s.get(t, "/v1/cluster").ok(t, 200, nil)
}

// The frame cache holds at most its budget (frameCacheBytes), whatever the
// values, and still answers every revision with its own frame.
func TestFrameCacheBoundedInBytes(t *testing.T) {
	t.Parallel()
	fc := frameCache{budget: 1 << 20}
	value := []byte(strings.Repeat("v", 64<<10))
	held := func() (n int) {
		for i := range fc.plain {
			if f := fc.plain[i].Load(); f != nil {
				n += len(f.b)
			}
		}
		return n
	}
	for rev := int64(1); rev <= 40; rev++ {
		ev := fsm.Event{Type: fsm.EventPut, KV: &fsm.KV{Key: "/big", Value: value, ModRevision: rev, CreateRevision: 1, Version: rev}}
		b := fc.get(ev, false)
		if !strings.HasPrefix(string(b), fmt.Sprintf("id: %d\n", rev)) || len(b) < len(value) {
			t.Fatalf("revision %d: frame %.40q (%d bytes)", rev, b, len(b))
		}
		if n := held(); n > int(fc.budget) {
			t.Fatalf("after revision %d the cache holds %d bytes, over %d", rev, n, fc.budget)
		}
	}
	if int64(held()) != fc.bytes.Load() {
		t.Fatalf("the cache counts %d bytes, holds %d", fc.bytes.Load(), held())
	}
	// Small frames are still cached: the same slice comes back.
	small := fsm.Event{Type: fsm.EventPut, KV: &fsm.KV{Key: "/small", Value: []byte("x"), ModRevision: 8192 + 41}}
	if a, b := fc.get(small, false), fc.get(small, false); &a[0] != &b[0] {
		t.Fatalf("a small frame was not cached")
	}
}

// Request bodies held at once are bounded in bytes: one over the budget is
// refused before a byte of it is read, and its room comes back when the
// request holding it ends.
func TestRequestBodyBudget(t *testing.T) {
	t.Parallel()
	// With 64 KiB values the largest body a route takes is a 2 MiB JSON
	// one; the budget holds one.
	e := newEnvWith(t, func(c *registry.Config) { c.MaxValue = 64 << 10 }, func(c *Config) {
		c.ReadTimeout = time.Second
		c.MaxRequestBytes = 2 << 20
	})
	// A chunked body reserves the most any route takes: the whole budget,
	// held while it trickles in.
	held := make(chan string, 1)
	go func() {
		answer, _ := slowRequest(t, strings.TrimPrefix(e.ts.URL, "http://"),
			"POST /v1/leases HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", "1a\r\n{\"ttl\": 10, \"name\": \"/slow\"}\r\n0\r\n\r\n", 200*time.Millisecond)
		held <- answer
	}()
	testutil.Eventually(t, 5*time.Second, "the budget taken", func() bool { return e.srv.bodies.n.Load() == 2<<20 })
	r := e.doStr("PUT", "/v1/kv/budget", "v")
	r.fails(t, http.StatusTooManyRequests, "rate_limited")
	if r.hdr.Get("Retry-After") == "" {
		t.Errorf("no Retry-After on a 429")
	}
	// The demo's routes refuse in the demo's shape, whatever refuses.
	demoErr(t, e.doStr("POST", "/put", `{"key":"budget","value":"v"}`), http.StatusTooManyRequests)
	e.doStr("GET", "/v1/kv/budget?count_only=true", "").ok(t, 200, nil) // no body: not counted
	if answer := <-held; !strings.HasPrefix(answer, "400 ") {
		t.Fatalf("the slow body answered %q, want 400 once cut off", answer)
	}
	testutil.Eventually(t, 5*time.Second, "the budget given back", func() bool { return e.srv.bodies.n.Load() == 0 })
	e.doStr("PUT", "/v1/kv/budget", "v").ok(t, 200, nil)
	if got := promtest.ToFloat64(e.srv.metrics.rejected.WithLabelValues("request_bytes")); got != 2 {
		t.Errorf("rejected for request bytes: %v, want 2", got)
	}

	// A budget that cannot hold one body of the largest size is refused.
	if _, err := New(Config{MaxRequestBytes: 1 << 20}, e.node, nil, nil); err == nil {
		t.Fatal("New accepted a request budget smaller than one body")
	}
}
