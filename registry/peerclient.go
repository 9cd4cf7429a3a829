package registry

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// The follower's side of the forwarding channel: one persistent connection
// to the leader, shared by every request this member forwards. A writer
// goroutine sends whatever is pending in one write, a reader goroutine
// matches answers to requests by ID. When the leader changes, new
// requests dial the new one, while the old connection is retired: it takes
// no new request and stays open until the requests already sent on it are
// answered (or their callers give up), since a former leader answers what
// it learns of their fate (fate.go) rather than leave them unknown.
const (
	// peerQueue bounds requests waiting for the writer; callers beyond it
	// wait (with their context), which is the channel's backpressure.
	peerQueue = 4096
	// peerWriteBatch is how many bytes the writer gathers before a flush.
	peerWriteBatch = 256 << 10
	// peerDialTimeout bounds connecting and the preamble exchange.
	peerDialTimeout = 3 * time.Second
	// peerWriteTimeout bounds one flush to the leader: a leader that stops
	// reading for this long is treated as gone.
	peerWriteTimeout = 10 * time.Second
	peerBufSize      = 64 << 10
	// peerRetireMax bounds how long a retired connection waits for an
	// answer to a request sent without a deadline.
	peerRetireMax = 30 * time.Second
)

// Call states: the writer takes a call only if it is still queued, and a
// caller that gives up takes it back only if it was not yet written — the
// one who wins decides whether the leader may have seen it.
const (
	callQueued int32 = iota
	callWritten
	callAbandoned
)

type peerCall struct {
	kind     byte
	id       uint64
	timeout  time.Duration
	deadline time.Time // zero: none
	payload  []byte
	state    atomic.Int32
	// seq is the call's place among the request frames written on its
	// connection (1, 2, …; 0 until the writer numbers it), for a go-away.
	seq   atomic.Uint64
	reply chan peerReply // buffered: one reply, never blocks the sender
}

type peerReply struct {
	payload []byte
	err     error
}

// peerClient owns the connection to the current leader.
type peerClient struct {
	layer    *streamLayer
	log      *slog.Logger
	maxFrame int

	mu      sync.Mutex
	conn    *peerConn // nil: none yet
	retired map[*peerConn]struct{}
	closed  bool
	wg      sync.WaitGroup
}

func newPeerClient(layer *streamLayer, log *slog.Logger, maxFrame int) *peerClient {
	return &peerClient{layer: layer, log: log, maxFrame: maxFrame, retired: map[*peerConn]struct{}{}}
}

// call sends one request to the leader at addr and waits for its answer.
// A failure before the request was written is a refusal (isRefusal);
// after, the outcome is unknown (ErrTimeout).
func (p *peerClient) call(ctx context.Context, addr string, kind byte, payload []byte) ([]byte, error) {
	c, err := p.connTo(ctx, addr)
	if err != nil {
		return nil, err
	}
	pc := &peerCall{kind: kind, payload: payload, reply: make(chan peerReply, 1)}
	if dl, ok := ctx.Deadline(); ok {
		pc.timeout = max(time.Until(dl), time.Millisecond)
		pc.deadline = dl
	}
	if err := c.register(pc); err != nil {
		return nil, err
	}
	select {
	case c.sendq <- pc:
	case <-c.done:
		c.forget(pc)
		return nil, refusal("the connection to the leader at %s closed before the request was sent", addr)
	case <-ctx.Done():
		c.forget(pc)
		return nil, refusal("%v before the request could be sent to the leader at %s", ctx.Err(), addr)
	}
	select {
	case r := <-pc.reply:
		return r.payload, r.err
	case <-ctx.Done():
		c.forget(pc)
		if pc.state.CompareAndSwap(callQueued, callAbandoned) {
			return nil, refusal("%v before the request could be sent to the leader at %s", ctx.Err(), addr)
		}
		return nil, unknownOutcome("no answer from the leader at %s: %v", addr, ctx.Err())
	}
}

