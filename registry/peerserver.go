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
	"time"

	"github.com/rosterhq/roster/fsm"
)

// The leader's side of the forwarding channel. For each connection a reader
// decodes requests and runs each in a goroutine of its own, so that
// concurrent proposals reach raft together (BatchApplyCh groups them into
// one append); a writer sends the answers, as many as are ready in one
// flush. Any member serves the channel; one that does not lead refuses
// every request (nothing proposed), and the follower retries on the member
// it learns leads.
const (
	// peerInflightBytes bounds, per connection, the requests being served
	// (their frames plus peerRequestCost each). The reader stops reading
	// beyond it, and TCP pushes back on the follower.
	peerInflightBytes = 64 << 20
	peerRequestCost   = 4 << 10
	// peerHandshakeTimeout bounds reading the rest of the preamble.
	peerHandshakeTimeout = 10 * time.Second
	// peerDefaultTimeout bounds a request that carries no timeout.
	peerDefaultTimeout = 30 * time.Second
	// peerCloseWait bounds how long close waits for the answers of the
	// requests in flight to be written before it closes the connections.
	peerCloseWait = 2 * time.Second
)

// peerHandler serves the requests; *Node implements it.
type peerHandler interface {
	applyForwarded(ctx context.Context, c fsm.Command) (fsm.Result, error)
	leaderReadIndex(ctx context.Context) (uint64, error)
	addMemberHere(ctx context.Context, req JoinRequest) error
	removeMemberHere(ctx context.Context, id string) error
	updateMemberHere(ctx context.Context, req JoinRequest) error
	batchHere(ctx context.Context, cmds []fsm.Command) []BatchResult
	membershipHere(ctx context.Context, id string) byte
	checkCaller(ctx context.Context, applied uint64, tokenID string) (*Principal, error)
	checkOpen() error
	mayWrite(p *Principal, c fsm.Command) error
	batchAs(ctx context.Context, p *Principal, cmds []fsm.Command) []BatchResult
	keepAliveAs(ctx context.Context, applied uint64, entries []kaEntry) ([]BatchResult, error)
	clusterIDHere() []byte
}

type peerServer struct {
	h        peerHandler
	log      *slog.Logger
	maxFrame int

	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	started bool // the node is open: before, connections are closed
	closed  bool
	stop    chan struct{}
	wg      sync.WaitGroup
}

func newPeerServer(h peerHandler, log *slog.Logger, maxFrame int) *peerServer {
	return &peerServer{h: h, log: log, maxFrame: maxFrame, conns: map[net.Conn]struct{}{}, stop: make(chan struct{})}
}

// start lets serve accept connections, once the node can serve them. A
// member dialing earlier gets no preamble back: a refusal.
func (s *peerServer) start() {
	s.mu.Lock()
	s.started = true
	s.mu.Unlock()
}

// serve takes over a connection whose magic byte was read.
func (s *peerServer) serve(c net.Conn) {
	s.mu.Lock()
	if s.closed || !s.started {
		s.mu.Unlock()
		c.Close()
		return
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		defer func() {
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			c.Close()
		}()
		if err := s.handshake(c); err != nil {
			s.log.Debug("channel: bad preamble", "remote", c.RemoteAddr(), "error", err)
			return
		}
		s.run(c)
	}()
}

// close stops reading requests, ends those in flight (their context is
// cancelled), writes their answers and then closes every connection. An
// answer already made reaches the follower: a leader that stops right
// after carrying out a request (one that committed its own removal, say)
// must not turn its success into an unknown outcome. Connections whose
// answers are not written within peerCloseWait are closed anyway.
func (s *peerServer) close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.wg.Wait()
		return
	}
	s.closed = true
	close(s.stop)
	for c := range s.conns {
		_ = c.SetReadDeadline(time.Now()) // the reader stops; the writer goes on
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	t := time.NewTimer(peerCloseWait)
	defer t.Stop()
	select {
	case <-done:
		return
	case <-t.C:
	}
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	<-done
}

// closing reports whether close has begun.
func (s *peerServer) closing() bool {
	select {
	case <-s.stop:
		return true
	default:
		return false
	}
}

func (s *peerServer) handshake(c net.Conn) error {
	_ = c.SetDeadline(time.Now().Add(peerHandshakeTimeout))
	var rest [len(peerPreamble) - 1]byte
	if _, err := io.ReadFull(c, rest[:]); err != nil {
		return err
	}
	if string(rest[:]) != string(peerPreamble[1:]) {
		return fmt.Errorf("preamble %x", rest)
	}
	if _, err := c.Write(peerPreamble[:]); err != nil {
		return err
	}
	return c.SetDeadline(time.Time{})
}

