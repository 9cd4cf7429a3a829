package client

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for the zero fields of Config.
const (
	// DefaultDialTimeout bounds connecting to one member. A member that is
	// down refuses at once on most networks; the timeout matters when its
	// host is gone and packets vanish, and must stay short so that failing
	// over to the next member is quick.
	DefaultDialTimeout = 2 * time.Second
	// DefaultRequestTimeout bounds one call, retries included, when the
	// caller's context has no earlier deadline. It is longer than the
	// server's own request timeout (15 s) so that the server's precise 504
	// arrives before the client gives up on its own.
	DefaultRequestTimeout = 20 * time.Second
	// defaultAnswerTimeout bounds how long a read waits for one member to
	// start answering before it asks another. A healthy member answers a
	// read in milliseconds, and one without a leader says so (no_leader)
	// within its leader wait of 3 s.
	defaultAnswerTimeout = 5 * time.Second
)

// Config configures a Client.
type Config struct {
	// Endpoints are the HTTP addresses of the members, as "host:port" or
	// "http://host:port" ("https://" works with a suitable HTTPClient). At
	// least one is required; list several so the client can fail over.
	Endpoints []string
	// DialTimeout bounds connecting to one member (default
	// DefaultDialTimeout). It applies only to the client's own transport,
	// not to a caller-supplied HTTPClient.
	DialTimeout time.Duration
	// RequestTimeout bounds each call, retries and fail-over included,
	// unless the context ends sooner (default DefaultRequestTimeout).
	// Watches and keep-alive loops are not bounded by it.
	RequestTimeout time.Duration
	// HTTPClient sends the requests (default: a client with a pooled
	// transport of its own). Its Timeout field must be zero: it would cut
	// watch streams; use RequestTimeout instead.
	HTTPClient *http.Client

	// TLS is used for https:// endpoints (by the client's own transport;
	// a caller-supplied HTTPClient brings its own). When it is nil but
	// CAFile or CertFile is set, the client builds it from the files:
	// CAFile (PEM) is the CA that signed the members' certificates
	// (default: the system roots), CertFile and KeyFile the client
	// certificate to present (members started with -client-ca-file
	// require one). With any TLS setting, endpoints given as host:port
	// are https.
	TLS                       *tls.Config
	CAFile, CertFile, KeyFile string
	// Token is sent as "Authorization: Bearer <token>" with every request
	// (members started with -auth require one).
	Token string
}

// Client talks to a Roster cluster. It is safe for concurrent use; create
// one per process and share it.
type Client struct {
	cfg       Config
	endpoints []*endpoint
	hc        *http.Client
	ownsHC    bool

	rr atomic.Uint64 // round-robin start for the next request
	// leader is the member the last answer named as the leader (its
	// X-Roster-Leader header), when it is one of the endpoints: writes go
	// there first, sparing a follower the forwarding.
	leader atomic.Pointer[endpoint]
	// ignoreLeader turns leader hints off (tests that aim a call at a
	// chosen member).
	ignoreLeader atomic.Bool
	// answerTimeout is how long a read waits for a member to start its
	// answer before trying the next: at most a third of RequestTimeout,
	// so that a hung member leaves time for the others.
	answerTimeout time.Duration

	ka *keepAliver

	// life ends when the client closes: every call, watch and loop of the
	// client derives from it, so Close stops them all.
	life       context.Context
	cancelLife context.CancelFunc
	closeOnce  sync.Once
	// mu orders starting a watch goroutine (wg.Add) before Close's
	// wg.Wait: a watch started after Close began never starts.
	mu sync.Mutex
	wg sync.WaitGroup // watch goroutines
}

// endpoint is one member's base URL and its recent health, which only
// orders the members a request tries: a member that just failed to connect,
// or answered that it knows no leader, is tried last for a while, so
// requests do not keep paying for it.
type endpoint struct {
	base      *url.URL
	downUntil atomic.Int64 // unix nanoseconds; 0: healthy
}

// endpointPenalty is how long a member that refused a connection, or
// answered no_leader, is tried last.
const endpointPenalty = 3 * time.Second

// New returns a Client for the members in cfg. It does not contact them:
// the first call does.
func New(cfg Config) (*Client, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, fmt.Errorf("%w: client: no endpoints", ErrInvalidArgument)
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if err := checkToken(cfg.Token); err != nil {
		return nil, err
	}
	tlsConf, err := clientTLS(cfg)
	if err != nil {
		return nil, err
	}
	c := &Client{cfg: cfg, answerTimeout: min(defaultAnswerTimeout, cfg.RequestTimeout/3)}
	c.life, c.cancelLife = context.WithCancel(context.Background())
	seen := map[string]bool{}
	for _, e := range cfg.Endpoints {
		u, err := parseEndpoint(e, tlsConf != nil)
		if err != nil {
			return nil, err
		}
		if seen[u.String()] {
			continue
		}
		seen[u.String()] = true
		c.endpoints = append(c.endpoints, &endpoint{base: u})
	}
	if cfg.HTTPClient != nil {
		if cfg.HTTPClient.Timeout != 0 {
			return nil, fmt.Errorf("%w: client: HTTPClient.Timeout must be zero (it would cut watch streams); use Config.RequestTimeout", ErrInvalidArgument)
		}
		c.hc = cfg.HTTPClient
	} else {
		tr := newTransport(cfg.DialTimeout)
		tr.TLSClientConfig = tlsConf
		c.hc = &http.Client{Transport: tr}
		c.ownsHC = true
	}
	// A redirect would silently move a write to another URL; the contract
	// promises none, so treat one as the answer rather than follow it.
	hc := *c.hc
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.hc = &hc
	c.ka = newKeepAliver(c)
	return c, nil
}

