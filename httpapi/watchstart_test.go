package httpapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rosterhq/roster/fsm"
)

// changeOnHeader writes the watched key each time the handler looks at the
// answer's headers: so changes apply while the watch is being put in
// place, between any two steps of it that touch the headers.
type changeOnHeader struct {
	http.ResponseWriter
	t    *testing.T
	e    *env
	puts int
}

func (w *changeOnHeader) Header() http.Header {
	w.puts++
	if _, err := w.e.node.Put(context.Background(), fsm.Put{Key: "/ws/k", Value: []byte("during")}); err != nil {
		w.t.Errorf("put while the watch starts: %v", err)
	}
	return w.ResponseWriter.Header()
}

func (w *changeOnHeader) Flush() { w.ResponseWriter.(http.Flusher).Flush() }

// TestWatchStartsAtItsHeaderRevision: a watch from now starts right after
// the revision its X-Roster-Revision header names, so a client that
// resumes from that header (as the Go client does before the first event)
// neither misses nor repeats an event. The header used to be read again
// after the start was fixed: a change applied in between came as the first
// event at or below the header's revision, and the Go client dropped it as
// one it had already seen.
func TestWatchStartsAtItsHeaderRevision(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.doStr("PUT", "/v1/kv/ws/k", "before").ok(t, 200, nil)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v1/watch/") {
			w = &changeOnHeader{ResponseWriter: w, t: t, e: e}
		}
		e.srv.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	we := *e
	we.ts = ts
	w := we.openWatch("/v1/watch/ws/k")
	start := response{hdr: w.resp.Header}.revision(t)
	ev, _ := w.next()
	if ev.id != start+1 {
		t.Fatalf("first event %d on a watch whose header says revision %d: want %d", ev.id, start, start+1)
	}
}
