//go:build unix

package registry

import (
	"bufio"
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/rosterhq/roster/internal/logging/logtest"
	"github.com/rosterhq/roster/internal/testutil"
	"golang.org/x/sys/unix"
)

// pending peeks whether bytes wait unread on c.
func pending(t *testing.T, c net.Conn) bool {
	t.Helper()
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	_ = rc.Control(func(fd uintptr) {
		n, _, _ = unix.Recvfrom(int(fd), make([]byte, 1), unix.MSG_PEEK|unix.MSG_DONTWAIT)
	})
	return n > 0
}

// peerClosed sees the other end's close before any reader does, and not
// while an answer still waits before it.
func TestPeerClosed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server := <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	if peerClosed(client) {
		t.Fatal("an open connection reported closed")
	}
	if _, err := server.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	server.Close()
	testutil.Eventually(t, 5*time.Second, "the byte arrives", func() bool { return pending(t, client) })
	if peerClosed(client) {
		t.Fatal("reported closed with an answer still to read")
	}
	if _, err := client.Read(make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, "the end seen without reading it", func() bool { return peerClosed(client) })
	// Under TLS the check looks at the TCP connection beneath.
	if !peerClosed(tls.Client(client, &tls.Config{})) {
		t.Fatal("the end not seen through a TLS connection")
	}
}

// The writer checks for the leader's end before writing: a request queued
// on a connection the leader already closed is refused, even while no
// reader has seen the end (here there is no reader at all).
func TestWriterRefusesOnClosedConnection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, "the leader's end", func() bool { return peerClosed(nc) })

	p := newPeerClient(&streamLayer{log: logtest.ForTest(t)}, logtest.ForTest(t), 1<<20)
	c := &peerConn{p: p, addr: ln.Addr().String(), nc: nc, ready: make(chan struct{}), done: make(chan struct{}),
		sendq: make(chan *peerCall, 1), pending: map[uint64]*peerCall{}}
	close(c.ready)
	pc := &peerCall{kind: kindPropose, payload: []byte("x"), reply: make(chan peerReply, 1)}
	if err := c.register(pc); err != nil {
		t.Fatal(err)
	}
	c.sendq <- pc
	go c.writeLoop(bufio.NewWriter(nc))
	select {
	case r := <-pc.reply:
		if !isRefusal(r.err) {
			t.Fatalf("a request queued on a connection the leader closed: %v, want a refusal", r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no answer: the request was written into the closed connection")
	}
}