// connTo returns a live connection to addr, dialing one (and dropping a
// connection to a former leader) when needed. Concurrent callers share
// one dial.
func (p *peerClient) connTo(ctx context.Context, addr string) (*peerConn, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, refusal("the node is closing")
	}
	c := p.conn
	if c != nil && c.addr == addr && c.closing() {
		// Dialing it again would only be refused; killing this
		// connection would make the answers still due on it unknown.
		p.mu.Unlock()
		return nil, refusal("the leader at %s is closing", addr)
	}
	if c != nil && c.addr != addr {
		p.retireLocked(c, fmt.Sprintf("the leader moved to %s", addr))
		c = nil
	} else if c != nil && c.isDead() {
		c = nil
	}
	if c == nil {
		c = &peerConn{
			p: p, addr: addr, ready: make(chan struct{}), done: make(chan struct{}),
			sendq: make(chan *peerCall, peerQueue), pending: map[uint64]*peerCall{},
		}
		p.conn = c
		p.wg.Add(1)
		go c.run()
	}
	p.mu.Unlock()
	select {
	case <-c.ready:
	case <-ctx.Done():
		return nil, refusal("%v while connecting to the leader at %s", ctx.Err(), addr)
	}
	if c.dialErr != nil {
		return nil, c.dialErr
	}
	return c, nil
}

// dropLeader retires the connection to a member other than addr, which
// raft now reports as the leader: new requests go to addr, while those
// already sent to the former leader still get its answer (retire).
func (p *peerClient) dropLeader(addr string) {
	if addr == "" {
		return // an election: the old leader may well win again
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if c := p.conn; c != nil && c.addr != addr {
		p.retireLocked(c, fmt.Sprintf("the leader changed to %q", addr))
	}
}

// retireLocked takes c, the current connection, out of use: calls not yet
// written are refused (the former leader never saw them), and c closes
// once every written call is answered or abandoned by its caller, at the
// latest at the last of their deadlines (peerRetireMax for a call without
// one). p.mu is held.
func (p *peerClient) retireLocked(c *peerConn, why string) {
	p.conn = nil
	c.mu.Lock()
	if c.dead || c.retired {
		c.mu.Unlock()
		return
	}
	c.retired = true
	var refused []*peerCall
	var last time.Time
	for id, pc := range c.pending {
		if pc.state.CompareAndSwap(callQueued, callAbandoned) {
			delete(c.pending, id)
			refused = append(refused, pc)
			continue
		}
		dl := pc.deadline
		if dl.IsZero() {
			dl = time.Now().Add(peerRetireMax)
		}
		if dl.After(last) {
			last = dl
		}
	}
	idle := len(c.pending) == 0
	if !idle {
		p.retired[c] = struct{}{}
		c.retireTimer = time.AfterFunc(time.Until(last), func() {
			c.kill(fmt.Errorf("retired (%s); no answer before the requests' deadlines", why))
		})
	}
	c.mu.Unlock()
	for _, pc := range refused {
		pc.reply <- peerReply{err: refusal("%s before the request was sent to the leader at %s", why, c.addr)}
	}
	if idle {
		go c.kill(fmt.Errorf("retired: %s", why))
	}
}

// close closes the connections and waits for their goroutines.
func (p *peerClient) close() {
	p.mu.Lock()
	p.closed = true
	conns := []*peerConn{}
	if p.conn != nil {
		conns = append(conns, p.conn)
	}
	for c := range p.retired {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	for _, c := range conns {
		c.kill(errors.New("the node is closing"))
	}
	p.wg.Wait()
}

// peerConn is one connection to a leader.
type peerConn struct {
	p    *peerClient
	addr string

	ready   chan struct{} // closed once dialed (or failed: dialErr)
	dialErr error
	nc      net.Conn

	sendq chan *peerCall

	mu       sync.Mutex
	nextID   uint64
	pending  map[uint64]*peerCall
	dead     bool
	goneAway bool // the leader said it reads no more: no new calls
	// retired: another member leads now; no new calls, and the connection
	// closes once the written ones are answered (retireLocked).
	retired     bool
	retireTimer *time.Timer
	done        chan struct{} // closed by kill
}

// run dials, then runs the writer here and the reader in a goroutine of
// its own; both end when the connection dies.
func (c *peerConn) run() {
	defer c.p.wg.Done()
	nc, err := c.dial()
	if err != nil {
		c.dialErr = refusal("cannot reach the leader at %s: %v", c.addr, err)
		close(c.ready)
		c.kill(err)
		return
	}
	c.mu.Lock()
	c.nc = nc
	dead := c.dead
	c.mu.Unlock()
	close(c.ready)
	if dead {
		nc.Close()
		return
	}
	c.p.wg.Add(1)
	go c.readLoop(bufio.NewReaderSize(nc, peerBufSize))
	c.writeLoop(bufio.NewWriterSize(nc, peerBufSize))
}

// dial connects and exchanges the preamble. A leader that closes the
// connection instead of answering (an older member) refused it.
func (c *peerConn) dial() (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), peerDialTimeout)
	defer cancel()
	nc, err := c.p.layer.dial(ctx, c.addr, peerDialTimeout)
	if err != nil {
		return nil, err
	}
	_ = nc.SetDeadline(time.Now().Add(peerDialTimeout))
	if _, err := nc.Write(peerPreamble[:]); err != nil {
		nc.Close()
		return nil, fmt.Errorf("sending the preamble: %w", err)
	}
	var ack [len(peerPreamble)]byte
	if _, err := io.ReadFull(nc, ack[:]); err != nil {
		nc.Close()
		return nil, fmt.Errorf("no channel preamble from the leader (an older version?): %w", err)
	}
	if ack != peerPreamble {
		nc.Close()
		return nil, fmt.Errorf("the leader answered preamble %x, want %x", ack, peerPreamble)
	}
	_ = nc.SetDeadline(time.Time{})
	return nc, nil
}

