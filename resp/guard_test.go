package resp

import (
	"bytes"
	"github.com/rosterhq/roster/internal/testutil"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// exchange writes raw bytes and reads everything until the server closes
// the connection (or 10 s pass).
func exchange(t *testing.T, c net.Conn, raw string) string {
	t.Helper()
	if _, err := c.Write([]byte(raw)); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading until the server closes: %v (got %q)", err, got)
	}
	return string(got)
}

// TestMalformedFrames: a bad frame is answered -ERR Protocol error and the
// connection closes; the commands before it on the connection (even in the
// same packet) are answered, and nothing of the bad one is written.
func TestMalformedFrames(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, func(c *Config) { c.MaxArrayLen = 8; c.MaxCommandBytes = 4096 })
	max := e.node.MaxValueBytes()
	good := "*3\r\n$3\r\nSET\r\n$4\r\ngood\r\n$1\r\n1\r\n*1\r\n$4\r\nPING\r\n"
	goodReplies := "+OK\r\n+PONG\r\n"
	for _, tc := range []struct{ name, bad, err string }{
		{"bad multibulk length", "*x\r\n", "invalid multibulk length"},
		{"zero elements", "*0\r\n", "invalid multibulk length"},
		{"negative elements", "*-1\r\n", "invalid multibulk length"},
		{"no CR", "*1\n$4\r\nPING\r\n", "invalid multibulk length"},
		{"bad bulk length", "*1\r\n$x\r\nPING\r\n", "invalid bulk length"},
		{"negative bulk length", "*1\r\n$-1\r\n", "invalid bulk length"},
		{"missing $", "*1\r\n+PING\r\n", "expected '$', got '+'"},
		{"bulk not terminated", "*1\r\n$4\r\nPINGXX", "invalid bulk length"},
		{"huge header", "*1\r\n$" + strings.Repeat("9", 40) + "\r\n", "invalid bulk length"},
		{"bulk over the limit", "*3\r\n$3\r\nSET\r\n$3\r\nbad\r\n$" + itoa(int64(max+1)) + "\r\n", "invalid bulk length (" + itoa(int64(max+1)) + " bytes; the limit is " + itoa(int64(max)) + ")"},
		{"array over the limit", "*9\r\n$3\r\nDEL\r\n", "invalid multibulk length (9 elements; the limit is 8)"},
		{"command over the limit", "*3\r\n$3\r\nSET\r\n$3\r\nbad\r\n$5000\r\n" + strings.Repeat("x", 5000) + "\r\n", "command of more than 4096 bytes"},
		{"unbalanced quotes", "SET bad \"x\r\n", "unbalanced quotes in request"},
		{"text after a closing quote", "SET bad \"x\"y\r\n", "unbalanced quotes in request"},
		{"text after a closing single quote", "SET bad 'x'y\r\n", "unbalanced quotes in request"},
		{"inline too big", "SET bad " + strings.Repeat("x", 70<<10), "too big inline request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := exchange(t, e.dial(), good+tc.bad)
			if want := goodReplies + "-ERR Protocol error: " + tc.err + "\r\n"; got != want {
				t.Fatalf("answer %q, want %q", got, want)
			}
			if _, ok := e.value("/bad"); ok {
				t.Fatal("the bad command was written")
			}
		})
	}
	// Limits hold whatever the packets: the same bytes trickled one by one.
	c := e.dial()
	bad := "*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$" + itoa(int64(max+1)) + "\r\n"
	for i := range len(bad) {
		if _, err := c.Write([]byte{bad[i]}); err != nil {
			break
		}
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, _ := io.ReadAll(c)
	if !bytes.HasPrefix(got, []byte("+PONG\r\n-ERR Protocol error: invalid bulk length")) {
		t.Fatalf("trickled: %q", got)
	}
	// The port still serves everyone else.
	if v, err := e.client().Get(ctx(), "good").Result(); err != nil || v != "1" {
		t.Fatalf("GET good: %q %v", v, err)
	}
}

