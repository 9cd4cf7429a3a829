package httpapi

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// pipeWriter is a ResponseWriter over one end of a net.Pipe whose write
// deadline ResponseController reaches, as it reaches an HTTP/2 stream's.
type pipeWriter struct{ c net.Conn }

func (w pipeWriter) Header() http.Header                { return http.Header{} }
func (w pipeWriter) Write(b []byte) (int, error)        { return w.c.Write(b) }
func (w pipeWriter) WriteHeader(int)                    {}
func (w pipeWriter) Flush()                             {}
func (w pipeWriter) SetWriteDeadline(t time.Time) error { return w.c.SetWriteDeadline(t) }

// TestSlowSteadyWatcherKeepsItsStream: the write timeout cuts off a watcher
// that stopped reading, not one reading a large event slowly but steadily.
// Each event had to be written whole within the timeout: a 2 MiB event
// read at 1.6 MB/s took longer than a 1 s timeout, so the watcher was cut
// off, resumed from its last event, met the same event and was cut off
// again, for ever (a 16 MiB value with prev_kv, JSON-escaped, can make a
// 192 MiB event: 6.4 MB/s against the default 30 s).
func TestSlowSteadyWatcherKeepsItsStream(t *testing.T) {
	t.Parallel()
	event := bytes.Repeat([]byte("x"), 2<<20)
	const timeout = time.Second
	for _, tc := range []struct {
		name string
		sink func(net.Conn) watchSink
	}{
		{"own connection", func(c net.Conn) watchSink { return &connSink{conn: c, timeout: timeout} }},
		{"ResponseWriter", func(c net.Conn) watchSink {
			w := pipeWriter{c}
			return &respSink{w: w, rc: http.NewResponseController(w), timeout: timeout}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			server, client := net.Pipe()
			defer server.Close()
			read := make(chan []byte, 1)
			go func() {
				// 16 KiB a tick of 10 ms: the event takes at least 1.28 s.
				// (Pacing a reader, not waiting for anything.)
				pace := time.NewTicker(10 * time.Millisecond)
				defer pace.Stop()
				var got []byte
				buf := make([]byte, 16<<10)
				for len(got) < len(event) {
					<-pace.C
					n, err := client.Read(buf)
					got = append(got, buf[:n]...)
					if err != nil {
						break
					}
				}
				client.Close()
				read <- got
			}()
			sink := tc.sink(server)
			if err := sink.write(event); err != nil {
				t.Fatalf("writing an event read slowly but steadily: %v", err)
			}
			if err := sink.flush(); err != nil {
				t.Fatalf("flushing an event read slowly but steadily: %v", err)
			}
			if got := <-read; !bytes.Equal(got, event) {
				t.Fatalf("the watcher read %d of the event's %d bytes", len(got), len(event))
			}
		})
	}
}

// TestLaggingWatcherIsToldWhereToResume: a watcher that falls further
// behind than the lag limit gets `event: cutoff` with resume_rev, after
// every event it was sent, and the stream ends; resuming there misses
// nothing. The cutoff carries that revision as its id too, so a client
// that resumes from the last id it saw (as API.md says, and as a browser's
// EventSource does with Last-Event-ID) resumes there as well, rather than
// from its last event, which may lie before the member's history.
func TestLaggingWatcherIsToldWhereToResume(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, nil, func(c *Config) { c.WatchLagLimit = 5 })
	// A small receive buffer, set before connecting: set later, it shrinks
	// a window the sender already saw, which then trickles.
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 8<<10) })
	}}
	conn, err := d.Dial("tcp", strings.TrimPrefix(e.ts.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /v1/watch/lag/?prefix=true HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(conn)
	if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("watch: %v %v", resp, err)
	}
	// Events too large for the connection's buffers stall the stream
	// while this test does not read; the small ones after them put it
	// more than 5 events behind.
	big := strings.Repeat("x", 1<<20-1)
	for i := 0; i < 8; i++ {
		e.doStr("PUT", fmt.Sprintf("/v1/kv/lag/big%d", i), big).ok(t, 200, nil)
	}
	for i := 0; i < 10; i++ {
		e.doStr("PUT", fmt.Sprintf("/v1/kv/lag/small%d", i), "s").ok(t, 200, nil)
	}
	var lastID, cutID int64 = 0, -1
	var resume struct {
		Type      string `json:"type"`
		ResumeRev int64  `json:"resume_rev"`
	}
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	var id int64
	var event string
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			break // the stream ended
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case strings.HasPrefix(line, "id: "):
			id, _ = strconv.ParseInt(line[4:], 10, 64)
		case strings.HasPrefix(line, "event: "):
			event = line[7:]
		case strings.HasPrefix(line, "data: ") && event == "cutoff":
			if err := json.Unmarshal([]byte(line[6:]), &resume); err != nil {
				t.Fatalf("cutoff data %q: %v", line, err)
			}
			cutID = id
		case strings.HasPrefix(line, "data: "):
			if cutID >= 0 {
				t.Fatalf("event %d after the cutoff", id)
			}
			lastID = id
		case line == "":
			id, event = 0, ""
		}
	}
	if resume.Type != "cutoff" || resume.ResumeRev < lastID {
		t.Fatalf("stream ended after event %d with cutoff %+v", lastID, resume)
	}
	if cutID != resume.ResumeRev {
		t.Fatalf("cutoff with id %d, resume_rev %d: want its id to be resume_rev", cutID, resume.ResumeRev)
	}
	// Resuming at resume_rev delivers exactly the rest.
	w := e.openWatch(fmt.Sprintf("/v1/watch/lag/?prefix=true&rev=%d", resume.ResumeRev))
	for rev := resume.ResumeRev + 1; rev <= e.storeRevision(); rev++ {
		if ev, _ := w.next(); ev.id != rev {
			t.Fatalf("resumed stream: event %d, want %d", ev.id, rev)
		}
	}
}
