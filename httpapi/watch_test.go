package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rosterhq/roster/internal/testutil"
	"github.com/rosterhq/roster/registry"
)

// sseEvent is one parsed Server-Sent Event.
type sseEvent struct {
	id    int64
	event string
	data  string
}

type watchEvent struct {
	Type string `json:"type"`
	KV   struct {
		Key         string `json:"key"`
		Value       string `json:"value"`
		ModRevision int64  `json:"mod_revision"`
		Version     int64  `json:"version"`
	} `json:"kv"`
	PrevKV *struct {
		Value string `json:"value"`
	} `json:"prev_kv"`
}

// stream is an open watch.
type stream struct {
	t      testing.TB
	resp   *http.Response
	cancel context.CancelFunc
	events chan sseEvent
}

// openWatch starts GET path and parses events in the background.
func (e *env) openWatch(path string, header ...string) *stream {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.ts.URL+path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := e.client.Do(req)
	if err != nil {
		cancel()
		e.t.Fatalf("watch %s: %v", path, err)
	}
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		e.t.Fatalf("watch %s: %d %s", path, resp.StatusCode, b)
	}
	s := &stream{t: e.t, resp: resp, cancel: cancel, events: make(chan sseEvent, 10000)}
	go func() {
		defer close(s.events)
		br := bufio.NewReader(resp.Body)
		var ev sseEvent
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimRight(line, "\n")
			switch {
			case line == "":
				if ev.data != "" {
					s.events <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, ":"):
			case strings.HasPrefix(line, "id: "):
				ev.id, _ = strconv.ParseInt(line[4:], 10, 64)
			case strings.HasPrefix(line, "event: "):
				ev.event = line[7:]
			case strings.HasPrefix(line, "data: "):
				ev.data = line[6:]
			}
		}
	}()
	e.t.Cleanup(s.close)
	return s
}

func (s *stream) close() { s.cancel(); s.resp.Body.Close() }

// next returns the next event or fails after a deadline.
func (s *stream) next() (sseEvent, watchEvent) {
	s.t.Helper()
	select {
	case ev, ok := <-s.events:
		if !ok {
			s.t.Fatalf("watch stream ended")
		}
		var we watchEvent
		if ev.event == "" {
			if err := json.Unmarshal([]byte(ev.data), &we); err != nil {
				s.t.Fatalf("event data %q: %v", ev.data, err)
			}
		}
		return ev, we
	case <-time.After(10 * time.Second):
		s.t.Fatalf("no event within 10s")
	}
	panic("unreachable")
}

func TestWatchPutDeleteExpiryInOrder(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	w := e.openWatch("/v1/watch/svc/?prefix=true&prev_kv=true")
	if w.resp.Header.Get("Content-Type") != "text/event-stream" || w.resp.Header.Get("X-Roster-Revision") == "" {
		t.Fatalf("headers %v", w.resp.Header)
	}
	id := e.grant(2, "/svc/a")
	e.doStr("PUT", "/v1/kv/svc/a?lease="+id, "v1").ok(t, 200, nil)
	e.doStr("PUT", "/v1/kv/other", "x").ok(t, 200, nil) // outside the prefix
	e.doStr("PUT", "/v1/kv/svc/a?lease="+id, "v2").ok(t, 200, nil)
	e.doStr("PUT", "/v1/kv/svc/b", "b").ok(t, 200, nil)
	e.doStr("DELETE", "/v1/kv/svc/b", "").ok(t, 200, nil)

	want := []struct {
		typ, key, value, prev string
		rev                   int64
	}{
		{"put", "/svc/a", "v1", "", 1},
		{"put", "/svc/a", "v2", "v1", 3},
		{"put", "/svc/b", "b", "", 4},
		{"delete", "/svc/b", "", "b", 5},
		{"delete", "/svc/a", "", "v2", 6}, // the lease expires
	}
	for _, w1 := range want {
		ev, we := w.next()
		if ev.id != w1.rev || we.Type != w1.typ || we.KV.Key != w1.key || we.KV.Value != w1.value || we.KV.ModRevision != w1.rev {
			t.Fatalf("event %d %+v, want %+v", ev.id, we, w1)
		}
		if (w1.prev == "") != (we.PrevKV == nil) || (we.PrevKV != nil && we.PrevKV.Value != w1.prev) {
			t.Fatalf("event %d prev_kv %+v, want %q", ev.id, we.PrevKV, w1.prev)
		}
	}
}

func TestWatchResumeExactlyTheMissingEvents(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for i := 1; i <= 10; i++ {
		e.doStr("PUT", fmt.Sprintf("/v1/kv/r/k%d", i), strconv.Itoa(i)).ok(t, 200, nil)
	}
	for _, how := range []string{"rev", "Last-Event-ID"} {
		var w *stream
		if how == "rev" {
			w = e.openWatch("/v1/watch/r/?prefix=true&rev=4")
		} else {
			w = e.openWatch("/v1/watch/r/?prefix=true", "Last-Event-ID", "4")
		}
		for rev := int64(5); rev <= e.storeRevision(); rev++ {
			if ev, _ := w.next(); ev.id != rev {
				t.Fatalf("%s: event %d, want %d", how, ev.id, rev)
			}
		}
		next := e.doStr("PUT", "/v1/kv/r/new-"+how, "n").ok(t, 200, nil).revision(t)
		if ev, _ := w.next(); ev.id != next {
			t.Fatalf("%s: live event %d, want %d", how, ev.id, next)
		}
		w.close()
	}
}

