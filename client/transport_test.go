package client

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestDecodeError(t *testing.T) {
	for _, tc := range []struct {
		status int
		body   string
		is     error
	}{
		{404, `{"error":{"code":"not_found","message":"key \"/a\""}}`, ErrKeyNotFound},
		{404, `{"error":{"code":"lease_not_found","message":"lease 7"}}`, ErrLeaseNotFound},
		{409, `{"error":{"code":"already_exists","message":"lease 7 exists"}}`, ErrAlreadyExists},
		{400, `{"error":{"code":"invalid_argument","message":"bad"}}`, ErrInvalidArgument},
		{413, `{"error":{"code":"too_large","message":"big"}}`, ErrTooLarge},
		{503, `{"error":{"code":"no_leader","message":"election"}}`, ErrNoLeader},
		{504, `{"error":{"code":"timeout","message":"slow"}}`, ErrTimeout},
		{409, `{"error":{"code":"cas_failed","message":"x","current_mod_revision":0}}`, ErrCASFailed},
		{410, `{"error":{"code":"compacted","message":"x","oldest_revision":99}}`, ErrCompacted},
	} {
		err := decodeError(tc.status, []byte(tc.body))
		if !errors.Is(err, tc.is) {
			t.Errorf("%s: %v is not %v", tc.body, err, tc.is)
		}
		if se := statusOf(err); se == nil || se.Status != tc.status {
			t.Errorf("%s: no *StatusError with status %d in %v", tc.body, tc.status, err)
		}
	}
	var ce *CASError
	if err := decodeError(409, []byte(`{"error":{"code":"cas_failed","message":"x","current_mod_revision":42}}`)); !errors.As(err, &ce) || ce.CurrentModRevision != 42 || errors.Is(err, ErrAlreadyExists) {
		t.Errorf("cas_failed: %#v", err)
	}
	// A write-only token's cas_failed has no current_mod_revision.
	if err := decodeError(409, []byte(`{"error":{"code":"cas_failed","message":"x"}}`)); !errors.As(err, &ce) || !ce.RevisionWithheld || strings.Contains(err.Error(), "revision is 0") {
		t.Errorf("cas_failed without current_mod_revision: %#v %v", err, err)
	}
	if err := decodeError(409, []byte(`{"error":{"code":"cas_failed","message":"x","current_mod_revision":0}}`)); !errors.As(err, &ce) || ce.RevisionWithheld {
		t.Errorf("cas_failed on an absent key: %#v", err)
	}
	var co *CompactedError
	if err := decodeError(410, []byte(`{"error":{"code":"compacted","message":"x","oldest_revision":99}}`)); !errors.As(err, &co) || co.OldestRevision != 99 {
		t.Errorf("compacted: %#v", err)
	}
	// Unknown codes and non-JSON bodies are plain StatusErrors.
	err := decodeError(429, []byte(`{"error":{"code":"rate_limited","message":"slow down"}}`))
	var se *StatusError
	if !errors.As(err, &se) || se.Code != "rate_limited" || se.Status != 429 || se.Message != "slow down" {
		t.Errorf("rate_limited: %#v", err)
	}
	for _, s := range []error{ErrKeyNotFound, ErrLeaseNotFound, ErrCASFailed, ErrNoLeader, ErrTimeout} {
		if errors.Is(err, s) {
			t.Errorf("rate_limited matches %v", s)
		}
	}
	err = decodeError(502, []byte("<html>bad gateway</html>"))
	if !errors.As(err, &se) || se.Code != "" || se.Status != 502 || se.Message != "<html>bad gateway</html>" {
		t.Errorf("non-JSON: %#v", err)
	}
}

