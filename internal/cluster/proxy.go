package cluster

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// A proxy listens in front of one port of one member (its Raft or its HTTP
// port) and relays every connection to it. It asks the Net who dialed (see
// dialer.go) and, for every chunk of bytes, what the directed link between
// the dialer and the member currently does with it.
type proxy struct {
	net    *Net
	to     *Member
	target func() string // the member's real address (read at each dial)
	ln     net.Listener
	done   chan struct{}
}

func (p *proxy) serve() {
	defer p.net.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		p.net.wg.Add(1)
		go func() {
			defer p.net.wg.Done()
			p.handle(c)
		}()
	}
}

// handle relays one connection. A cut link refuses it (accepted, then
// closed at once: the dialer sees its connection reset or closed before
// any answer); a member that does not run refuses it too.
func (p *proxy) handle(client net.Conn) {
	from := p.net.dialerOf(client)
	if p.net.link(from, p.to.ID).Mode == Cut {
		p.net.refused.Add(1)
		client.Close()
		return
	}
	server, err := net.DialTimeout("tcp", p.target(), 2*time.Second)
	if err != nil {
		client.Close()
		return
	}
	pc := &pconn{from: from, to: p.to.ID, client: client, server: server}
	if !p.net.track(pc) {
		pc.close()
		return
	}
	defer p.net.untrack(pc)
	var wg sync.WaitGroup
	wg.Add(2)
	// Bytes the dialer sends travel its link to the member; the answers
	// travel the link back.
	go func() { defer wg.Done(); p.net.pump(pc, from, p.to.ID, client, server) }()
	go func() { defer wg.Done(); p.net.pump(pc, p.to.ID, from, server, client) }()
	wg.Wait()
}

// pconn is one relayed connection, dialed by from (a member ID, or "" for
// anyone else: the test itself) to the member to.
type pconn struct {
	from, to       string
	client, server net.Conn
	// dropped is set once a byte of this connection was discarded: its
	// stream has a hole, so healing the link must close it.
	dropped   atomic.Bool
	closeOnce sync.Once
}

func (c *pconn) close() {
	c.closeOnce.Do(func() {
		c.client.Close()
		c.server.Close()
	})
}

// chunk is bytes read from one side, with when they were read.
type chunk struct {
	b  []byte
	at time.Time
}

// pump copies src to dst for the link from→to. A reader takes bytes off
// src as they come and decides their fate under the link's mode at that
// instant: relayed (after the link's delay) or dropped. A writer delivers
// the relayed ones in order. Either side ending closes the connection.
func (n *Net) pump(pc *pconn, from, to string, src, dst net.Conn) {
	defer pc.close()
	q := make(chan chunk, 1024)
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		defer pc.close()
		for ck := range q {
			if d := n.link(from, to).Delay; d > 0 {
				if wait := time.Until(ck.at.Add(d)); wait > 0 {
					select {
					case <-time.After(wait):
					case <-n.closed:
						return
					}
				}
			}
			if _, err := dst.Write(ck.b); err != nil {
				return
			}
		}
	}()
	defer func() { close(q); <-writerDone }()
	buf := make([]byte, 32<<10)
	for {
		k, err := src.Read(buf)
		if k > 0 {
			l := n.link(from, to)
			if l.Mode != OK {
				pc.dropped.Store(true)
				n.droppedBytes.Add(int64(k))
			} else {
				b := append([]byte(nil), buf[:k]...)
				select {
				case q <- chunk{b: b, at: time.Now()}:
				case <-writerDone:
					return
				}
			}
		}
		if err != nil {
			return // EOF, reset or closed: the connection is over either way
		}
	}
}
