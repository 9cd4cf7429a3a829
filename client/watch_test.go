package client

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/rosterhq/roster/internal/testutil"
	"strconv"
	"testing"
	"time"
)

// collectEvents receives events from wch until it has n, failing after d.
func collectEvents(t *testing.T, wch <-chan WatchResponse, n int, d time.Duration) []Event {
	t.Helper()
	var out []Event
	timeout := time.After(d)
	for len(out) < n {
		select {
		case resp, ok := <-wch:
			if !ok {
				t.Fatalf("watch closed after %d of %d events", len(out), n)
			}
			if resp.Err != nil {
				t.Fatalf("watch error after %d of %d events: %v", len(out), n, resp.Err)
			}
			if len(resp.Events) == 0 || resp.Revision != resp.Events[len(resp.Events)-1].Revision {
				t.Fatalf("malformed WatchResponse %+v", resp)
			}
			out = append(out, resp.Events...)
		case <-timeout:
			t.Fatalf("got %d of %d events within %v: %+v", len(out), n, d, out)
		}
	}
	if len(out) > n {
		t.Fatalf("got %d events, want %d: %+v", len(out), n, out)
	}
	return out
}

func testWatch(t *testing.T, c *Client) {
	skipIfNoWatchRoute(t, c.Endpoints()[0])
	ctx := ctxT(t, 60*time.Second)
	other, _ := newTestClient(t, c.Endpoints())

	// From a listed revision: nothing between the list and the watch is
	// missed, in order, with the right types and revisions.
	g, err := c.Get(ctx, "/w/", WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	wch := c.Watch(ctx, "/w/", WithPrefix(), WithRev(g.Revision))
	p1, _ := other.Put(ctx, "/w/a", []byte("1"))
	p2, _ := other.Put(ctx, "/w/b", []byte{0xff, 0xfe})
	other.Put(ctx, "/wx", []byte("outside the prefix"))
	d, _ := other.Delete(ctx, "/w/a")
	lease, _ := other.Grant(ctx, 10)
	p4, _ := other.Put(ctx, "/w/l", []byte("leased"), WithLease(lease.ID))
	rv, _ := other.Revoke(ctx, lease.ID)
	evs := collectEvents(t, wch, 5, 10*time.Second)
	want := []struct {
		typ EventType
		key string
		rev int64
	}{
		{EventPut, "/w/a", p1.Revision}, {EventPut, "/w/b", p2.Revision}, {EventDelete, "/w/a", d.Revision},
		{EventPut, "/w/l", p4.Revision}, {EventDelete, "/w/l", rv.Revision},
	}
	for i, w := range want {
		e := evs[i]
		if e.Type != w.typ || e.KV.Key != w.key || e.Revision != w.rev || e.KV.ModRevision != w.rev {
			t.Fatalf("event %d = %v %s @%d (kv mod %d), want %v %s @%d", i, e.Type, e.KV.Key, e.Revision, e.KV.ModRevision, w.typ, w.key, w.rev)
		}
	}
	if string(evs[0].KV.Value) != "1" || string(evs[1].KV.Value) != "\xff\xfe" || evs[3].KV.Lease != lease.ID {
		t.Fatalf("event values: %+v", evs)
	}

	// A watch resumed from an old revision replays what came after it.
	replay := collectEvents(t, c.Watch(ctx, "/w/", WithPrefix(), WithRev(p1.Revision)), 4, 10*time.Second)
	if replay[0].Revision != p2.Revision || replay[3].Revision != rv.Revision {
		t.Fatalf("replay = %+v", replay)
	}

	// WithPrevKV on a single key.
	pw, _ := other.Put(ctx, "/w/prev", []byte("old"))
	pch := c.Watch(ctx, "/w/prev", WithRev(pw.Revision), WithPrevKV())
	other.Put(ctx, "/w/prev", []byte("new"))
	other.Put(ctx, "/w/prevx", []byte("not this key"))
	other.Delete(ctx, "/w/prev")
	pe := collectEvents(t, pch, 2, 10*time.Second)
	if pe[0].PrevKV == nil || string(pe[0].PrevKV.Value) != "old" || string(pe[0].KV.Value) != "new" ||
		pe[1].Type != EventDelete || pe[1].PrevKV == nil || string(pe[1].PrevKV.Value) != "new" {
		t.Fatalf("WithPrevKV events = %+v / %+v", pe[0], pe[1])
	}

	// A watch from now sees the changes after it is in place: keep putting
	// until the first event arrives, then every later put must follow in
	// order.
	nch := c.Watch(ctx, "/w/now")
	first := -1
	for i := 0; first < 0 && i < 200; i++ {
		other.Put(ctx, "/w/now", []byte(strconv.Itoa(i)))
		select {
		case resp := <-nch:
			first, _ = strconv.Atoi(string(resp.Events[0].KV.Value))
		case <-time.After(50 * time.Millisecond):
		}
	}
	if first < 0 {
		t.Fatal("a watch from now saw none of 200 puts")
	}

	// The stream breaks (the client is cut off); changes made meanwhile by
	// another client arrive after the watch resumes, each exactly once.
	c2, tt := newTestClient(t, c.Endpoints())
	g, _ = c2.Get(ctx, "/r/", WithPrefix())
	rch := c2.Watch(ctx, "/r/", WithPrefix(), WithRev(g.Revision))
	for i := range 3 {
		other.Put(ctx, fmt.Sprintf("/r/%d", i), nil)
	}
	collectEvents(t, rch, 3, 10*time.Second)
	before := tt.count("GET /v1/watch/{key}")
	tt.cut()
	for i := 3; i < 8; i++ {
		other.Put(ctx, fmt.Sprintf("/r/%d", i), nil)
	}
	testutil.Eventually(t, 10*time.Second, "a reconnect that fails while cut off", func() bool {
		return tt.count("GET /v1/watch/{key}") > before
	})
	tt.heal()
	resumed := collectEvents(t, rch, 5, 15*time.Second)
	for i, e := range resumed {
		if e.KV.Key != fmt.Sprintf("/r/%d", i+3) {
			t.Fatalf("after the resume, event %d is %s", i, e.KV.Key)
		}
	}
	select {
	case resp := <-rch:
		t.Fatalf("unexpected extra watch response %+v", resp)
	case <-time.After(200 * time.Millisecond):
	}
}

// testWatchCompacted: a watch that asks for history the server no longer
// keeps (-watch-history 40) gets ErrCompacted with the oldest revision,
// and its channel closes.
func testWatchCompacted(t *testing.T, c *Client) {
	skipIfNoWatchRoute(t, c.Endpoints()[0])
	ctx := ctxT(t, 60*time.Second)
	first, err := c.Put(ctx, "/cmp/0", nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < 60; i++ {
		if _, err := c.Put(ctx, fmt.Sprintf("/cmp/%d", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	wch := c.Watch(ctx, "/cmp/", WithPrefix(), WithRev(first.Revision))
	select {
	case resp, ok := <-wch:
		var ce *CompactedError
		if !ok || !errors.Is(resp.Err, ErrCompacted) || !errors.As(resp.Err, &ce) || ce.OldestRevision <= first.Revision {
			t.Fatalf("watch from a compacted revision: %+v (open %v), want ErrCompacted with the oldest revision > %d", resp, ok, first.Revision)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no answer from a compacted watch")
	}
	waitClosed(t, wch, 5*time.Second, "compacted watch")

	// An invalid key ends the watch at once with ErrInvalidArgument.
	resp := <-c.Watch(ctx, "nokey")
	if !errors.Is(resp.Err, ErrInvalidArgument) {
		t.Fatalf("watch of a bad key: %+v", resp)
	}
}

// testWatchLargeValues: a watch delivers large values even when JSON writes
// each byte as six (\u0001) and prev_kv doubles that. The client once
// refused lines over 8 MiB, which a value of 700 KiB with its previous
// value passes (the default -max-value-size is 1 MiB), and reconnected for
// ever to the same event, delivering nothing more.
func testWatchLargeValues(t *testing.T, c *Client) {
	ctx := ctxT(t, 60*time.Second)
	v := bytes.Repeat([]byte{1}, 700<<10)
	first, err := c.Put(ctx, "/large/k", v)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Put(ctx, "/large/k", v); err != nil {
		t.Fatal(err)
	}
	select {
	case resp := <-c.Watch(ctx, "/large/k", WithRev(first.Revision), WithPrevKV()):
		if resp.Err != nil || len(resp.Events) != 1 {
			t.Fatalf("watch answered %d events, error %v", len(resp.Events), resp.Err)
		}
		ev := resp.Events[0]
		if !bytes.Equal(ev.KV.Value, v) || ev.PrevKV == nil || !bytes.Equal(ev.PrevKV.Value, v) {
			t.Fatalf("event: value of %d bytes, prev %v", len(ev.KV.Value), ev.PrevKV != nil)
		}
	case <-time.After(20 * time.Second):
		// Not the event itself: it is megabytes.
		t.Fatal("no event of a 700 KiB value with prev_kv within 20s")
	}
}