func TestParseEndpoint(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:7370":         "http://127.0.0.1:7370",
		"http://127.0.0.1:7370":  "http://127.0.0.1:7370",
		"http://127.0.0.1:7370/": "http://127.0.0.1:7370",
		"https://h:1":            "https://h:1",
	} {
		u, err := parseEndpoint(in, false)
		if err != nil || u.String() != want {
			t.Errorf("parseEndpoint(%q) = %v, %v; want %s", in, u, err, want)
		}
	}
	for _, bad := range []string{"", "ftp://h:1", "http://h:1/base", "http://"} {
		if _, err := parseEndpoint(bad, false); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("parseEndpoint(%q): %v, want ErrInvalidArgument", bad, err)
		}
	}
	if _, err := New(Config{}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("New without endpoints: %v", err)
	}
	// Bad settings are refused by New, not found out by every call
	// retrying against its deadline: net/http refuses a request with such
	// a header or port before sending it, which looks like a member that
	// is down.
	for _, cfg := range []Config{
		{Endpoints: []string{"h:1"}, Token: "secret\n"},
		{Endpoints: []string{"h:1"}, Token: "sec\x00ret"},
		{Endpoints: []string{"h:99999"}},
		{Endpoints: []string{"http://h:0"}},
	} {
		if _, err := New(cfg); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("New(%+v): %v, want ErrInvalidArgument", cfg, err)
		}
	}
	if c, err := New(Config{Endpoints: []string{"h:65535", "https://h"}, Token: "a b\tc"}); err != nil {
		t.Errorf("New with valid settings: %v", err)
	} else {
		c.Close()
	}
	if _, err := New(Config{Endpoints: []string{"h:1"}, HTTPClient: &http.Client{Timeout: time.Second}}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("New with HTTPClient.Timeout: %v", err)
	}
}

// fakeMember is an httptest server whose handler the test sets, counting
// the requests it gets.
type fakeMember struct {
	*httptest.Server
	hits atomic.Int64
}

