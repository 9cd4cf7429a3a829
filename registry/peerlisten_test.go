package registry

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"io"
	mrand "math/rand/v2"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rosterhq/roster/fsm"
	"github.com/rosterhq/roster/internal/logging/logtest"
	"github.com/rosterhq/roster/internal/testcerts"
	"github.com/rosterhq/roster/internal/testutil"
)

// TestRaftPortSurvivesGarbage throws what a confused or hostile client
// might send at a member's raft port — random bytes (some starting like a
// raft RPC or like the channel), half a preamble, a preamble and then a
// bad frame, an oversized frame, and dialers that connect and say nothing
// — and checks the cluster keeps replicating, forwarding and answering.
func TestRaftPortSurvivesGarbage(t *testing.T) {
	tc := startCluster(t, 3, clusterOpts{})
	leader := tc.leader()
	target := tc.followers(leader)[0] // its channel and raft both matter
	ctx := ctxT(t, 60*time.Second)
	addrs := []string{target.RaftAddr(), leader.RaftAddr()}

	send := func(addr string, b []byte, linger time.Duration) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Errorf("dial %s: %v", addr, err)
			return
		}
		defer c.Close()
		_, _ = c.Write(b)
		if linger > 0 {
			_ = c.SetReadDeadline(time.Now().Add(linger))
			_, _ = io.Copy(io.Discard, c)
		}
	}
	r := mrand.New(mrand.NewPCG(1, 2))
	var garbage [][]byte
	for i := range 60 {
		b := make([]byte, 1+r.IntN(300))
		for j := range b {
			b[j] = byte(r.UintN(256))
		}
		switch i % 4 {
		case 0:
			b[0] = byte(i % 5) // looks like a raft RPC
		case 1:
			b[0] = peerMagic // looks like the channel
		}
		garbage = append(garbage, b)
	}
	huge := binary.BigEndian.AppendUint32(append([]byte(nil), peerPreamble[:]...), 1<<31)
	badReq := appendRequest(append([]byte(nil), peerPreamble[:]...), 0, 0, 0, nil)[:len(peerPreamble)+5]
	badReq[len(peerPreamble)+3] = 0 // a frame of one byte: a kind without an id
	garbage = append(garbage, peerPreamble[:4], huge, badReq, appendRequest(append([]byte(nil), peerPreamble[:]...), 99, 1, 0, []byte("x")))

	var wg sync.WaitGroup
	// Silent dialers hold their connections open for the whole test.
	silent := make([]net.Conn, 0, 20)
	for i := range 20 {
		c, err := net.Dial("tcp", addrs[i%2])
		if err != nil {
			t.Fatal(err)
		}
		silent = append(silent, c)
	}
	defer func() {
		for _, c := range silent {
			c.Close()
		}
	}()
	for i, b := range garbage {
		wg.Add(1)
		go func() {
			defer wg.Done()
			send(addrs[i%2], b, 200*time.Millisecond)
		}()
	}
	// Meanwhile the cluster works, through the member under fire.
	for i := range 30 {
		if _, err := target.Put(ctx, fsm.Put{Key: "/g/" + strconv.Itoa(i), Value: []byte("v")}); err != nil {
			t.Fatalf("put %d through %s during the garbage: %v", i, target.ID(), err)
		}
	}
	wg.Wait()
	st, err := target.Read(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if st.KeyCount() < 30 {
		t.Fatalf("%d keys after 30 puts", st.KeyCount())
	}
	for _, n := range tc.nodes {
		if err := n.Ready(); err != nil {
			t.Fatalf("%s after the garbage: %v", n.ID(), err)
		}
	}
}

