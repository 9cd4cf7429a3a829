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
	req, _ := http.NewRequestWithContext(ctx, "GET", follower.URL("/v1/watch/w/?prefix=true"), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("watch on follower: %d", resp.StatusCode)
	}
	type ev struct {
		id  int64
		typ string
		key string
	}
	events := make(chan ev, 100)
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
				events <- ev{id, d.Type, d.KV.Key}
			}
		}
	}()

	l := grant(t, leader.URL(""), 30, "/w")
	var want []ev
	for i := 0; i < 5; i++ {
		key := fmt.Sprintf("/v1/kv/w/k%d?lease=%s", i, l.ID)
		code, b := do(t, "PUT", leader.URL(key), []byte("v"))
		if code != 200 {
			t.Fatalf("put: %d %s", code, b)
		}
		want = append(want, ev{typ: "put", key: fmt.Sprintf("/w/k%d", i)})
	}
	if code, b := do(t, "DELETE", leader.URL("/v1/leases/"+l.ID), nil); code != 200 {
		t.Fatalf("revoke: %d %s", code, b)
	}
	for i := 0; i < 5; i++ {
		want = append(want, ev{typ: "delete", key: fmt.Sprintf("/w/k%d", i)})
	}
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
