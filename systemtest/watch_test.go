package systemtest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rosterhq/roster/internal/cluster"
)

// TestWatchOnFollowerSeesLeaderWrites watches a prefix on a follower while
// writes go through the leader: the follower's stream delivers every event
// in revision order, including the delete caused by a lease revocation.
func TestWatchOnFollowerSeesLeaderWrites(t *testing.T) {
	c := cluster.Start(t, 3, "-tick", "100ms")
	leader := c.Leader(30 * time.Second)
	follower := c.Followers(leader)[0]

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	events := watchStream(ctx, t, follower.URL("/v1/watch/w/?prefix=true"))
	expectEvents(ctx, t, events, leasedPutsThenRevoke(t, leader, "/w"))
}

// watchEvent is one event of a watch stream: its revision (the SSE id),
// type and key.
type watchEvent struct {
	id  int64
	typ string
	key string
}

// watchStream opens a watch (an SSE stream) at url and delivers its events
// until the stream ends or ctx is done.
func watchStream(ctx context.Context, t testing.TB, url string) <-chan watchEvent {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 {
		t.Fatalf("watch %s: %d", url, resp.StatusCode)
	}
	events := make(chan watchEvent, 100)
	go func() {
		defer close(events)
		br := bufio.NewReader(resp.Body)
		var id int64
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimSpace(line)
			switch {
			case strings.HasPrefix(line, "id: "):
				id, _ = strconv.ParseInt(line[4:], 10, 64)
			case strings.HasPrefix(line, "data: "):
				var d struct {
					Type string `json:"type"`
					KV   struct {
						Key string `json:"key"`
					} `json:"kv"`
				}
				json.Unmarshal([]byte(line[6:]), &d)
				select {
				case events <- watchEvent{id, d.Type, d.KV.Key}:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return events
}

// leasedPutsThenRevoke writes five keys under prefix attached to one lease
// through m, then revokes the lease, and returns the events a watch of
// prefix must deliver: five puts, then the five deletes of the revocation.
func leasedPutsThenRevoke(t testing.TB, m *cluster.Member, prefix string) []watchEvent {
	t.Helper()
	l := grant(t, m.URL(""), 30, prefix)
	var want []watchEvent
	for i := range 5 {
		key := fmt.Sprintf("%s/k%d", prefix, i)
		if code, b := do(t, "PUT", m.URL("/v1/kv"+key+"?lease="+l.ID), []byte("v")); code != 200 {
			t.Fatalf("put %s: %d %s", key, code, b)
		}
		want = append(want, watchEvent{typ: "put", key: key})
	}
	if code, b := do(t, "DELETE", m.URL("/v1/leases/"+l.ID), nil); code != 200 {
		t.Fatalf("revoke: %d %s", code, b)
	}
	for i := range 5 {
		want = append(want, watchEvent{typ: "delete", key: fmt.Sprintf("%s/k%d", prefix, i)})
	}
	return want
}

// expectEvents checks that events delivers want, in order and with rising
// revisions.
func expectEvents(ctx context.Context, t testing.TB, events <-chan watchEvent, want []watchEvent) {
	t.Helper()
	var last int64
	for i, w := range want {
		select {
		case got, ok := <-events:
			if !ok {
				t.Fatalf("stream ended after %d events", i)
			}
			if got.typ != w.typ || got.key != w.key || got.id <= last {
				t.Fatalf("event %d: %+v, want %+v after revision %d", i, got, w, last)
			}
			last = got.id
		case <-ctx.Done():
			t.Fatalf("event %d never arrived", i)
		}
	}
}
