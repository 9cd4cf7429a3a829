package systemtest

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rosterhq/roster/internal/cluster"
	"github.com/rosterhq/roster/internal/testcerts"
)

// TestPeerMutualTLS: with -peer-* the raft port speaks only mutual TLS. A
// three-member cluster forms, replicates, fails over and takes a new
// member; a dial of the raft port without a certificate the peer CA
// signed fails its handshake, garbage is dropped, and the member keeps
// working.
func TestPeerMutualTLS(t *testing.T) {
	certs := testcerts.New(t)
	hc := tlsClient(t, certs, &certs.Client)
	c := cluster.StartWith(t, 3, cluster.Options{Client: hc}, tlsArgs(certs)...)
	leader := c.Leader(30 * time.Second)

	// Replicates: a write through each member is on every replica.
	for i, m := range c.Members {
		key := fmt.Sprintf("/v1/kv/peer/k%d", i)
		if code, b := send(t, hc, "PUT", m.URL(key), []byte(m.ID)); code != 200 {
			t.Fatalf("put via %s: %d %s", m.ID, code, b)
		}
	}
	c.WaitCaughtUp(30 * time.Second)
	for _, m := range c.Members {
		if code, b := send(t, hc, "GET", m.URL("/v1/kv/peer/?prefix=true&stale=true&count_only=true"), nil); code != 200 || !strings.Contains(string(b), `"count":3`) {
			t.Fatalf("replica of %s: %d %s", m.ID, code, b)
		}
	}

	// The raft port refuses whoever cannot show a certificate of the CA.
	refused := func(what string, dial func() error) {
		t.Helper()
		if err := dial(); err == nil {
			t.Errorf("raft port of %s: %s was accepted", leader.ID, what)
		}
	}
	tlsDial := func(cfg *tls.Config) func() error {
		return func() error {
			conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", leader.Raft, cfg)
			if err != nil {
				return err
			}
			defer conn.Close()
			// TLS 1.3: a refused client certificate shows on the first read.
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			conn.Write([]byte{0})
			_, err = conn.Read(make([]byte, 1))
			return err
		}
	}
	// A member's own certificate gets through the handshake: the port
	// speaks TLS with a certificate the CA signed (this fails on plain TCP).
	good, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", leader.Raft, certs.ClientTLS(t, &certs.Peer))
	if err != nil {
		t.Fatalf("TLS handshake with the raft port using a peer certificate: %v", err)
	}
	good.Close()
	refused("a TLS client without a certificate", tlsDial(&tls.Config{RootCAs: certs.CA.Pool()}))
	refused("a certificate of a rogue CA", tlsDial(certs.ClientTLS(t, &certs.RoguePeer)))
	// Garbage on the raft port never crashes a member.
	if conn, err := net.DialTimeout("tcp", leader.Raft, 5*time.Second); err == nil {
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		conn.Write([]byte("\x01\x02garbage that is not a TLS client hello\r\n\r\n"))
		io.Copy(io.Discard, conn) // until the member hangs up
		conn.Close()
	}
	if !leader.Running() {
		t.Fatal("the member died of a bad raft-port dial")
	}
	if code, b := send(t, hc, "PUT", leader.URL("/v1/kv/peer/after"), []byte("x")); code != 200 {
		t.Fatalf("the member stopped working after the refused dials: %d %s", code, b)
	}

	// Fails over: kill the leader; the others elect one over mutual TLS.
	leader.Kill()
	next := c.WaitNewLeader(30*time.Second, leader)
	if code, b := send(t, hc, "PUT", next.URL("/v1/kv/peer/failover"), []byte("x")); code != 200 {
		t.Fatalf("put after failover: %d %s", code, b)
	}
	// Takes a new member: it joins with its peer certificate and catches up.
	if code, b := send(t, hc, "DELETE", next.URL("/v1/cluster/members/"+leader.ID), nil); code != 200 {
		t.Fatalf("remove the dead member: %d %s", code, b)
	}
	n4 := c.Add()
	n4.Start("-join", next.HTTP)
	c.WaitReady(60*time.Second, n4)
	c.WaitCaughtUp(30*time.Second, n4)
	if code, b := send(t, hc, "GET", n4.URL("/v1/kv/peer/failover?stale=true"), nil); code != 200 {
		t.Fatalf("the new member's replica: %d %s", code, b)
	}
}