// register gives pc an ID and records it as pending, unless the
// connection is already dead.
func (c *peerConn) register(pc *peerCall) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead || c.goneAway || c.retired {
		return refusal("the connection to the leader at %s is closed", c.addr)
	}
	c.nextID++
	pc.id = c.nextID
	c.pending[pc.id] = pc
	return nil
}

func (c *peerConn) forget(pc *peerCall) {
	c.mu.Lock()
	delete(c.pending, pc.id)
	idle := c.retiredIdleLocked()
	c.mu.Unlock()
	if idle {
		c.kill(errors.New("retired, and every request sent on it answered"))
	}
}

// retiredIdleLocked reports whether c is retired and owes no answer: it
// can close. c.mu is held.
func (c *peerConn) retiredIdleLocked() bool {
	return c.retired && !c.dead && len(c.pending) == 0
}

func (c *peerConn) isDead() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dead
}

// closing reports whether the leader said it reads no more here, while
// the connection still carries the answers of what it read.
func (c *peerConn) closing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.goneAway && !c.dead
}

// goAway takes the leader's word that it read the first served request
// frames of this connection and will read no other: every call written
// after them, or not yet written, is refused (the leader never saw it);
// the others wait for their answers, which the leader sends before it
// closes.
func (c *peerConn) goAway(served uint64) {
	c.mu.Lock()
	c.goneAway = true
	var refused []*peerCall
	for id, pc := range c.pending {
		pc.state.CompareAndSwap(callQueued, callAbandoned)
		if seq := pc.seq.Load(); seq == 0 || seq > served {
			delete(c.pending, id)
			refused = append(refused, pc)
		}
	}
	idle := c.retiredIdleLocked()
	c.mu.Unlock()
	for _, pc := range refused {
		pc.reply <- peerReply{err: refusal("the leader at %s is closing and did not read the request", c.addr)}
	}
	if idle {
		c.kill(errors.New("retired, and the closing leader read none of its requests"))
	}
}

// kill closes the connection once and answers every pending call: one
// that was never written was refused; any other may have reached the
// leader, however the connection ended: a clean end (EOF) proves nothing
// when something between the members (a proxy, a load balancer) relayed
// the request and then closed our side, so retrying it could apply it
// twice (the fault suite caught exactly that).
func (c *peerConn) kill(cause error) {
	c.mu.Lock()
	if c.dead {
		c.mu.Unlock()
		return
	}
	c.dead = true
	pending := c.pending
	c.pending = nil
	nc := c.nc
	close(c.done)
	if c.retireTimer != nil {
		c.retireTimer.Stop()
	}
	retired := c.retired
	c.mu.Unlock()
	if retired {
		c.p.mu.Lock()
		delete(c.p.retired, c)
		c.p.mu.Unlock()
	}
	if nc != nil {
		nc.Close()
	}
	if len(pending) > 0 {
		c.p.log.Debug("channel to the leader closed", "leader", c.addr, "pending", len(pending), "cause", cause)
	}
	for _, pc := range pending {
		switch {
		case pc.state.CompareAndSwap(callQueued, callAbandoned):
			pc.reply <- peerReply{err: refusal("the connection to the leader at %s closed before the request was sent: %v", c.addr, cause)}
		default:
			pc.reply <- peerReply{err: unknownOutcome("the connection to the leader at %s closed after the request was sent: %v", c.addr, cause)}
		}
	}
}