// run serves one connection until it fails or the server closes. When
// the reader stops, the requests in flight are cancelled, and the writer
// sends their answers before the connection closes.
func (s *peerServer) run(c net.Conn) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-s.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	cw := &connWriter{c: c, w: bufio.NewWriterSize(c, peerBufSize)}
	out := make(chan []byte, 1024)
	dead := make(chan struct{}) // closed when the writer failed: answers have nowhere to go
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		if !s.writeLoop(cw, out) {
			close(dead)
			cancel()
			c.Close() // unblocks the reader
		}
	}()
	b := newBudget(peerInflightBytes)
	var reqWG sync.WaitGroup
	defer func() {
		cancel()
		b.close()
		reqWG.Wait()
		close(out)
		<-writerDone
	}()
	// Closing, the server tells the follower how many request frames it
	// read and serves: the others it will never read, and the follower
	// may send them elsewhere (a refusal), rather than call their outcome
	// unknown when the connection closes.
	var served uint64
	goAway := func() {
		select {
		case out <- appendResponse(nil, statusGoAway, 0, binary.AppendUvarint(nil, served)):
		case <-dead:
		}
	}
	if s.closing() {
		goAway() // closed during the handshake, which cleared the read deadline
		return
	}
	r := bufio.NewReaderSize(c, peerBufSize)
	for {
		frame, err := readFrame(r, s.maxFrame)
		if err != nil {
			if s.closing() {
				goAway()
				return
			}
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				s.log.Debug("channel: connection ended", "remote", c.RemoteAddr(), "error", err)
			}
			return
		}
		req, err := parseRequest(frame)
		if err != nil {
			s.log.Warn("channel: bad request; closing the connection", "remote", c.RemoteAddr(), "error", err)
			return
		}
		cost := int64(len(frame)) + peerRequestCost
		if !b.acquire(cost) {
			return
		}
		if s.closing() {
			b.release(cost)
			goAway()
			return
		}
		served++
		reqWG.Add(1)
		go func() {
			defer reqWG.Done()
			defer b.release(cost)
			resp := s.do(ctx, req)
			select {
			case out <- resp:
			case <-dead:
			}
		}()
	}
}

// connWriter is the buffered, deadline-bound writing side of a connection.
type connWriter struct {
	c net.Conn
	w *bufio.Writer
}

// send writes frames and flushes them.
func (cw *connWriter) send(frames ...[]byte) error {
	_ = cw.c.SetWriteDeadline(time.Now().Add(peerWriteTimeout))
	for _, f := range frames {
		if _, err := cw.w.Write(f); err != nil {
			return err
		}
	}
	return cw.w.Flush()
}

// do serves one request and returns its response frame. An answer the
// follower could not read (over its frame limit: a txn's previous values,
// say) becomes an error of unknown outcome for that request alone, rather
// than a frame that makes the follower drop the connection and fail every
// other request waiting on it.
func (s *peerServer) do(parent context.Context, req request) []byte {
	frame := s.answer(parent, req)
	if n := len(frame) - 4; n > s.maxFrame {
		err := fmt.Errorf("%w: the request was carried out, but its answer of %d bytes is over the forwarding channel's limit of %d; read the result back", ErrTimeout, n, s.maxFrame)
		return appendResponse(nil, statusErr, req.id, encodeError(nil, err))
	}
	return frame
}

