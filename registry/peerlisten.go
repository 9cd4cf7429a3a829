package registry

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// The raft port carries two protocols: raft's own RPCs, whose connections
// begin with an RPC type byte (0 to 4 in hashicorp/raft), and the members'
// forwarding channel, whose connections begin with peerMagic. The stream
// layer below accepts every connection, reads its first byte in a goroutine
// of that connection (with a deadline, so a silent or slow dialer costs
// nothing but that goroutine), and hands it to raft or to the channel's
// server. Anything else is closed. Older members dial raft exactly as
// before, so a mixed cluster keeps replicating.
const (
	// raftMaxRPCType is the highest RPC type byte raft sends
	// (rpcRequestPreVote in hashicorp/raft 1.7).
	raftMaxRPCType = 4
	// sniffTimeout bounds the TLS handshake and the first byte.
	sniffTimeout = 10 * time.Second
	// maxSniffing caps connections waiting for their first byte; beyond it
	// new ones are closed at once, so a flood of idle dialers cannot pile
	// up goroutines.
	maxSniffing = 1024
)

// streamLayer is the raft.StreamLayer over the shared listener. Its Dial
// is raft's (with TLS when configured); dialPeer opens channel connections.
type streamLayer struct {
	ln        net.Listener
	advertise net.Addr
	tls       *tls.Config // nil: plain TCP
	log       *slog.Logger

	raftCh  chan net.Conn
	peerFn  func(net.Conn) // set before accept starts
	sniffs  chan struct{}  // semaphore of maxSniffing
	closed  chan struct{}
	closeMu sync.Once

	mu        sync.Mutex
	sniffing  map[net.Conn]struct{}  // nil once closed
	raftConns map[*raftConn]struct{} // handed to raft; nil once drained
	wg        sync.WaitGroup
}

var _ raft.StreamLayer = (*streamLayer)(nil)

// newStreamLayer listens on bind. peer receives every channel connection,
// after its preamble's magic byte was read; it owns the connection from
// then on.
func newStreamLayer(bind string, advertise net.Addr, tlsCfg *tls.Config, log *slog.Logger, peer func(net.Conn)) (*streamLayer, error) {
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, err
	}
	s := &streamLayer{
		ln: ln, advertise: advertise, log: log,
		raftCh: make(chan net.Conn), peerFn: peer,
		sniffs: make(chan struct{}, maxSniffing), closed: make(chan struct{}),
		sniffing: map[net.Conn]struct{}{}, raftConns: map[*raftConn]struct{}{},
	}
	if tlsCfg != nil {
		s.tls = serverTLS(tlsCfg)
	}
	addr, ok := s.Addr().(*net.TCPAddr)
	if !ok || addr.IP == nil || addr.IP.IsUnspecified() {
		ln.Close()
		return nil, fmt.Errorf("raft address %v is not one other members can dial; set the advertised raft address", s.Addr())
	}
	s.wg.Add(1)
	go s.acceptLoop()
	return s, nil
}

// serverTLS is cfg for the listening side: a peer must present a
// certificate the configured CAs verify.
func serverTLS(cfg *tls.Config) *tls.Config {
	c := cfg.Clone()
	if c.ClientAuth < tls.RequireAndVerifyClientCert {
		c.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return c
}

// clientTLS is cfg for dialing addr: our certificate is presented and the
// peer's is verified against the configured CAs for addr's host.
func clientTLS(cfg *tls.Config, addr string) *tls.Config {
	c := cfg.Clone()
	if c.ServerName == "" {
		if host, _, err := net.SplitHostPort(addr); err == nil {
			c.ServerName = host
		}
	}
	return c
}

func (s *streamLayer) acceptLoop() {
	defer s.wg.Done()
	var backoff time.Duration
	for {
		c, err := s.ln.Accept()
		if err != nil {
			select {
			case <-s.closed:
				return
			default:
			}
			// Out of file descriptors and the like: wait and retry, as
			// net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Warn("raft listener: accept failed", "error", err, "retry_in", backoff)
			select {
			case <-time.After(backoff):
			case <-s.closed:
				return
			}
			continue
		}
		backoff = 0
		select {
		case s.sniffs <- struct{}{}:
		default:
			s.log.Warn("raft listener: too many connections still silent; closing a new one", "remote", c.RemoteAddr())
			c.Close()
			continue
		}
		s.wg.Add(1)
		go s.sniff(c)
	}
}

// sniff reads the first byte of c (after the TLS handshake) and routes it.
func (s *streamLayer) sniff(raw net.Conn) {
	defer s.wg.Done()
	defer func() { <-s.sniffs }()
	if !s.track(raw, true) {
		raw.Close()
		return
	}
	c := raw
	if s.tls != nil {
		c = tls.Server(raw, s.tls)
	}
	_ = c.SetDeadline(time.Now().Add(sniffTimeout))
	var first [1]byte
	if _, err := io.ReadFull(c, first[:]); err != nil {
		level := slog.LevelDebug
		var rec tls.RecordHeaderError
		if s.tls != nil && (errors.As(err, &rec) || !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed)) {
			level = slog.LevelWarn // a peer without a valid certificate, most likely
		}
		s.log.Log(context.Background(), level, "raft listener: connection closed before its first byte",
			"remote", raw.RemoteAddr(), "error", err)
		s.track(raw, false)
		raw.Close()
		return
	}
	_ = c.SetDeadline(time.Time{})
	if !s.track(raw, false) {
		raw.Close() // the layer closed meanwhile
		return
	}
	switch {
	case first[0] <= raftMaxRPCType:
		rc := &raftConn{Conn: c, first: first[0], has: true, done: make(chan struct{}), layer: s}
		s.mu.Lock()
		if s.raftConns == nil {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.raftConns[rc] = struct{}{}
		s.mu.Unlock()
		select {
		case s.raftCh <- rc:
		case <-s.closed:
			rc.Close()
		}
	case first[0] == peerMagic:
		s.peerFn(c)
	default:
		s.log.Warn("raft listener: closing a connection that is neither raft nor a member's channel",
			"remote", raw.RemoteAddr(), "first_byte", first[0])
		c.Close()
	}
}

// track adds c to (or removes it from) the connections Close must close
// while they are being sniffed. Adding fails once the layer is closed;
// removing reports whether c was still tracked (false: Close took it).
func (s *streamLayer) track(c net.Conn, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		if s.sniffing == nil {
			return false
		}
		s.sniffing[c] = struct{}{}
		return true
	}
	if _, ok := s.sniffing[c]; !ok {
		return false
	}
	delete(s.sniffing, c)
	return true
}