// writeLoop sends queued calls, as many as are waiting in one flush.
func (c *peerConn) writeLoop(w *bufio.Writer) {
	buf := make([]byte, 0, peerBufSize)
	var seq uint64 // request frames written
	for {
		var first *peerCall
		select {
		case first = <-c.sendq:
		case <-c.done:
			return
		}
		// A leader that died closed its end before this request was
		// written, and the reader may not have seen it yet: without this
		// check the request would be written into a dead connection and
		// its outcome called unknown, though nothing could have read it.
		// (A proxy that relays a request and then closes is still caught
		// by the reader, after the write: unknown.)
		if peerClosed(c.nc) {
			c.kill(errors.New("the leader closed the connection"))
			return
		}
		buf = buf[:0]
		yielded := false
		for pc := first; pc != nil; {
			if pc.state.CompareAndSwap(callQueued, callWritten) {
				seq++
				pc.seq.Store(seq)
				buf = appendRequest(buf, pc.kind, pc.id, pc.timeout, pc.payload)
			}
			pc = nil
			if len(buf) < peerWriteBatch {
				select {
				case pc = <-c.sendq:
				default:
					if !yielded {
						// Callers woken together (a batch of client
						// requests) queue one by one: yield once so those
						// already runnable join this write.
						yielded = true
						runtime.Gosched()
						select {
						case pc = <-c.sendq:
						default:
						}
					}
				}
			}
		}
		if len(buf) == 0 {
			continue
		}
		_ = c.nc.SetWriteDeadline(time.Now().Add(peerWriteTimeout))
		_, err := w.Write(buf)
		if err == nil {
			err = w.Flush()
		}
		if err != nil {
			c.writeFailed(err)
			return
		}
		if cap(buf) > 4*peerWriteBatch {
			buf = make([]byte, 0, peerBufSize) // do not keep a huge value's buffer
		}
	}
}

// writeFailed ends the connection after a failed write. A leader that went
// away usually closed the connection first: the reader, which sees how it
// ended, decides, unless it has not within a second (a write timeout: the
// leader stopped reading).
func (c *peerConn) writeFailed(err error) {
	err = fmt.Errorf("writing to the leader: %w", err)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		c.kill(err)
		return
	}
	t := time.AfterFunc(time.Second, func() { c.kill(err) })
	go func() {
		<-c.done
		t.Stop()
	}()
}

// readLoop delivers answers until the connection fails.
func (c *peerConn) readLoop(r *bufio.Reader) {
	defer c.p.wg.Done()
	for {
		b, err := readFrame(r, c.p.maxFrame)
		if err != nil {
			// io.EOF only at a frame boundary (readFrame): a clean end.
			c.kill(fmt.Errorf("reading from the leader: %w", err))
			return
		}
		status, id, payload, err := parseResponse(b)
		if err != nil {
			c.kill(fmt.Errorf("bad answer from the leader: %w", err))
			return
		}
		if status == statusGoAway {
			served, k := binary.Uvarint(payload)
			if k <= 0 || k != len(payload) {
				c.kill(errors.New("bad go-away from the leader"))
				return
			}
			c.goAway(served)
			continue
		}
		c.mu.Lock()
		pc := c.pending[id]
		delete(c.pending, id)
		idle := c.retiredIdleLocked()
		c.mu.Unlock()
		if pc != nil { // nil: its caller gave up
			if status == statusOK {
				pc.reply <- peerReply{payload: payload}
			} else {
				pc.reply <- peerReply{err: decodeError(payload)}
			}
		}
		if idle {
			c.kill(errors.New("retired, and every request sent on it answered"))
			return
		}
	}
}
