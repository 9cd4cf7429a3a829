package registry

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/rosterhq/roster/internal/logging/logtest"
)

// finishingHandler serves a removal that is still running when the
// member's channel server begins to close, and then succeeds: a leader
// that commits its own removal shuts down while it answers.
type finishingHandler struct {
	peerHandler // only removeMemberHere is called
	started     chan struct{}
	release     chan struct{}
}

func (h *finishingHandler) removeMemberHere(context.Context, string) error {
	close(h.started)
	<-h.release
	return nil
}

func (h *finishingHandler) leaderReadIndex(context.Context) (uint64, error) { return 7, nil }

// TestPeerServerCloseSendsFinishedAnswers: a request that the leader
// carries out while it closes its end of the channel gets its answer,
// rather than a closed connection that the follower must take for an
// unknown outcome (504 for a removal of the leader that happened).
func TestPeerServerCloseSendsFinishedAnswers(t *testing.T) {
	srv, p, h, addr := startClosingPair(t)
	ctx := ctxT(t, 20*time.Second)

	errc := make(chan error, 1)
	go func() {
		_, err := p.call(ctx, addr, kindRemoveMember, []byte("n1"))
		errc <- err
	}()
	select {
	case <-h.started:
	case err := <-errc:
		t.Fatalf("the call ended before the leader served it: %v", err)
	case <-ctx.Done():
		t.Fatal("the leader never served the request")
	}
	closed := make(chan struct{})
	go func() {
		srv.close()
		close(closed)
	}()
	<-srv.stop // close has begun
	close(h.release)
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("a removal carried out while the leader closed: %v, want its answer (success)", err)
		}
	case <-ctx.Done():
		t.Fatal("no answer")
	}
	select {
	case <-closed:
	case <-time.After(2 * peerCloseWait):
		t.Fatal("close did not return")
	}
}

// TestPeerServerCloseRefusesWhatItDidNotRead: a request the follower
// writes after the closing leader stopped reading was never seen there.
// The leader says how many requests it read (a go-away), so the follower
// refuses the others (it may send them to the next leader) instead of
// calling their outcome unknown when the connection closes.
func TestPeerServerCloseRefusesWhatItDidNotRead(t *testing.T) {
	srv, p, h, addr := startClosingPair(t)
	ctx := ctxT(t, 20*time.Second)
	errc := make(chan error, 1)
	go func() {
		_, err := p.call(ctx, addr, kindRemoveMember, []byte("n1"))
		errc <- err
	}()
	<-h.started
	closed := make(chan struct{})
	go func() {
		srv.close()
		close(closed)
	}()
	<-srv.stop
	srv.mu.Lock() // close sets the read deadlines under mu: it reads no more
	srv.mu.Unlock()
	unread := make(chan error, 1)
	go func() {
		_, err := p.call(ctx, addr, kindReadIndex, nil)
		unread <- err
	}()
	if err := <-unread; !isRefusal(err) {
		close(h.release)
		t.Fatalf("a request the closing leader never read: %v, want a refusal", err)
	}
	close(h.release)
	if err := <-errc; err != nil {
		t.Fatalf("the request the leader read and carried out: %v, want its answer", err)
	}
	<-closed
}

// startClosingPair serves the channel with a finishingHandler on
// 127.0.0.1 and returns the server, a client of it, the handler and the
// server's address.
func startClosingPair(t *testing.T) (*peerServer, *peerClient, *finishingHandler, string) {
	log := logtest.ForTest(t)
	h := &finishingHandler{started: make(chan struct{}), release: make(chan struct{})}
	srv := newPeerServer(h, log, 1<<20)
	srv.start()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			var magic [1]byte
			if _, err := io.ReadFull(c, magic[:]); err != nil || magic[0] != peerMagic {
				c.Close()
				continue
			}
			srv.serve(c)
		}
	}()
	p := newPeerClient(&streamLayer{log: log}, log, 1<<20)
	t.Cleanup(p.close)
	return srv, p, h, ln.Addr().String()
}
