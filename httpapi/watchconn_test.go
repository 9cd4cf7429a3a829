package httpapi

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rosterhq/roster/internal/testcerts"
	"github.com/rosterhq/roster/internal/testutil"
)

// openRawWatch sends a watch request on a new connection and reads the
// answer's head.
func openRawWatch(t *testing.T, addr, path string) (net.Conn, *bufio.Reader, *http.Response) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path)
	br := bufio.NewReader(conn)
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	return conn, br, res
}

// readLine reads one line of the stream within a deadline.
func readLine(t *testing.T, conn net.Conn, br *bufio.Reader, d time.Duration) string {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(d))
	line, err := br.ReadString('\n')
	if err != nil {
		t.Fatalf("reading the stream: %v (so far %q)", err, line)
	}
	return strings.TrimRight(line, "\n")
}

// A watch on an HTTP/1 connection owns its connection: its head is written
// by hand, the stream is delimited by the connection's end, and it costs
// one goroutine (net/http's two are gone).
func TestWatchStreamOwnsItsConnection(t *testing.T) {
	s := newServed(t, nil)
	rev := s.doStr("PUT", "/v1/kv/own/a", "1").ok(t, 200, nil).revision(t)
	conn, br, res := openRawWatch(t, s.addr, "/v1/watch/own/?prefix=true")
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" ||
		res.Header.Get("X-Roster-Revision") != fmt.Sprint(rev) || !res.Close ||
		len(res.TransferEncoding) != 0 || res.Header.Get("Date") == "" {
		t.Fatalf("head: %d %v (transfer encoding %v)", res.StatusCode, res.Header, res.TransferEncoding)
	}
	// Whatever the client sends is dropped; the stream goes on.
	fmt.Fprintf(conn, "GET /v1/cluster HTTP/1.1\r\nHost: x\r\n\r\n")
	rev2 := s.doStr("PUT", "/v1/kv/own/b", "2").ok(t, 200, nil).revision(t)
	if line := readLine(t, conn, br, 5*time.Second); line != fmt.Sprintf("id: %d", rev2) {
		t.Fatalf("first line %q", line)
	}
	if line := readLine(t, conn, br, 5*time.Second); !strings.Contains(line, `"key":"/own/b"`) {
		t.Fatalf("data line %q", line)
	}

	// One goroutine per stream.
	const n = 200
	base := runtime.NumGoroutine()
	for i := 0; i < n; i++ {
		openRawWatch(t, s.addr, "/v1/watch/own/?prefix=true")
	}
	testutil.Eventually(t, 10*time.Second, "streams open", func() bool {
		return promtest.ToFloat64(s.srv.metrics.watchers) == n+1
	})
	// Let net/http's goroutines for the taken-over connections finish.
	testutil.Eventually(t, 10*time.Second, "one goroutine per stream", func() bool {
		return runtime.NumGoroutine()-base <= n+5
	})
	if open := promtest.ToFloat64(s.srv.metrics.conns); open > 5 {
		t.Errorf("%v connections still counted against -max-conns", open)
	}
}

// A silent stream gets a heartbeat once it has been quiet for the
// heartbeat interval, and carries events after it.
func TestWatchHeartbeatAfterSilence(t *testing.T) {
	t.Parallel()
	s := newServed(t, func(c *Config) { c.heartbeat = 300 * time.Millisecond })
	// Before the request: the member starts its silence when the stream
	// opens, which a loaded machine may take a while to tell the client.
	start := time.Now()
	conn, br, _ := openRawWatch(t, s.addr, "/v1/watch/hb/k")
	if line := readLine(t, conn, br, 5*time.Second); line != ": heartbeat" {
		t.Fatalf("first line %q", line)
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Fatalf("heartbeat after %v of silence", d)
	}
	rev := s.doStr("PUT", "/v1/kv/hb/k", "v").ok(t, 200, nil).revision(t)
	for {
		line := readLine(t, conn, br, 5*time.Second)
		if line == fmt.Sprintf("id: %d", rev) {
			return
		}
		if line != "" && line != ": heartbeat" {
			t.Fatalf("line %q, want heartbeats then the event", line)
		}
	}
}

// Shutdown ends the streams that own their connections, and waits for
// them.
func TestShutdownEndsOwnedStreams(t *testing.T) {
	t.Parallel()
	s := newServed(t, nil)
	var conns []net.Conn
	for i := 0; i < 20; i++ {
		c, _, _ := openRawWatch(t, s.addr, "/v1/watch/sd/?prefix=true")
		conns = append(conns, c)
	}
	testutil.Eventually(t, 5*time.Second, "streams open", func() bool { return promtest.ToFloat64(s.srv.metrics.watchers) == 20 })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if got := promtest.ToFloat64(s.srv.metrics.watchers); got != 0 {
		t.Fatalf("%v streams open after Shutdown returned", got)
	}
	for _, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadAll(c); err != nil {
			t.Fatalf("stream did not end cleanly: %v", err)
		}
	}
}

// Over HTTP/2 a connection cannot be taken over: the stream goes through
// the ResponseWriter (asking gin to hijack it anyway used to panic).
func TestWatchOverHTTP2(t *testing.T) {
	t.Parallel()
	certs := testcerts.New(t)
	serverTLS := &tls.Config{Certificates: []tls.Certificate{certs.Server.TLS(t)}, NextProtos: []string{"h2", "http/1.1"}}
	s := newServedTLS(t, func(c *Config) { c.heartbeat = 200 * time.Millisecond }, serverTLS, certs.ClientTLS(t, nil))
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: certs.ClientTLS(t, nil), ForceAttemptHTTP2: true}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", s.url+"/v1/watch/h2/k", nil)
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.ProtoMajor != 2 || res.StatusCode != 200 {
		t.Fatalf("%s %d", res.Proto, res.StatusCode)
	}
	rev := s.doStr("PUT", "/v1/kv/h2/k", "v").ok(t, 200, nil).revision(t)
	br := bufio.NewReader(res.Body)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("stream ended: %v", err)
		}
		if line == fmt.Sprintf("id: %d\n", rev) {
			break
		}
	}
	// Silence brings heartbeats on this path too.
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("stream ended: %v", err)
		}
		if line == ": heartbeat\n" {
			break
		}
	}
}
