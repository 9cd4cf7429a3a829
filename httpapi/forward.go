package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/rosterhq/roster/api"
	"github.com/rosterhq/roster/registry"
)

// headerForwarded marks a request a follower forwarded to the leader. A
// node that receives one never forwards it again: if leadership moved in
// between, it answers no_leader and the client retries, instead of requests
// bouncing between members.
const headerForwarded = "X-Roster-Forwarded-By"

// forwarder sends requests that must run on the leader (writes and
// linearizable reads) to it, through a pooled reverse proxy. The client
// never sees a redirect.
type forwarder struct {
	self  string
	proxy *httputil.ReverseProxy
	// leaderWait bounds the wait for a new leader after the old one
	// refused a forwarded request.
	leaderWait time.Duration
}

type ctxKeyTarget struct{}

// ctxKeyAttempt carries a *fwdAttempt: the proxy's error handler records a
// refused dial there instead of answering, so leaderOnly can retry.
type ctxKeyAttempt struct{}

type fwdAttempt struct{ refused error }

func (s *Server) newForwarder() *forwarder {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 3 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 128,
		IdleConnTimeout:     90 * time.Second,
		TLSClientConfig:     s.cfg.PeerTLS,
		TLSHandshakeTimeout: 5 * time.Second,
		// No ResponseHeaderTimeout: blocking reads legitimately wait for
		// minutes; every forwarded request is bounded by its own context.
	}
	f := &forwarder{self: s.b.ID(), leaderWait: 5 * time.Second}
	f.proxy = &httputil.ReverseProxy{
		Transport:     tr,
		FlushInterval: -1,
		Rewrite: func(r *httputil.ProxyRequest) {
			target := r.In.Context().Value(ctxKeyTarget{}).(*url.URL)
			r.SetURL(target)
			r.Out.Host = r.In.Host
			r.Out.Header.Set(headerForwarded, f.self)
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			// A refused dial reached nobody: nothing was proposed. Any other
			// failure may have reached the leader: the outcome is unknown.
			var op *net.OpError
			if errors.As(err, &op) && op.Op == "dial" {
				if att, ok := r.Context().Value(ctxKeyAttempt{}).(*fwdAttempt); ok {
					att.refused = err // leaderOnly retries or answers
					return
				}
				writeErrorTo(w, registry.ErrNoLeader, "forwarding to the leader failed: "+err.Error())
				return
			}
			if errors.Is(err, context.Canceled) {
				return // the client went away
			}
			writeErrorTo(w, registry.ErrTimeout, "forwarding to the leader failed: "+err.Error())
		},
	}
	return f
}

// memberURL is the base URL of a member's recorded HTTP address: host:port
// for plain HTTP, https://host:port when it serves TLS.
func memberURL(addr string) *url.URL {
	if rest, ok := strings.CutPrefix(addr, "https://"); ok {
		return &url.URL{Scheme: "https", Host: rest}
	}
	return &url.URL{Scheme: "http", Host: strings.TrimPrefix(addr, "http://")}
}

// writeErrorTo writes the error envelope on a plain ResponseWriter (the
// proxy's error path runs outside gin).
func writeErrorTo(w http.ResponseWriter, err error, msg string) {
	status, detail := errorStatus(err)
	detail.Message = msg
	b, _ := json.Marshal(api.ErrorResponse{Error: &detail})
	w.Header().Set("Content-Type", contentJSON)
	w.WriteHeader(status)
	w.Write(b)
}

// leaderOnly serves the request here when this node leads, and otherwise
// forwards it to the leader, waiting (bounded) for one to be elected.
//
// A leader that refuses the connection (it just died) has received
// nothing, so the request is sent again to the next leader once this
// member sees one, within the registry's leader wait; only then is the
// answer 503 no_leader. The body is buffered for that (bodies are bounded).
func (s *Server) leaderOnly(c *gin.Context) {
	if c.Request.Header.Get(headerForwarded) != "" {
		c.Next() // forwarded once already: answer here, whatever happens
		return
	}
	self, addr, err := s.b.WaitLeader(c.Request.Context())
	if err != nil {
		s.fail(c, err)
		c.Abort()
		return
	}
	if self {
		c.Next()
		return
	}
	body, err := readBody(c, int64(max(s.b.MaxValueBytes(), maxJSONBody)))
	if err != nil {
		s.fail(c, err)
		c.Abort()
		return
	}
	for attempt := 0; ; attempt++ {
		att := &fwdAttempt{}
		ctx := context.WithValue(c.Request.Context(), ctxKeyTarget{}, memberURL(addr))
		ctx = context.WithValue(ctx, ctxKeyAttempt{}, att)
		req := c.Request.WithContext(ctx)
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.ContentLength = int64(len(body))
		s.fwd.proxy.ServeHTTP(c.Writer, req)
		if att.refused == nil {
			c.Abort()
			return
		}
		next, self, ok := s.nextLeader(c.Request.Context(), addr)
		if !ok || attempt >= 3 {
			s.fail(c, fmt.Errorf("%w: the leader at %s refused the connection: %v", registry.ErrNoLeader, addr, att.refused))
			c.Abort()
			return
		}
		if self {
			c.Request.Body = io.NopCloser(bytes.NewReader(body))
			c.Request.ContentLength = int64(len(body))
			c.Next()
			return
		}
		addr = next
	}
}

// nextLeader waits, within the registry's leader wait, until this member
// knows a leader other than the one at old (which refused a connection).
func (s *Server) nextLeader(ctx context.Context, old string) (addr string, self, ok bool) {
	deadline := time.Now().Add(s.fwd.leaderWait)
	for time.Now().Before(deadline) {
		self, addr, err := s.b.WaitLeader(ctx)
		if err != nil {
			return "", false, false
		}
		if self || addr != old {
			return addr, self, true
		}
		select {
		case <-ctx.Done():
			return "", false, false
		case <-time.After(20 * time.Millisecond):
		}
	}
	return "", false, false
}

// readOrForward forwards a read unless it asked for ?stale=true.
func (s *Server) readOrForward(c *gin.Context) {
	q := newQuery(c)
	stale := q.flag("stale")
	if q.err != nil {
		s.fail(c, q.err)
		c.Abort()
		return
	}
	if stale {
		c.Next()
		return
	}
	s.leaderOnly(c)
}
