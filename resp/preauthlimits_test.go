package resp

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rosterhq/roster/fsm"
)

// TestLimitsBeforeAuthOnceOn: on a member started without access control
// (AuthFromState), a connection accepted while access control was off
// sends commands of any size up to the usual limits; once the cluster
// turns access control on, the same connection, not authenticated, gets
// the limits before AUTH (10 elements, 16 KiB a bulk) exactly like a
// connection accepted after, and the usual limits again after AUTH.
// Before the fix it kept the larger limits until it authenticated.
func TestLimitsBeforeAuthOnceOn(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv, err := New(Config{Auth: nodeAuth{e.node}, AuthFromState: true}, e.node, e.srv.log)
	if err != nil {
		t.Fatal(err)
	}
	addr := serveTest(t, srv)
	dial := func() net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	bulk := func(s string) string { return "$" + itoa(int64(len(s))) + "\r\n" + s + "\r\n" }
	big := strings.Repeat("v", 100<<10)
	set := func(key string) string { return "*3\r\n" + bulk("SET") + bulk(key) + bulk(big) }
	// Refused at its header, with no data after it (see TestLimitsBeforeAuth).
	setHdr := "*3\r\n" + bulk("SET") + bulk("big") + "$" + itoa(int64(len(big))) + "\r\n"
	const bulkErr = "-ERR Protocol error: invalid bulk length (102400 bytes; the limit is 16384)\r\n"
	const arrayErr = "-ERR Protocol error: invalid multibulk length (11 elements; the limit is 10)\r\n"

	// Accepted while access control is off: a large SET is fine.
	early := make([]net.Conn, 3)
	for i := range early {
		early[i] = dial()
		r := bufio.NewReader(early[i])
		early[i].SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := early[i].Write([]byte(set("early" + itoa(int64(i))))); err != nil {
			t.Fatal(err)
		}
		if line, err := r.ReadString('\n'); err != nil || line != "+OK\r\n" {
			t.Fatalf("a large SET before access control is on: %q %v", line, err)
		}
		early[i].SetDeadline(time.Time{})
	}

	_, admin, err := e.node.CreateToken(ctx(), "admin", []string{fsm.RootRole})
	if err != nil {
		t.Fatal(err)
	}
	// A one-member node has applied what it committed: in force now.
	for _, tc := range []struct {
		name string
		c    net.Conn
		raw  string
		want string
	}{
		{"early, bulk", early[0], setHdr, bulkErr},
		{"early, array", early[1], "*11\r\n", arrayErr},
		{"new, bulk", dial(), setHdr, bulkErr},
		{"new, array", dial(), "*11\r\n", arrayErr},
		// AUTH, the large SET and QUIT in one packet: each runs in turn.
		{"early, after AUTH", early[2], "*2\r\n" + bulk("AUTH") + bulk(admin) + set("big") + "*1\r\n" + bulk("QUIT"), "+OK\r\n+OK\r\n+OK\r\n"},
	} {
		if got := exchange(t, tc.c, tc.raw); got != tc.want {
			t.Fatalf("%s: answer %q, want %q", tc.name, got, tc.want)
		}
	}
	if v, ok := e.value("/big"); !ok || v != big {
		t.Fatalf("/big after AUTH: %d bytes, %v", len(v), ok)
	}
}

// TestLimitsBeforeAuthOnceTokenDeleted: a connection whose token is
// deleted is answered NOAUTH, as one that never authenticated, and from
// its next command on it gets the limits before AUTH too (10 elements,
// 16 KiB a bulk), until it authenticates again. Before the fix the limits
// of a logged-in connection stayed with it for good: whoever held the
// deleted token could still make the member read commands of several MiB.
func TestLimitsBeforeAuthOnceTokenDeleted(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv, err := New(Config{Auth: nodeAuth{e.node}}, e.node, e.srv.log)
	if err != nil {
		t.Fatal(err)
	}
	addr := serveTest(t, srv)
	if err := e.node.PutRole(ctx(), fsm.Role{Name: "svc", Rules: []fsm.Rule{{Prefix: "/", Read: true, Write: true}}}); err != nil {
		t.Fatal(err)
	}
	tok, secret, err := e.node.CreateToken(ctx(), "svc", []string{"svc"})
	if err != nil {
		t.Fatal(err)
	}
	tok2, other, err := e.node.CreateToken(ctx(), "other", []string{"svc"})
	if err != nil {
		t.Fatal(err)
	}
	bulk := func(s string) string { return "$" + itoa(int64(len(s))) + "\r\n" + s + "\r\n" }
	big := strings.Repeat("v", 100<<10)
	set := "*3\r\n" + bulk("SET") + bulk("big") + bulk(big)
	setHdr := "*3\r\n" + bulk("SET") + bulk("big") + "$" + itoa(int64(len(big))) + "\r\n"
	ping := "*1\r\n" + bulk("PING")
	const bulkErr = "-ERR Protocol error: invalid bulk length (102400 bytes; the limit is 16384)\r\n"

	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	send := func(raw, want string) {
		t.Helper()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write([]byte(raw)); err != nil {
			t.Fatal(err)
		}
		if line, err := r.ReadString('\n'); err != nil || line != want {
			t.Fatalf("answer %q %v, want %q", line, err, want)
		}
	}
	send("*2\r\n"+bulk("AUTH")+bulk(secret), "+OK\r\n")
	send(set, "+OK\r\n")
	if err := e.node.DeleteToken(ctx(), tok.ID); err != nil {
		t.Fatal(err)
	}
	// The first command after the deletion was read under the limits it
	// began with; it finds the token gone.
	send(ping, "-NOAUTH Authentication required.\r\n")
	// AUTH with another token lifts the limits before AUTH again.
	send("*2\r\n"+bulk("AUTH")+bulk(other), "+OK\r\n")
	send(set, "+OK\r\n")
	if err := e.node.DeleteToken(ctx(), tok2.ID); err != nil {
		t.Fatal(err)
	}
	send(ping, "-NOAUTH Authentication required.\r\n")
	if got := exchange(t, c, setHdr); got != bulkErr {
		t.Fatalf("a large SET once the token was deleted: %q, want %q", got, bulkErr)
	}
}
