package client

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rosterhq/roster/internal/cluster"
)

// testTransport wraps the client's transport for tests: it counts the
// requests the client sends (by method and path shape), and can cut the
// client off from the cluster — failing new requests and breaking the
// bodies of answers in flight (watch streams) — as a network partition
// would.
type testTransport struct {
	base http.RoundTripper

	mu       sync.Mutex
	counts   map[string]int
	lastHost map[string]string // route -> host of the last request
	perHost  map[string]int    // host -> requests sent to it
	perRoute map[string]int    // route + " @" + host -> requests
	live     map[*cutBody]bool // answers being read

	down atomic.Bool  // fail every request while set
	gen  atomic.Int64 // bumped by cut: bodies of an older generation fail
	// downHost, when set, is the one member (host:port) cut off: its
	// requests fail and its answers in flight break (cutHost).
	downHost atomic.Pointer[string]

	record   atomic.Bool  // keep the bytes of the answers read, in streamed
	streamed bytes.Buffer // under mu
}

// streamedHas reports whether the answers read since record was set
// hold s.
func (tt *testTransport) streamedHas(s string) bool {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	return bytes.Contains(tt.streamed.Bytes(), []byte(s))
}

func newTestTransport() *testTransport {
	return &testTransport{base: newTransport(DefaultDialTimeout), counts: map[string]int{}, lastHost: map[string]string{}, perHost: map[string]int{}, perRoute: map[string]int{}, live: map[*cutBody]bool{}}
}

var errCutOff = errors.New("test: cut off from the cluster")

func (tt *testTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	tt.mu.Lock()
	route := req.Method + " " + pathShape(req.URL.Path)
	tt.counts[route]++
	tt.lastHost[route] = req.URL.Host
	tt.perHost[req.URL.Host]++
	tt.perRoute[route+" @"+req.URL.Host]++
	tt.mu.Unlock()
	// The generation is taken before sending: an answer that arrives after
	// a cut belongs to the world before it and must fail too, or a watch
	// stream opened just as the cut happened would survive the partition.
	gen := tt.gen.Load()
	if tt.down.Load() || tt.isDown(req.URL.Host) {
		return nil, errCutOff
	}
	resp, err := tt.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if tt.gen.Load() != gen || tt.isDown(req.URL.Host) {
		resp.Body.Close()
		return nil, errCutOff
	}
	b := &cutBody{ReadCloser: resp.Body, tt: tt, gen: gen, host: req.URL.Host}
	tt.mu.Lock()
	tt.live[b] = true
	tt.mu.Unlock()
	resp.Body = b
	return resp, nil
}

// cut fails every request until heal, and breaks every answer in flight
// (closing it unblocks a reader waiting on the stream).
func (tt *testTransport) cut() {
	tt.down.Store(true)
	tt.gen.Add(1)
	tt.mu.Lock()
	live := tt.live
	tt.live = map[*cutBody]bool{}
	tt.mu.Unlock()
	for b := range live {
		b.ReadCloser.Close()
	}
}

func (tt *testTransport) heal() { tt.down.Store(false) }

// cutHost cuts the client off from one member, host, until healHost: its
// requests fail and its answers in flight (watch streams) break.
func (tt *testTransport) cutHost(host string) {
	tt.downHost.Store(&host)
	tt.mu.Lock()
	var live []*cutBody
	for b := range tt.live {
		if b.host == host {
			live = append(live, b)
		}
	}
	tt.mu.Unlock()
	for _, b := range live {
		b.ReadCloser.Close()
	}
}

func (tt *testTransport) healHost() { tt.downHost.Store(nil) }

func (tt *testTransport) isDown(host string) bool {
	h := tt.downHost.Load()
	return h != nil && *h == host
}

func (tt *testTransport) count(key string) int {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	return tt.counts[key]
}

// sentTo is the number of requests sent to host.
func (tt *testTransport) sentTo(host string) int {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	return tt.perHost[host]
}

// last is the host the last request of route went to.
func (tt *testTransport) last(route string) string {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	return tt.lastHost[route]
}

type cutBody struct {
	io.ReadCloser
	tt   *testTransport
	gen  int64
	host string
}

func (b *cutBody) Read(p []byte) (int, error) {
	if b.tt.gen.Load() != b.gen || b.tt.isDown(b.host) {
		return 0, errCutOff
	}
	n, err := b.ReadCloser.Read(p)
	if b.tt.record.Load() {
		b.tt.mu.Lock()
		b.tt.streamed.Write(p[:n])
		b.tt.mu.Unlock()
	}
	return n, err
}

func (b *cutBody) Close() error {
	b.tt.mu.Lock()
	delete(b.tt.live, b)
	b.tt.mu.Unlock()
	return b.ReadCloser.Close()
}

// pathShape replaces lease IDs and keys with placeholders, so counts group
// by route.
func pathShape(p string) string {
	switch {
	case p == "/v1/leases/keepalive":
		return p
	case strings.HasPrefix(p, "/v1/leases/") && strings.HasSuffix(p, "/keepalive"):
		return "/v1/leases/{id}/keepalive"
	case strings.HasPrefix(p, "/v1/leases/"):
		return "/v1/leases/{id}"
	case strings.HasPrefix(p, "/v1/kv/"):
		return "/v1/kv/{key}"
	case strings.HasPrefix(p, "/v1/watch/"):
		return "/v1/watch/{key}"
	}
	return p
}

// newTestClient returns a client of the given endpoints with a test
// transport, closed at the end of the test.
func newTestClient(t testing.TB, endpoints []string) (*Client, *testTransport) {
	t.Helper()
	tt := newTestTransport()
	c, err := New(Config{Endpoints: endpoints, HTTPClient: &http.Client{Transport: tt}, RequestTimeout: 15 * time.Second})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c, tt
}

// ctxT is a context bounded by d and ended with the test.
func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// memberByHost finds the member serving host:port.
func memberByHost(c *cluster.Cluster, host string) *cluster.Member {
	for _, m := range c.Members {
		if m.HTTP == host {
			return m
		}
	}
	return nil
}

// countOn is how many requests of route went to host.
func (tt *testTransport) countOn(route, host string) int {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	return tt.perRoute[route+" @"+host]
}

// aimAt makes host the endpoint the client's next request tries first,
// with no member marked down and leader hints off (answers to the client's
// keep-alive loops would otherwise name the leader meanwhile): the next
// call meets host before any other.
func (c *Client) aimAt(host string) {
	c.ignoreLeader.Store(true)
	c.leader.Store(nil)
	for i, e := range c.endpoints {
		e.markHealthy()
		if e.base.Host == host {
			c.rr.Store(uint64(i))
		}
	}
}

// keysOf lists the keys of kvs.
func keysOf(kvs []KV) []string {
	out := make([]string, len(kvs))
	for i, kv := range kvs {
		out[i] = kv.Key
	}
	return out
}

// skipIfNoWatchRoute skips when the server has no watch route yet (404
// not_found on /v1/watch).
func skipIfNoWatchRoute(t *testing.T, endpoint string) {
	t.Helper()
	resp, err := http.Get(endpoint + "/v1/watch/probe?rev=0")
	if err != nil {
		t.Fatalf("probing the watch route: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		t.Skip("the server has no /v1/watch route yet (404)")
	}
}

// watching reports whether a watch goroutine of c is running.
func (c *Client) watching() bool {
	for _, g := range stacks() {
		if strings.Contains(g, "(*watcher).run") && strings.Contains(g, "roster/client.") {
			return true
		}
	}
	return false
}

// open is the number of answers whose body is still open (watch streams).
func (tt *testTransport) open() int {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	return len(tt.live)
}
