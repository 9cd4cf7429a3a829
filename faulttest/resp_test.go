package faulttest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// A minimal RESP2 client: the workload needs a handful of commands and,
// unlike a full client, full control of what counts as sent. go-redis
// retries, pools and reconnects on its own, which would hide exactly the
// boundary the history must record: whether a command may have reached
// the member.

// respValue is one RESP2 reply.
type respValue struct {
	kind  byte // '+', '-', ':', '$', '*'
	str   string
	num   int64
	null  bool // $-1 or *-1
	elems []respValue
}

func (v respValue) String() string {
	switch {
	case v.null:
		return "(nil)"
	case v.kind == '*':
		parts := make([]string, len(v.elems))
		for i, e := range v.elems {
			parts[i] = e.String()
		}
		return "[" + strings.Join(parts, " ") + "]"
	case v.kind == ':':
		return ":" + strconv.FormatInt(v.num, 10)
	}
	return string(v.kind) + v.str
}

// respConn is one connection to one member's Redis port.
type respConn struct {
	c net.Conn
	r *bufio.Reader
}

// respTimeout bounds each exchange, as opClient does HTTP's.
const respTimeout = 3 * time.Second

func dialRESP(addr string) (*respConn, error) {
	c, err := net.DialTimeout("tcp", addr, respTimeout)
	if err != nil {
		return nil, err
	}
	return &respConn{c: c, r: bufio.NewReader(c)}, nil
}

// errNotSent: the commands did not all leave this client, so none ran (a
// command runs only once its last byte arrived, and a failed Write did
// not hand all its bytes to the kernel).
var errNotSent = errors.New("resp: not sent")

// do sends cmds as one pipeline and reads one reply per command. An error
// wrapping errNotSent means nothing ran; any other error came after the
// commands were sent (their outcome is unknown), and the connection must
// be dropped.
func (rc *respConn) do(cmds ...[]string) ([]respValue, error) {
	var b []byte
	for _, cmd := range cmds {
		b = fmt.Appendf(b, "*%d\r\n", len(cmd))
		for _, a := range cmd {
			b = fmt.Appendf(b, "$%d\r\n%s\r\n", len(a), a)
		}
	}
	_ = rc.c.SetDeadline(time.Now().Add(respTimeout))
	if n, err := rc.c.Write(b); err != nil && n < len(b) {
		return nil, fmt.Errorf("%w: %v", errNotSent, err)
	}
	out := make([]respValue, len(cmds))
	for i := range out {
		v, err := readRESP(rc.r, 0)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

func (rc *respConn) Close() { rc.c.Close() }

func readRESP(r *bufio.Reader, depth int) (respValue, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return respValue{}, err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" || depth > 4 {
		return respValue{}, fmt.Errorf("resp: malformed reply line %q", line)
	}
	v := respValue{kind: line[0], str: line[1:]}
	switch v.kind {
	case '+', '-':
		return v, nil
	case ':':
		v.num, err = strconv.ParseInt(v.str, 10, 64)
		return v, err
	case '$', '*':
		n, err := strconv.Atoi(v.str)
		if err != nil || n < -1 {
			return v, fmt.Errorf("resp: bad length in %q", line)
		}
		if n == -1 {
			v.null = true
			return v, nil
		}
		if v.kind == '$' {
			buf := make([]byte, n+2)
			if _, err := io.ReadFull(r, buf); err != nil {
				return v, err
			}
			v.str = string(buf[:n])
			return v, nil
		}
		for range n {
			e, err := readRESP(r, depth+1)
			if err != nil {
				return v, err
			}
			v.elems = append(v.elems, e)
		}
		return v, nil
	}
	return v, fmt.Errorf("resp: unknown reply type in %q", line)
}