// TestScannerSplitsAnywhere: feeding valid input in any split leaves the
// scanner in step with the frames.
func TestScannerSplitsAnywhere(t *testing.T) {
	in := []byte("*2\r\n$3\r\nGET\r\n$0\r\n\r\nPING\r\n*1\r\n$4\r\nPING\r\nECHO 'a b' \"c\\\"d\"\n")
	for split := 1; split <= len(in); split++ {
		s := scanner{lim: limits{bulk: 100, array: 10, command: 1000}}
		for i := 0; i < len(in); i += split {
			end := min(i+split, len(in))
			if ok, err := s.scan(in[i:end]); err != nil || ok != end-i {
				t.Fatalf("split %d at %d: %d, %v", split, i, ok, err)
			}
		}
		if s.st != stStart {
			t.Fatalf("split %d: ends in state %d", split, s.st)
		}
	}
}

// TestScannerOneCommandAtATime: with one set (before AUTH), a scan stops
// at the end of every command, inline or not.
func TestScannerOneCommandAtATime(t *testing.T) {
	in := []byte("*2\r\n$3\r\nGET\r\n$0\r\n\r\nPING\r\n*1\r\n$4\r\nPING\r\nECHO 'a b' \"c\\\"d\"\n")
	ends := []int{19, 25, 39, len(in)}
	s := scanner{lim: limits{bulk: 100, array: 10, command: 1000}, one: true}
	at := 0
	for _, end := range ends {
		ok, err := s.scan(in[at:])
		if err != nil || at+ok != end || s.st != stStart {
			t.Fatalf("scan from %d: %d, %v, state %d; want to stop at %d", at, ok, err, s.st, end)
		}
		at += ok
	}
}

// TestMaxConns: one connection more than the limit is refused with Redis's
// error; the others are not disturbed.
func TestMaxConns(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, func(c *Config) { c.MaxConns = 2 })
	a, b := e.dial(), e.dial()
	for _, c := range []net.Conn{a, b} {
		c.Write([]byte("PING\r\n"))
		buf := make([]byte, 7)
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "+PONG\r\n" {
			t.Fatalf("PING: %q %v", buf, err)
		}
	}
	if got := exchange(t, e.dial(), ""); got != "-ERR max number of clients reached\r\n" {
		t.Fatalf("third connection: %q", got)
	}
	a.Close()
	// The freed slot is taken again (the server counts the close first).
	// The server notices the close asynchronously: try until it has.
	var got string
	if !testutil.Poll(5*time.Second, func() bool {
		c := e.dial()
		defer c.Close()
		c.Write([]byte("PING\r\n"))
		buf := make([]byte, 7)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, _ := io.ReadFull(c, buf)
		got = string(buf[:n])
		return got == "+PONG\r\n"
	}) {
		t.Fatalf("a freed slot was not reusable: %q", got)
	}
}

// TestLimitsBeforeAuth: with access control on, a connection that has not
// authenticated may send only small commands (Redis's limits: 10
// elements, 16 KiB a bulk), so that anyone able to connect cannot make
// the member hold several MiB per connection; after AUTH, the usual
// limits apply, even to the commands sent in the same packet as the AUTH.
func TestLimitsBeforeAuth(t *testing.T) {
	t.Parallel()
	auth := &testAuth{tokens: map[string]testIdentity{"root": {read: []string{"/"}, write: []string{"/"}, admin: true}}}
	e := newEnvWith(t, func(c *Config) { c.Auth = auth })
	bulk := func(s string) string { return "$" + itoa(int64(len(s))) + "\r\n" + s + "\r\n" }
	big := strings.Repeat("v", 100<<10)
	set := "*3\r\n" + bulk("SET") + bulk("big") + bulk(big)
	// Refused at its header: no data after it, which the server would not
	// read before closing (the close would then reset the connection).
	setHdr := "*3\r\n" + bulk("SET") + bulk("big") + "$" + itoa(int64(len(big))) + "\r\n"
	for _, tc := range []struct{ name, raw, want string }{
		{"bulk", setHdr, "-ERR Protocol error: invalid bulk length (102400 bytes; the limit is 16384)\r\n"},
		{"array", "*11\r\n", "-ERR Protocol error: invalid multibulk length (11 elements; the limit is 10)\r\n"},
		{"after a refused AUTH", "*2\r\n" + bulk("AUTH") + bulk("nope") + setHdr,
			"-WRONGPASS invalid username-password pair or user is disabled.\r\n-ERR Protocol error: invalid bulk length (102400 bytes; the limit is 16384)\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := exchange(t, e.dial(), tc.raw); got != tc.want {
				t.Fatalf("answer %q, want %q", got, tc.want)
			}
			if _, ok := e.value("/big"); ok {
				t.Fatal("the refused command was written")
			}
		})
	}
	// AUTH, the large SET and QUIT in one packet: each runs in turn.
	got := exchange(t, e.dial(), "*2\r\n"+bulk("AUTH")+bulk("root")+set+"*1\r\n"+bulk("QUIT"))
	if want := "+OK\r\n+OK\r\n+OK\r\n"; got != want {
		t.Fatalf("answer %q, want %q", got, want)
	}
	if v, ok := e.value("/big"); !ok || v != big {
		t.Fatalf("/big after AUTH: %d bytes, %v", len(v), ok)
	}
}

