package resp

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rosterhq/roster/internal/testutil"
)

// startRedis starts a real redis-server (Debian's, 7.0) on a free local
// port for the test, without persistence and with one database (Roster
// has one: SELECT 1 is out of range on both), killed at cleanup. It
// skips the test when redis-server is not installed.
func startRedis(tb testing.TB) string {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		tb.Skip("redis-server is not installed (Debian's redis-server; .ci/run installs it with apt-get)")
	}
	dir := tb.TempDir()
	var lastErr error
	// The port is free when chosen and may be taken before redis-server
	// binds it: then try another.
	for range 3 {
		addr, err := tryStartRedis(tb, bin, dir)
		if err == nil {
			return addr
		}
		lastErr = err
	}
	tb.Fatalf("redis-server did not start: %v", lastErr)
	return ""
}

func tryStartRedis(tb testing.TB, bin, dir string) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	ln.Close()
	logFile := filepath.Join(dir, "redis-"+port+".log")
	cmd := exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--databases", "1", "--dir", dir, "--logfile", logFile, "--daemonize", "no")
	killWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return "", err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		_ = cmd.Process.Kill()
		<-exited
	}
	log := func() string { b, _ := os.ReadFile(logFile); return string(b) }
	var died error
	up := testutil.Poll(10*time.Second, func() bool {
		select {
		case err := <-exited:
			exited <- err
			died = fmt.Errorf("redis-server exited: %v\n%s", err, log())
			return true
		default:
		}
		c, err := dialRESP(addr)
		if err != nil {
			return false
		}
		defer c.close()
		v, err := c.do("PING")
		return err == nil && v.String() == "+PONG"
	})
	switch {
	case died != nil:
		return "", died
	case !up:
		stop()
		return "", fmt.Errorf("no PONG from redis-server on %s within 10 s\n%s", addr, log())
	}
	tb.Cleanup(stop)
	return addr, nil
}

// rval is one RESP2 reply, parsed.
type rval struct {
	kind byte   // '+', '-', ':', '$' or '*'
	s    string // the status, error, integer or bulk text
	null bool   // a null bulk or array
	arr  []rval
}

// String is a compact, unambiguous spelling for messages and comparisons.
func (v rval) String() string {
	switch {
	case v.null:
		return string(v.kind) + "nil"
	case v.kind == '$':
		return "$" + strconv.Quote(v.s)
	case v.kind == '*':
		parts := make([]string, len(v.arr))
		for i, e := range v.arr {
			parts[i] = e.String()
		}
		return "*[" + strings.Join(parts, " ") + "]"
	}
	return string(v.kind) + v.s
}

func (v rval) isErr() bool { return v.kind == '-' }

// int is an integer reply's value.
func (v rval) int() (int64, bool) {
	if v.kind != ':' {
		return 0, false
	}
	n, err := strconv.ParseInt(v.s, 10, 64)
	return n, err == nil
}

// rconn is one RESP2 connection, one command at a time.
type rconn struct {
	c net.Conn
	r *bufio.Reader
}

func dialRESP(addr string) (*rconn, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return &rconn{c: c, r: bufio.NewReader(c)}, nil
}

func (c *rconn) close() { c.c.Close() }

// do sends one command and reads its reply.
func (c *rconn) do(args ...string) (rval, error) {
	vs, err := c.pipeline([][]string{args})
	if err != nil {
		return rval{}, err
	}
	return vs[0], nil
}

// inline sends line as an inline command (CR LF appended) and reads its
// reply.
func (c *rconn) inline(line string) (rval, error) {
	_ = c.c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.c.Write([]byte(line + "\r\n")); err != nil {
		return rval{}, err
	}
	return readRval(c.r, 0)
}

// pipeline sends the commands in one write, then reads their replies.
func (c *rconn) pipeline(cmds [][]string) ([]rval, error) {
	var req bytes.Buffer
	for _, args := range cmds {
		fmt.Fprintf(&req, "*%d\r\n", len(args))
		for _, a := range args {
			fmt.Fprintf(&req, "$%d\r\n%s\r\n", len(a), a)
		}
	}
	_ = c.c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.c.Write(req.Bytes()); err != nil {
		return nil, err
	}
	out := make([]rval, len(cmds))
	for i := range out {
		var err error
		if out[i], err = readRval(c.r, 0); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func readRval(r *bufio.Reader, depth int) (rval, error) {
	if depth > 8 {
		return rval{}, fmt.Errorf("reply nested %d deep", depth)
	}
	line, err := r.ReadString('\n')
	if err != nil {
		return rval{}, fmt.Errorf("reading a reply: %w (got %q)", err, line)
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return rval{}, fmt.Errorf("malformed reply line %q", line)
	}
	v := rval{kind: line[0], s: line[1 : len(line)-2]}
	switch v.kind {
	case '+', '-', ':':
		return v, nil
	case '$', '*':
	default:
		return rval{}, fmt.Errorf("unknown reply type in %q", line)
	}
	n, err := strconv.Atoi(v.s)
	if err != nil || n < -1 {
		return rval{}, fmt.Errorf("bad length in %q", line)
	}
	v.s = ""
	if n == -1 {
		v.null = true
		return v, nil
	}
	if v.kind == '$' {
		b := make([]byte, n+2)
		if _, err := io.ReadFull(r, b); err != nil {
			return rval{}, err
		}
		v.s = string(b[:n])
		return v, nil
	}
	v.arr = make([]rval, n)
	for i := range v.arr {
		if v.arr[i], err = readRval(r, depth+1); err != nil {
			return rval{}, err
		}
	}
	return v, nil
}

var (
	// Redis 7 names the arguments of an unknown command; Roster's text
	// is API.md's, "unknown command '<name>'".
	unknownCommandArgs = regexp.MustCompile(`^(ERR unknown command '.*'), with args beginning with: .*$`)
	// Redis 7 names the command of an invalid expire time; Roster's text
	// is API.md's, "invalid expire time".
	expireTimeCommand = regexp.MustCompile(`^ERR invalid expire time in '[a-z]+' command$`)
)

// redisErrorText is Redis's error text with what API.md words otherwise
// taken out (docs/redis.md, Errors, lists both).
func redisErrorText(s string) string {
	if m := unknownCommandArgs.FindStringSubmatch(s); m != nil {
		return m[1]
	}
	if expireTimeCommand.MatchString(s) {
		return "ERR invalid expire time"
	}
	return s
}