// answer serves one request and returns its response frame.
func (s *peerServer) answer(parent context.Context, req request) []byte {
	timeout := req.timeout
	if timeout <= 0 {
		timeout = peerDefaultTimeout
	}
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	var payload []byte
	var err error
	var caller *Principal // the token a write is made for (caller.go)
	if req.kind == kindOpen {
		// A write made for no caller: refused once access control is on.
		if len(req.payload) == 0 || !openKind(req.payload[0]) {
			err = fmt.Errorf("%w: bad open request", fsm.ErrInvalidArgument)
		} else {
			err = s.h.checkOpen()
		}
		if err != nil {
			return appendResponse(nil, statusErr, req.id, encodeError(nil, err))
		}
		req.kind, req.payload = req.payload[0], req.payload[1:]
	}
	if req.kind == kindProposeAs || req.kind == kindBatchAs || req.kind == kindMemberAs {
		// A write made for a token: the token must still exist here.
		applied, id, rest, derr := decodeCaller(req.payload)
		if derr != nil {
			err = fmt.Errorf("%w: bad caller: %v", fsm.ErrInvalidArgument, derr)
		} else {
			caller, err = s.h.checkCaller(ctx, applied, id)
		}
		inner := kindPropose
		switch {
		case err != nil:
		case req.kind == kindBatchAs:
			inner = kindBatch
		case req.kind == kindMemberAs:
			if len(rest) == 0 || rest[0] != kindAddMember && rest[0] != kindRemoveMember && rest[0] != kindUpdateMember {
				err = fmt.Errorf("%w: bad member request", fsm.ErrInvalidArgument)
			} else if err = mayChangeMembers(caller); err == nil {
				inner, rest = rest[0], rest[1:]
			}
		}
		if err != nil {
			return appendResponse(nil, statusErr, req.id, encodeError(nil, err))
		}
		req.kind, req.payload = inner, rest
	}
	switch req.kind {
	case kindPropose:
		c, derr := fsm.Decode(req.payload)
		if derr != nil {
			err = fmt.Errorf("%w: %v", fsm.ErrInvalidArgument, derr)
			break
		}
		if caller != nil {
			if err = s.h.mayWrite(caller, c); err != nil {
				break
			}
		}
		res, aerr := s.h.applyForwarded(ctx, c)
		if aerr != nil && aerr != res.Err {
			err = aerr
			break
		}
		return appendResponse(nil, statusOK, req.id, fsm.EncodeResult(res))
	case kindReadIndex:
		var idx uint64
		idx, err = s.h.leaderReadIndex(ctx)
		if err == nil {
			payload = binary.AppendUvarint(nil, idx)
		}
	case kindAddMember:
		jr, derr := decodeJoin(req.payload)
		if derr != nil {
			err = fmt.Errorf("%w: bad member request: %v", fsm.ErrInvalidArgument, derr)
			break
		}
		err = s.h.addMemberHere(ctx, jr)
	case kindRemoveMember:
		err = s.h.removeMemberHere(ctx, string(req.payload))
	case kindUpdateMember:
		jr, derr := decodeJoin(req.payload)
		if derr != nil {
			err = fmt.Errorf("%w: bad member request: %v", fsm.ErrInvalidArgument, derr)
			break
		}
		err = s.h.updateMemberHere(ctx, jr)
	case kindBatch:
		cmds, derr := decodeBatch(req.payload)
		if derr != nil {
			err = fmt.Errorf("%w: bad batch: %v", fsm.ErrInvalidArgument, derr)
			break
		}
		payload = encodeBatchResults(s.h.batchAs(ctx, caller, cmds))
	case kindMembership:
		payload = []byte{s.h.membershipHere(ctx, string(req.payload))}
	case kindClusterID:
		payload = s.h.clusterIDHere()
	case kindKeepAliveAs:
		applied, entries, derr := decodeKeepAliveAs(req.payload)
		if derr != nil {
			err = fmt.Errorf("%w: bad keep-alive group: %v", fsm.ErrInvalidArgument, derr)
			break
		}
		var res []BatchResult
		if res, err = s.h.keepAliveAs(ctx, applied, entries); err == nil {
			payload = encodeBatchResults(res)
		}
	default:
		err = fmt.Errorf("%s %d (a newer member?)", unknownKind, req.kind)
	}
	if err != nil {
		return appendResponse(nil, statusErr, req.id, encodeError(nil, err))
	}
	return appendResponse(nil, statusOK, req.id, payload)
}

// writeLoop sends answers, as many as are ready in one flush, until out
// is closed (true) or a write fails (false).
func (s *peerServer) writeLoop(cw *connWriter, out <-chan []byte) bool {
	var frames [][]byte
	for {
		frame, ok := <-out
		if !ok {
			return true
		}
		frames = drainFrames(append(frames[:0], frame), out)
		if len(frames) == 1 {
			// The answers of one applied raft batch are woken together;
			// yield once so the others can queue behind the first.
			runtime.Gosched()
			frames = drainFrames(frames, out)
		}
		if err := cw.send(frames...); err != nil {
			return false
		}
		clear(frames)
	}
}

// drainFrames appends to frames the answers already waiting in out, up to
// about peerWriteBatch bytes, without waiting for more.
func drainFrames(frames [][]byte, out <-chan []byte) [][]byte {
	n := 0
	for _, f := range frames {
		n += len(f)
	}
	for n < peerWriteBatch {
		select {
		case f, ok := <-out:
			if !ok {
				return frames
			}
			frames = append(frames, f)
			n += len(f)
		default:
			return frames
		}
	}
	return frames
}

// budget is a byte semaphore: acquire waits while the bytes in use plus n
// would pass the limit (a single request over the limit still runs alone).
type budget struct {
	mu     sync.Mutex
	cond   sync.Cond
	used   int64
	limit  int64
	closed bool
}

func newBudget(limit int64) *budget {
	b := &budget{limit: limit}
	b.cond.L = &b.mu
	return b
}

func (b *budget) acquire(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for !b.closed && b.used > 0 && b.used+n > b.limit {
		b.cond.Wait()
	}
	if b.closed {
		return false
	}
	b.used += n
	return true
}

func (b *budget) release(n int64) {
	b.mu.Lock()
	b.used -= n
	b.mu.Unlock()
	b.cond.Broadcast()
}

func (b *budget) close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.cond.Broadcast()
}