// TestInlineCommands: an inline command (a line typed into telnet) is
// split as Redis splits it (sdssplitargs). redcon's own parser split on
// spaces only, read no \xHH escape, read escapes inside single quotes,
// and refused a quote opening inside an argument, closing the connection.
func TestInlineCommands(t *testing.T) {
	t.Parallel()
	auth := &testAuth{tokens: map[string]testIdentity{"root": {read: []string{"/"}, write: []string{"/"}, admin: true}}}
	for _, withAuth := range []bool{false, true} {
		e := newEnvWith(t, func(c *Config) {
			if withAuth {
				c.Auth = auth
			}
		})
		lines := "SET t1\tv1\r\n" + // a tab separates
			"SET t2 \"\\x41\\x42\\n\\\"\"\r\n" + // hex and other escapes in double quotes
			"SET t3 'a\\nb'\r\n" + // none in single quotes…
			"SET t4 'it\\'s'\r\n" + // …but \'
			"SET t5 a\"b c\"\r\n" + // a quote may open inside an argument
			"   \r\n" + // a blank line is no command
			"  PING  \n" +
			"SET t6 \"\" \r\n" +
			"QUIT\r\n"
		want := "+OK\r\n+OK\r\n+OK\r\n+OK\r\n+OK\r\n+PONG\r\n+OK\r\n+OK\r\n"
		if withAuth {
			lines, want = "AUTH root\r\n"+lines, "+OK\r\n"+want
		}
		if got := exchange(t, e.dial(), lines); got != want {
			t.Fatalf("auth %v: answer %q, want %q", withAuth, got, want)
		}
		for k, v := range map[string]string{"/t1": "v1", "/t2": "AB\n\"", "/t3": `a\nb`, "/t4": "it's", "/t5": "ab c", "/t6": ""} {
			if got, ok := e.value(k); !ok || got != v {
				t.Errorf("auth %v: %s = %q %v, want %q", withAuth, k, got, ok, v)
			}
		}
		// Trickled a byte at a time, and a line longer than a read.
		c := e.dial()
		long := strings.Repeat("x", 10_000)
		raw := "SET t7 'a b'\r\nSET t8 " + long + "\r\nQUIT\r\n"
		if withAuth {
			raw = "AUTH root\r\n" + raw
		}
		for i := range len(raw) {
			if _, err := c.Write([]byte{raw[i]}); err != nil {
				t.Fatal(err)
			}
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		got, _ := io.ReadAll(c)
		if w := strings.Repeat("+OK\r\n", strings.Count(raw, "\n")); string(got) != w {
			t.Fatalf("auth %v, trickled: %q, want %q", withAuth, got, w)
		}
		if v, _ := e.value("/t7"); v != "a b" {
			t.Fatalf("trickled t7 = %q", v)
		}
		if v, _ := e.value("/t8"); v != long {
			t.Fatalf("t8: %d bytes", len(v))
		}
	}
}
