package httpapi

import (
	"bytes"
	"net"
	"net/http"
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
				// 16 KiB every 10 ms: the event takes at least 1.28 s.
				var got []byte
				buf := make([]byte, 16<<10)
				for len(got) < len(event) {
					time.Sleep(10 * time.Millisecond)
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