func newFakeMember(t *testing.T, h http.HandlerFunc) *fakeMember {
	f := &fakeMember{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.hits.Add(1)
		h(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

func writeErr(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write([]byte(`{"error":{"code":"` + code + `","message":"test"}}`))
}

// cutConnection drops the connection without an answer: the request
// reached the member, the outcome is unknown.
func cutConnection(w http.ResponseWriter) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err == nil {
		conn.Close()
	}
}

// deadEndpoint is an address that refuses connections.
func deadEndpoint(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestRetryPolicy checks, against fake members, what is retried and what
// is not: the contract says 4xx and 503 no_leader changed nothing, while
// 504 and a connection cut after the request went out leave the outcome
// unknown.
func TestRetryPolicy(t *testing.T) {
	ctx := ctxT(t, 30*time.Second)
	okPut := func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"revision":7}`)) }

	t.Run("504 is ErrTimeout and never retried for a write; a read asks another member", func(t *testing.T) {
		// A follower answers 504 at once to a read whose channel to the
		// leader closed as leadership moved: the read changed nothing, and
		// another member can answer it.
		a := newFakeMember(t, func(w http.ResponseWriter, r *http.Request) { writeErr(w, 504, "timeout") })
		b := newFakeMember(t, func(w http.ResponseWriter, r *http.Request) {
			switch {
			case r.Method == http.MethodGet:
				w.Write([]byte(`{"key":"/k","value":"v","create_revision":1,"mod_revision":1,"version":1}`))
			case strings.HasSuffix(r.URL.Path, "/keepalive"):
				w.Write([]byte(`{"id":"5","ttl":10,"remaining":10}`))
			default:
				okPut(w, r)
			}
		})
		c, _ := New(Config{Endpoints: []string{a.URL, b.URL}})
		defer c.Close()
		for name, f := range map[string]func() error{
			"Put":    func() error { _, err := c.Put(ctx, "/k", nil); return err },
			"Incr":   func() error { _, err := c.Incr(ctx, "/k", 1); return err },
			"Delete": func() error { _, err := c.Delete(ctx, "/k"); return err },
			"Grant":  func() error { _, err := c.Grant(ctx, 10); return err },
		} {
			c.aimAt(c.endpoints[0].base.Host)
			ha, hb := a.hits.Load(), b.hits.Load()
			if err := f(); !errors.Is(err, ErrTimeout) || a.hits.Load()-ha != 1 || b.hits.Load() != hb {
				t.Fatalf("%s: %v; hits %d/%d, want ErrTimeout after one attempt", name, err, a.hits.Load()-ha, b.hits.Load()-hb)
			}
		}
		for name, f := range map[string]func() error{
			"Get":           func() error { _, err := c.Get(ctx, "/k"); return err },
			"KeepAliveOnce": func() error { _, err := c.KeepAliveOnce(ctx, 5); return err },
		} {
			c.aimAt(c.endpoints[0].base.Host)
			ha, hb := a.hits.Load(), b.hits.Load()
			if err := f(); err != nil || a.hits.Load()-ha != 1 || b.hits.Load()-hb != 1 {
				t.Fatalf("%s: %v; hits %d/%d, want the answer of the second member", name, err, a.hits.Load()-ha, b.hits.Load()-hb)
			}
		}
	})

	t.Run("503 no_leader is retried on another member, for writes too", func(t *testing.T) {
		a := newFakeMember(t, func(w http.ResponseWriter, r *http.Request) { writeErr(w, 503, "no_leader") })
		b := newFakeMember(t, okPut)
		c, _ := New(Config{Endpoints: []string{a.URL, b.URL}})
		defer c.Close()
		c.rr.Store(0)
		if p, err := c.Put(ctx, "/k", nil); err != nil || p.Revision != 7 || a.hits.Load() != 1 || b.hits.Load() != 1 {
			t.Fatalf("Put = %+v, %v; hits %d/%d", p, err, a.hits.Load(), b.hits.Load())
		}
	})

	t.Run("a member that answered no_leader is tried last for a while", func(t *testing.T) {
		// A member cut off from the majority, or removed, answers every
		// request no_leader, after waiting for a leader in vain: the calls
		// after the first must not keep paying for it.
		a := newFakeMember(t, func(w http.ResponseWriter, r *http.Request) { writeErr(w, 503, "no_leader") })
		b := newFakeMember(t, okPut)
		c, _ := New(Config{Endpoints: []string{a.URL, b.URL}})
		defer c.Close()
		for range 6 {
			if _, err := c.Put(ctx, "/k", nil); err != nil {
				t.Fatal(err)
			}
		}
		if a.hits.Load() != 1 || b.hits.Load() != 6 {
			t.Fatalf("hits %d/%d, want the member without a leader asked once", a.hits.Load(), b.hits.Load())
		}
	})

	t.Run("no_leader everywhere ends in ErrNoLeader or the deadline", func(t *testing.T) {
		a := newFakeMember(t, func(w http.ResponseWriter, r *http.Request) { writeErr(w, 503, "no_leader") })
		// Long enough for several attempts on a loaded machine (400 ms
		// once allowed only one at load 10).
		c, _ := New(Config{Endpoints: []string{a.URL}, RequestTimeout: 2 * time.Second})
		defer c.Close()
		_, err := c.Put(ctx, "/k", nil)
		// Every attempt was refused with no_leader: nothing changed, so it is
		// ErrNoLeader, not the "outcome unknown" ErrTimeout.
		if !errors.Is(err, ErrNoLeader) || errors.Is(err, ErrTimeout) || a.hits.Load() < 2 {
			t.Fatalf("Put: %v after %d hits, want ErrNoLeader after several attempts", err, a.hits.Load())
		}
	})

	t.Run("rate_limited everywhere ends in ErrRateLimited", func(t *testing.T) {
		// Members over a limit changed nothing and are asked again until
		// the deadline; the caller then learns that they were overloaded
		// (the code the package documentation promises), not that the
		// cluster has no leader.
		a := newFakeMember(t, func(w http.ResponseWriter, r *http.Request) { writeErr(w, 429, "rate_limited") })
		// Long enough for several attempts on a loaded machine (400 ms
		// once allowed only one at load 10).
		c, _ := New(Config{Endpoints: []string{a.URL}, RequestTimeout: 2 * time.Second})
		defer c.Close()
		for name, f := range map[string]func() error{
			"Put": func() error { _, err := c.Put(ctx, "/k", nil); return err },
			"Get": func() error { _, err := c.Get(ctx, "/k"); return err },
		} {
			hits := a.hits.Load()
			err := f()
			var se *StatusError
			if !errors.Is(err, ErrRateLimited) || errors.Is(err, ErrNoLeader) || errors.Is(err, ErrTimeout) ||
				!errors.As(err, &se) || se.Code != "rate_limited" || a.hits.Load()-hits < 2 {
				t.Fatalf("%s: %v after %d hits, want ErrRateLimited after several attempts", name, err, a.hits.Load()-hits)
			}
		}
	})

	t.Run("a refused connection is retried for writes", func(t *testing.T) {
		b := newFakeMember(t, okPut)
		c, _ := New(Config{Endpoints: []string{deadEndpoint(t), b.URL}})
		defer c.Close()
		c.rr.Store(0)
		for _, f := range []func() error{
			func() error { _, err := c.Put(ctx, "/k", nil); return err },
			func() error { _, err := c.Incr(ctx, "/k", 1); return err },
			func() error { _, err := c.Delete(ctx, "/k"); return err },
		} {
			c.aimAt(c.endpoints[0].base.Host)
			if err := f(); err != nil {
				t.Fatalf("write with the first member refusing: %v", err)
			}
		}
	})

	t.Run("a write whose connection was cut is not retried; a read is", func(t *testing.T) {
		a := newFakeMember(t, func(w http.ResponseWriter, r *http.Request) { cutConnection(w) })
		b := newFakeMember(t, func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet {
				w.Write([]byte(`{"key":"/k","value":"v","create_revision":1,"mod_revision":1,"version":1}`))
				return
			}
			okPut(w, r)
		})
		c, _ := New(Config{Endpoints: []string{a.URL, b.URL}})
		defer c.Close()
		c.rr.Store(0)
		_, err := c.Put(ctx, "/k", []byte("v"))
		if err == nil || statusOf(err) != nil || b.hits.Load() != 0 {
			t.Fatalf("Put over a cut connection: %v, hits on b %d; want a transport error and no retry", err, b.hits.Load())
		}
		c.rr.Store(0)
		c.endpoints[0].markHealthy()
		g, err := c.Get(ctx, "/k")
		if err != nil || string(g.KVs[0].Value) != "v" || b.hits.Load() != 1 {
			t.Fatalf("Get over a cut connection = %+v, %v; want a retry on b", g, err)
		}
	})

	t.Run("a read leaves a hung member for another; a write does not", func(t *testing.T) {
		// A member that is stopped or cut off keeps the client's open
		// connections: the request goes out and no answer comes. A read
		// must not spend its whole budget there while another member
		// could answer; a write that went out has an unknown outcome and
		// must still not be sent again.
		hung := newFakeMember(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
		b := newFakeMember(t, func(w http.ResponseWriter, r *http.Request) {
			switch {
			case strings.HasPrefix(r.URL.Path, "/v1/watch/"):
				w.Header().Set("X-Roster-Revision", "1")
				w.Write([]byte("id: 2\ndata: {\"type\":\"put\",\"kv\":{\"key\":\"/k\",\"value\":\"w\",\"create_revision\":2,\"mod_revision\":2,\"version\":1}}\n\n"))
				w.(http.Flusher).Flush()
				<-r.Context().Done()
			case r.Method == http.MethodGet:
				w.Write([]byte(`{"key":"/k","value":"v","create_revision":1,"mod_revision":1,"version":1}`))
			default:
				okPut(w, r)
			}
		})
		c, _ := New(Config{Endpoints: []string{hung.URL, b.URL}, RequestTimeout: 1500 * time.Millisecond})
		defer c.Close()
		c.aimAt(c.endpoints[0].base.Host)
		start := time.Now()
		g, err := c.Get(ctx, "/k")
		if err != nil || string(g.KVs[0].Value) != "v" || hung.hits.Load() != 1 || b.hits.Load() != 1 {
			t.Fatalf("Get with the first member hung = %+v, %v after %v; hits %d/%d, want the answer of the other", g, err, time.Since(start), hung.hits.Load(), b.hits.Load())
		}
		c.aimAt(c.endpoints[0].base.Host)
		if _, err := c.Put(ctx, "/k", nil); !errors.Is(err, ErrTimeout) || b.hits.Load() != 1 {
			t.Fatalf("Put with the first member hung: %v, hits on the other %d; want ErrTimeout and no retry", err, b.hits.Load()-1)
		}
		// So does a renewal, which is as harmless to repeat.
		c.aimAt(c.endpoints[0].base.Host)
		if _, err := c.KeepAliveOnce(ctx, 5); err != nil {
			t.Fatalf("KeepAliveOnce with the first member hung: %v, want the other's answer", err)
		}
		// A watch, too, goes on to the next member rather than wait for
		// a hung one's headers for the whole RequestTimeout.
		c.aimAt(c.endpoints[0].base.Host)
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		start = time.Now()
		wch := c.Watch(wctx, "/k")
		select {
		case resp := <-wch:
			// Without the answer timeout the headers' wait would end only
			// at RequestTimeout, and the hung member would not be put last.
			if resp.Err != nil || len(resp.Events) != 1 || resp.Revision != 2 || time.Since(start) >= c.cfg.RequestTimeout ||
				c.endpoints[0].downUntil.Load() == 0 {
				t.Fatalf("watch with the first member hung: %+v after %v, want the other's event within the answer timeout", resp, time.Since(start))
			}
		case <-time.After(5 * time.Second):
			t.Fatal("watch with the first member hung: no event")
		}
	})

	t.Run("4xx answers are returned at once", func(t *testing.T) {
		a := newFakeMember(t, func(w http.ResponseWriter, r *http.Request) { writeErr(w, 404, "lease_not_found") })
		c, _ := New(Config{Endpoints: []string{a.URL, a.URL + "/"}})
		defer c.Close()
		if _, err := c.KeepAliveOnce(ctx, 5); !errors.Is(err, ErrLeaseNotFound) || a.hits.Load() != 1 {
			t.Fatalf("KeepAliveOnce: %v, hits %d", err, a.hits.Load())
		}
	})

	t.Run("the caller's deadline wins", func(t *testing.T) {
		a := newFakeMember(t, func(w http.ResponseWriter, r *http.Request) { writeErr(w, 503, "no_leader") })
		c, _ := New(Config{Endpoints: []string{a.URL}})
		defer c.Close()
		cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		_, err := c.Get(cctx, "/k")
		if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrTimeout) {
			t.Fatalf("Get: %v, want the caller's DeadlineExceeded", err)
		}
	})
}

// TestDeadlineDuringDialChangedNothing: a call whose deadline passes while
// it is still connecting never sent anything, so it ends as ErrNoLeader
// (nothing changed), not as ErrTimeout (outcome unknown), even for a write
// that may not be retried.
func TestDeadlineDuringDialChangedNothing(t *testing.T) {
	var dials atomic.Int64
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			dials.Add(1)
			<-ctx.Done() // a member that never completes the handshake
			return nil, context.Cause(ctx)
		},
	}}
	c, err := New(Config{Endpoints: []string{"127.0.0.1:1"}, HTTPClient: hc, RequestTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Put(context.Background(), "/a", []byte("v"))
	if !errors.Is(err, ErrNoLeader) || errors.Is(err, ErrTimeout) {
		t.Fatalf("put whose deadline passed while connecting: %v, want ErrNoLeader", err)
	}
	if dials.Load() == 0 {
		t.Fatal("the transport was never asked to dial")
	}
}

// A body that cannot be encoded is an error of the call, sent to no member:
// the client never panics on its caller's behalf.
func TestUnencodableBodyIsAnError(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	c, err := New(Config{Endpoints: []string{srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.do(context.Background(), &call{method: http.MethodPost, path: "/v1/leases", json: func() {}, class: mutating})
	if err == nil {
		t.Fatal("a body json cannot encode was sent without error")
	}
	if hits.Load() != 0 {
		t.Fatalf("the server was called %d times; want none", hits.Load())
	}
}

// TestLeaderHintOverTLS: members that serve TLS advertise their HTTP
// address as https://host:port, and name the leader that way in
// X-Roster-Leader; writes must still go straight to it.
func TestLeaderHintOverTLS(t *testing.T) {
	var leaderHost string
	var leaderHits, followerHits atomic.Int64
	answer := func(hits *atomic.Int64) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			hits.Add(1)
			w.Header().Set(headerLeader, "https://"+leaderHost)
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"revision":1}`))
		}
	}
	leader := httptest.NewTLSServer(answer(&leaderHits))
	defer leader.Close()
	follower := httptest.NewTLSServer(answer(&followerHits))
	defer follower.Close()
	leaderHost = leader.Listener.Addr().String()
	// The follower first: the first write learns the leader there.
	c, err := New(Config{Endpoints: []string{follower.URL, leader.URL}, HTTPClient: leader.Client()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := ctxT(t, 10*time.Second)
	for range 6 {
		if _, err := c.Put(ctx, "/k", []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	if f, l := followerHits.Load(), leaderHits.Load(); f != 1 || l != 5 {
		t.Fatalf("%d writes went to the follower and %d to the leader it named; want 1 and 5", f, l)
	}
}

// TestBadInputRefusedBeforeSending: what can never be valid is refused
// with ErrInvalidArgument before any request, so the caller learns of it
// at once even with the registry unreachable (not as ErrNoLeader after
// RequestTimeout).
func TestBadInputRefusedBeforeSending(t *testing.T) {
	ctx := ctxT(t, 30*time.Second)
	a := newFakeMember(t, func(w http.ResponseWriter, r *http.Request) { writeErr(w, 503, "no_leader") })
	c, _ := New(Config{Endpoints: []string{a.URL}, RequestTimeout: 5 * time.Second})
	defer c.Close()
	calls := map[string]func() error{
		"Put empty key":      func() error { _, err := c.Put(ctx, "", nil); return err },
		"Get relative key":   func() error { _, err := c.Get(ctx, "k"); return err },
		"Delete empty key":   func() error { _, err := c.Delete(ctx, ""); return err },
		"Incr empty key":     func() error { _, err := c.Incr(ctx, "", 1); return err },
		"Put negative lease": func() error { _, err := c.Put(ctx, "/k", nil, WithLease(-1)); return err },
		"Grant ttl 0":        func() error { _, err := c.Grant(ctx, 0); return err },
		"Grant ttl 1":        func() error { _, err := c.Grant(ctx, 1); return err },
		"Grant ttl -5":       func() error { _, err := c.Grant(ctx, -5); return err },
		"Grant ttl 30d+1s":   func() error { _, err := c.Grant(ctx, 2_592_001); return err },
		"Grant negative id":  func() error { _, err := c.Grant(ctx, 10, WithID(-1)); return err },
		"Revoke 0":           func() error { _, err := c.Revoke(ctx, 0); return err },
		"Revoke -1":          func() error { _, err := c.Revoke(ctx, -1); return err },
		"TimeToLive 0":       func() error { _, err := c.TimeToLive(ctx, 0); return err },
		"KeepAliveOnce -1":   func() error { _, err := c.KeepAliveOnce(ctx, -1); return err },
		"KeepAlive 0":        func() error { _, err := c.KeepAlive(ctx, 0); return err },
		"Register ttl 1":     func() error { _, err := NewRegistrar(c).Register(ctx, "/svc/a", nil, 1); return err },
		"Register bad key":   func() error { _, err := NewRegistrar(c).Register(ctx, "svc/a", nil, 10); return err },
		"Resolver bad key":   func() error { _, err := NewResolver(ctx, c, ""); return err },
		"Watch bad key":      func() error { return (<-c.Watch(ctx, "k")).Err },
	}
	for name, f := range calls {
		start := time.Now()
		if err := f(); !errors.Is(err, ErrInvalidArgument) || a.hits.Load() != 0 || time.Since(start) > time.Second {
			t.Errorf("%s: %v after %v and %d requests; want ErrInvalidArgument at once, nothing sent", name, err, time.Since(start), a.hits.Load())
		}
	}
}