func TestWatchCompactedAnswers410(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, func(c *registry.Config) { c.WatchHistory = 5 }, nil)
	for i := 0; i < 12; i++ {
		e.doStr("PUT", "/v1/kv/c/k", strconv.Itoa(i)).ok(t, 200, nil)
	}
	r := e.doStr("GET", "/v1/watch/c/k?rev=3", "")
	r.fails(t, 410, "compacted")
	var body struct {
		Error struct {
			Oldest *int64 `json:"oldest_revision"`
		} `json:"error"`
	}
	json.Unmarshal(r.body, &body)
	if body.Error.Oldest == nil || *body.Error.Oldest != 7 {
		t.Fatalf("oldest_revision %v, want 7: %s", body.Error.Oldest, r.body)
	}
	// From the oldest revision on, everything is still there.
	w := e.openWatch("/v1/watch/c/k?rev=7")
	if ev, _ := w.next(); ev.id != 8 {
		t.Fatalf("first event %d, want 8", ev.id)
	}
	e.doStr("GET", "/v1/watch/c/k?rev=x", "").fails(t, 400, "invalid_argument")
}

func TestBlockingReadReturnsOnChangeOrTimeout(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rev := e.doStr("PUT", "/v1/kv/b/k", "1").ok(t, 200, nil).revision(t)

	// Nothing changes: the answer comes at wait with the unchanged result.
	start := time.Now()
	r := e.doStr("GET", fmt.Sprintf("/v1/kv/b/k?index=%d&wait=300ms", rev), "").ok(t, 200, nil)
	if el := time.Since(start); el < 300*time.Millisecond || r.revision(t) != rev {
		t.Fatalf("timed-out blocking read after %v at revision %d", el, r.revision(t))
	}
	// A change elsewhere does not wake it; one under the prefix does.
	done := make(chan response, 1)
	go func() {
		done <- e.doStr("GET", fmt.Sprintf("/v1/kv/b/?prefix=true&index=%d&wait=20s", rev), "")
	}()
	// The writes below must find it waiting, or they would prove nothing.
	testutil.Eventually(t, 5*time.Second, "the blocking read waiting", func() bool {
		return promtest.ToFloat64(e.srv.metrics.blocking) == 1
	})
	e.doStr("PUT", "/v1/kv/elsewhere", "x").ok(t, 200, nil)
	select {
	case r := <-done:
		t.Fatalf("woke on an unrelated change: %s", r.body)
	case <-time.After(200 * time.Millisecond):
	}
	e.doStr("PUT", "/v1/kv/b/k2", "2").ok(t, 200, nil)
	select {
	case r := <-done:
		var list struct {
			KVs []json.RawMessage `json:"kvs"`
		}
		r.ok(t, 200, &list)
		if len(list.KVs) != 2 || r.revision(t) <= rev {
			t.Fatalf("blocking read answered %s", r.body)
		}
		if n := promtest.ToFloat64(e.srv.metrics.blocking); n != 0 {
			t.Fatalf("roster_blocking_reads_open %v after the read answered", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("blocking read did not return on a change")
	}
	// An index already passed answers at once.
	start = time.Now()
	e.doStr("GET", fmt.Sprintf("/v1/kv/b/k?index=%d&wait=20s", rev-1), "").ok(t, 200, nil)
	if time.Since(start) > 5*time.Second {
		t.Fatalf("blocking read with a passed index waited")
	}
	e.doStr("GET", "/v1/kv/b/k?index=1&wait=soon", "").fails(t, 400, "invalid_argument")
	e.doStr("GET", "/v1/kv/b/k?wait=1s", "").fails(t, 400, "invalid_argument")
}

func TestWatchNoGoroutineLeftBehind(t *testing.T) {
	e := newEnv(t)
	e.doStr("PUT", "/v1/kv/g/k", "1").ok(t, 200, nil)
	base := runtime.NumGoroutine()
	var ws []*stream
	for i := 0; i < 50; i++ {
		ws = append(ws, e.openWatch("/v1/watch/g/?prefix=true"))
	}
	testutil.Eventually(t, 5*time.Second, "50 watchers open", func() bool {
		return promtest.ToFloat64(e.srv.metrics.watchers) == 50
	})
	for _, w := range ws {
		w.close()
	}
	testutil.Eventually(t, 10*time.Second, "watchers gone", func() bool {
		return promtest.ToFloat64(e.srv.metrics.watchers) == 0 && runtime.NumGoroutine() <= base+5
	})
}

func TestStalledWatcherIsCutOffOthersKeepUp(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, nil, func(c *Config) { c.WatchWriteTimeout = 300 * time.Millisecond })
	// A stalled client: sends the request, never reads.
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.ts.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetReadBuffer(4096)
	}
	fmt.Fprintf(conn, "GET /v1/watch/s/?prefix=true HTTP/1.1\r\nHost: x\r\n\r\n")
	good := e.openWatch("/v1/watch/s/?prefix=true")
	testutil.Eventually(t, 5*time.Second, "2 watchers", func() bool { return promtest.ToFloat64(e.srv.metrics.watchers) == 2 })

	big := strings.Repeat("x", 64<<10)
	got := 0
	for i := 0; promtest.ToFloat64(e.srv.metrics.watchersCut) == 0; i++ {
		if i > 2000 {
			t.Fatalf("the stalled watcher was never cut off")
		}
		e.doStr("PUT", "/v1/kv/s/k", big).ok(t, 200, nil)
		for len(good.events) > 0 {
			<-good.events
			got++
		}
	}
	e.doStr("PUT", "/v1/kv/s/last", "end").ok(t, 200, nil)
	for {
		ev, we := good.next()
		got++
		if we.KV.Key == "/s/last" {
			if ev.id != e.storeRevision() {
				t.Fatalf("last event %d", ev.id)
			}
			break
		}
	}
	testutil.Eventually(t, 5*time.Second, "stalled watcher closed", func() bool { return promtest.ToFloat64(e.srv.metrics.watchers) == 1 })
}