// TestPeerChannelErrors checks what a follower concludes when the member it
// forwards to misbehaves or dies: a listener that never answers the
// preamble (an older member) refused the request; once the request was
// written, however the connection ends, the outcome is unknown.
func TestPeerChannelErrors(t *testing.T) {
	log := logtest.ForTest(t)
	serve := func(handle func(c net.Conn)) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		return testutil.Serve(t, ln, handle)
	}
	layer := &streamLayer{log: log}
	p := newPeerClient(layer, log, 1<<20)
	defer p.close()
	ctx := ctxT(t, 20*time.Second)

	old := serve(func(c net.Conn) { _, _ = io.ReadFull(c, make([]byte, 8)) })
	if _, err := p.call(ctx, old, kindReadIndex, nil); !isRefusal(err) || !errors.Is(err, ErrNoLeader) {
		t.Fatalf("a member that does not speak the channel: %v, want a refusal", err)
	}
	// A leader that reads the request and ends the connection, closed or
	// reset: the outcome is unknown.
	dropper := func(reset bool) string {
		return serve(func(c net.Conn) {
			b := make([]byte, 8)
			if _, err := io.ReadFull(c, b); err != nil || !bytes.Equal(b, peerPreamble[:]) {
				return
			}
			_, _ = c.Write(peerPreamble[:])
			_, _ = readFrame(bufio.NewReader(c), 1<<20)
			if reset {
				_ = c.(*net.TCPConn).SetLinger(0)
			}
		})
	}
	put := fsm.Encode(fsm.Put{Key: "/a"})
	// A clean end is no proof: a proxy between the
	// members may have relayed the request to the leader, then closed our
	// side. Retrying would apply the write twice (the fault suite caught
	// exactly that through its raft-port proxy).
	if _, err := p.call(ctx, dropper(false), kindPropose, put); !errors.Is(err, ErrTimeout) || isRefusal(err) {
		t.Fatalf("a leader that closed the connection: %v, want an unknown outcome", err)
	}
	if _, err := p.call(ctx, dropper(true), kindPropose, put); !errors.Is(err, ErrTimeout) || isRefusal(err) {
		t.Fatalf("a leader that reset the connection: %v, want an unknown outcome", err)
	}
	// A leader that answered a request and then went away, before the
	// next request was written: refused, whether the reader or the writer
	// notices the end first (the writer checks before writing).
	answered := make(chan struct{})
	var served atomic.Bool
	goneAfterOne := serve(func(c net.Conn) {
		if served.Swap(true) {
			return // gone: a later connection is closed at once
		}
		b := make([]byte, 8)
		if _, err := io.ReadFull(c, b); err != nil || !bytes.Equal(b, peerPreamble[:]) {
			return
		}
		_, _ = c.Write(peerPreamble[:])
		f, err := readFrame(bufio.NewReader(c), 1<<20)
		if err != nil {
			return
		}
		req, err := parseRequest(f)
		if err != nil {
			return
		}
		_, _ = c.Write(appendResponse(nil, statusOK, req.id, nil))
		<-answered
	})
	if _, err := p.call(ctx, goneAfterOne, kindReadIndex, nil); err != nil {
		t.Fatalf("the first request: %v", err)
	}
	close(answered) // the handler returns: testutil.Serve closes the connection
	testutil.Eventually(t, 5*time.Second, "the leader's end seen", func() bool {
		p.mu.Lock()
		c := p.conn
		p.mu.Unlock()
		return c.isDead() || peerClosed(c.nc)
	})
	if _, err := p.call(ctx, goneAfterOne, kindPropose, put); !isRefusal(err) {
		t.Fatalf("a leader gone before the request was written: %v, want a refusal", err)
	}
	closed := serve(func(net.Conn) {})
	if _, err := p.call(ctx, closed, kindReadIndex, nil); !isRefusal(err) {
		t.Fatalf("a connection closed at once: %v, want a refusal", err)
	}
}

// TestPeerTLS forms a cluster whose raft port requires mutual TLS, and
// checks forwarding works through it while a member without a
// certificate of the cluster's CA cannot join the conversation.
func TestPeerTLS(t *testing.T) {
	certs := testcerts.New(t)
	cfgFor := func(p testcerts.Pair) *tls.Config {
		t.Helper()
		cert, err := tls.LoadX509KeyPair(p.CertFile, p.KeyFile)
		if err != nil {
			t.Fatal(err)
		}
		ca, err := os.ReadFile(certs.CAFile())
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(ca)
		return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, ClientCAs: pool, MinVersion: tls.VersionTLS13}
	}
	tc := startCluster(t, 3, clusterOpts{peerTLS: func(int) *tls.Config { return cfgFor(certs.Peer) }})
	leader := tc.leader()
	ctx := ctxT(t, 30*time.Second)
	for _, f := range tc.followers(leader) {
		if _, err := f.Put(ctx, fsm.Put{Key: "/tls/" + f.ID(), Value: []byte("v")}); err != nil {
			t.Fatalf("put through %s over mutual TLS: %v", f.ID(), err)
		}
		st, err := f.Read(ctx, false)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := st.Get("/tls/" + f.ID()); !ok {
			t.Fatalf("read through %s misses its write", f.ID())
		}
	}

	// Plain TCP speaking raft or the channel gets nothing back.
	for _, first := range []byte{0, peerMagic} {
		c, err := net.Dial("tcp", leader.RaftAddr())
		if err != nil {
			t.Fatal(err)
		}
		_, _ = c.Write(append([]byte{first}, peerPreamble[1:]...))
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if n, _ := io.ReadFull(c, make([]byte, 8)); n > 0 && first == peerMagic {
			t.Fatalf("a plain TCP dialer got %d bytes back from the TLS port", n)
		}
		c.Close()
	}
	// A certificate from another CA is refused.
	layer := &streamLayer{tls: cfgFor(certs.RoguePeer), log: logtest.ForTest(t)}
	p := newPeerClient(layer, logtest.ForTest(t), 1<<20)
	defer p.close()
	if _, err := p.call(ctx, leader.RaftAddr(), kindReadIndex, nil); err == nil || !isRefusal(err) {
		t.Fatalf("a member with a stranger's certificate: %v, want a refusal", err)
	}
}