// Accept hands raft its connections.
func (s *streamLayer) Accept() (net.Conn, error) {
	select {
	case c := <-s.raftCh:
		return c, nil
	case <-s.closed:
		return nil, net.ErrClosed
	}
}

// Close stops accepting and closes connections still being sniffed. It is
// idempotent; connections already handed over belong to their owners.
func (s *streamLayer) Close() error {
	var err error
	s.closeMu.Do(func() {
		close(s.closed)
		err = s.ln.Close()
		s.mu.Lock()
		for c := range s.sniffing {
			c.Close()
		}
		s.sniffing = nil
		s.mu.Unlock()
		s.wg.Wait()
	})
	return err
}

// Addr is the advertised address (raft puts it in the configuration).
func (s *streamLayer) Addr() net.Addr {
	if s.advertise != nil {
		return s.advertise
	}
	return s.ln.Addr()
}

// Dial opens a raft connection to a peer.
func (s *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return s.dial(context.Background(), string(address), timeout)
}

func (s *streamLayer) dial(ctx context.Context, addr string, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout, KeepAlive: 15 * time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if s.tls == nil {
		return c, nil
	}
	tc := tls.Client(c, clientTLS(s.tls, addr))
	hctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		c.Close()
		return nil, &net.OpError{Op: "dial", Net: "tcp", Addr: c.RemoteAddr(), Err: fmt.Errorf("tls handshake: %w", err)}
	}
	return tc, nil
}

// raftConn is a connection handed to raft: it gives back the byte the
// sniffer read, and tells drainRaft when raft is done with it.
type raftConn struct {
	net.Conn
	layer *streamLayer
	mu    sync.Mutex
	first byte
	has   bool
	once  sync.Once
	done  chan struct{} // closed when raft closes the connection
}

func (c *raftConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.mu.Lock()
	if c.has {
		c.has = false
		p[0] = c.first
		c.mu.Unlock()
		return 1, nil
	}
	c.mu.Unlock()
	return c.Conn.Read(p)
}

// Close is raft's: its connection handler calls it as it returns.
func (c *raftConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		close(c.done)
		c.layer.mu.Lock()
		delete(c.layer.raftConns, c)
		c.layer.mu.Unlock()
	})
	return err
}

// drainRaft closes the connections raft accepted and waits, at most d,
// until raft's handlers of them have returned. raft answers heartbeats on
// those handlers, outside its main loop and after its shutdown began: a
// heartbeat still being served when the node closes its log store would
// write the term into a closed store, which raft treats as fatal.
func (s *streamLayer) drainRaft(d time.Duration) {
	s.mu.Lock()
	conns := s.raftConns
	s.raftConns = nil
	s.mu.Unlock()
	timeout := time.NewTimer(d)
	defer timeout.Stop()
	for c := range conns {
		c.Conn.Close() // the handler's next read or write fails
	}
	for c := range conns {
		select {
		case <-c.done:
		case <-timeout.C:
			s.log.Warn("raft connections still being served at shutdown", "remaining", len(conns))
			return
		}
	}
}