// newTransport is the client's own pooled transport. Many concurrent calls
// to a handful of members want more idle connections per host than
// net/http's default of two, else each burst opens and drops connections.
func newTransport(dialTimeout time.Duration) *http.Transport {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   dialTimeout,
		ExpectContinueTimeout: time.Second,
	}
}

func parseEndpoint(s string, https bool) (*url.URL, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, fmt.Errorf("%w: client: empty endpoint", ErrInvalidArgument)
	}
	if !strings.Contains(s, "://") {
		if https {
			s = "https://" + s
		} else {
			s = "http://" + s
		}
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("%w: client: endpoint %q: %v", ErrInvalidArgument, s, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: client: endpoint %q is not host:port, http://host:port or https://host:port", ErrInvalidArgument, s)
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" {
		return nil, fmt.Errorf("%w: client: endpoint %q must not have a path or query", ErrInvalidArgument, s)
	}
	// url.Parse takes any digits as a port; one out of range would fail
	// every dial, which the client takes for a member that is down.
	if p := u.Port(); p != "" {
		if n, err := strconv.ParseUint(p, 10, 16); err != nil || n == 0 {
			return nil, fmt.Errorf("%w: client: endpoint %q has no valid port", ErrInvalidArgument, s)
		}
	}
	return &url.URL{Scheme: u.Scheme, Host: u.Host, User: u.User}, nil
}

// checkToken refuses a token that cannot travel in a header. net/http
// refuses such a request before sending it, which the client would take
// for a member it could not reach: every call would then retry until its
// deadline and end as ErrNoLeader. The usual cause is a token read from
// a file with its trailing newline.
func checkToken(tok string) error {
	for i := 0; i < len(tok); i++ {
		if b := tok[i]; b < 0x20 && b != '\t' || b == 0x7f {
			return fmt.Errorf("%w: client: the token holds the control character %q at byte %d (a trailing newline from a file?)", ErrInvalidArgument, b, i)
		}
	}
	return nil
}

// Endpoints returns the member addresses the client uses, as base URLs.
func (c *Client) Endpoints() []string {
	out := make([]string, len(c.endpoints))
	for i, e := range c.endpoints {
		out[i] = e.base.String()
	}
	return out
}

// Close stops the client's keep-alive loops (closing their channels),
// ends its watches and closes idle connections. Calls made after Close
// fail with ErrClosed. Close does not revoke leases: a lease that is no
// longer kept alive expires after its TTL. Calling Close again does
// nothing.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.cancelLife()
		c.mu.Unlock()
		c.ka.close()
		c.wg.Wait()
		if c.ownsHC {
			c.hc.CloseIdleConnections()
		}
	})
	return nil
}

func (c *Client) closed() bool { return c.life.Err() != nil }

// lifeCtx is done once the client is closed.
func (c *Client) lifeCtx() context.Context { return c.life }

// order returns the endpoints in the order the next request tries them:
// round-robin from a rotating start, so load spreads over the members,
// with members that recently refused a connection moved to the end. A
// write starts with the member known to lead, when it is not down: any
// member would forward it there.
func (c *Client) order(write bool) []*endpoint {
	n := len(c.endpoints)
	start := int(c.rr.Add(1)-1) % n
	now := time.Now().UnixNano()
	out := make([]*endpoint, 0, n)
	var down []*endpoint
	var lead *endpoint
	if write {
		if l := c.leader.Load(); l != nil && l.downUntil.Load() <= now {
			lead = l
			out = append(out, l)
		}
	}
	for i := range n {
		e := c.endpoints[(start+i)%n]
		if e == lead {
			continue
		}
		if e.downUntil.Load() > now {
			down = append(down, e)
			continue
		}
		out = append(out, e)
	}
	return append(out, down...)
}

// noteLeader records the leader an answer named ("" when the member knew
// none, which changes nothing). The header is the leader's advertised HTTP
// address: host:port, or https://host:port when the members serve TLS.
func (c *Client) noteLeader(addr string) {
	if addr == "" || c.ignoreLeader.Load() {
		return
	}
	if i := strings.Index(addr, "://"); i >= 0 {
		addr = addr[i+len("://"):]
	}
	if l := c.leader.Load(); l != nil && l.base.Host == addr {
		return
	}
	for _, e := range c.endpoints {
		if e.base.Host == addr {
			c.leader.Store(e)
			return
		}
	}
}

func (e *endpoint) markDown()    { e.downUntil.Store(time.Now().Add(endpointPenalty).UnixNano()) }
func (e *endpoint) markHealthy() { e.downUntil.Store(0) }
