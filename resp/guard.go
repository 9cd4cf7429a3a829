package resp

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// The framing guard sits between the network and redcon's parser. redcon
// accepts any bulk or array length and grows its buffer to fit, and a
// malformed frame makes it drop the commands it had parsed from the same
// read. The guard scans the byte stream itself, frame by frame, with
// redcon's rules (or stricter ones) plus the limits, and hands redcon only
// the bytes before the first violation: the complete commands before it
// are executed and answered, the bad one is never complete for redcon.
// The next read answers -ERR Protocol error and fails, which closes the
// connection.

// maxHeader bounds a "*N" or "$N" header line; maxInline is Redis's own
// limit on an inline (telnet-style) command line.
const (
	maxHeader = 32
	maxInline = 64 << 10
)

// limits of one connection's input.
type limits struct {
	bulk    int64 // bytes of one bulk string
	array   int64 // elements of one command
	command int64 // bytes of one command, headers included
}

// preAuth are the limits of a connection that has not authenticated while
// access control is on, Redis's own (it refuses an unauthenticated
// multibulk of more than 10 elements or a bulk of more than 16 KiB): AUTH
// needs far less, and anyone who can connect would otherwise make the
// member hold a whole command of several MiB per connection.
var preAuth = limits{bulk: 16 << 10, array: 10, command: 64 << 10}

// protocolError is a violation; its text follows "ERR " in the reply.
type protocolError struct{ msg string }

func (e *protocolError) Error() string { return "Protocol error: " + e.msg }

func protoErr(format string, a ...any) error { return &protocolError{fmt.Sprintf(format, a...)} }

// Scanner states.
const (
	stStart    = iota // at the start of a command
	stArrayHdr        // after '*', reading the element count
	stBulkMark        // expecting '$'
	stBulkHdr         // after '$', reading the length
	stBulkData        // inside a bulk string
	stBulkCR          // expecting the CR after a bulk string
	stBulkLF          // expecting its LF
	stInline          // inside an inline command line
)

// scanner follows the frames of one connection's input.
type scanner struct {
	lim  limits
	st   int
	hdr  []byte // header bytes after the marker, up to the LF
	left int64  // bulk bytes left (stBulkData) or elements left
	data int64  // bulk bytes left in the current bulk string
	cmd  int64  // bytes of the current command so far
	line []byte // the current inline line
	// inl are the inline lines of the last scan (inline.go), lineFrom
	// where the current one starts in its input.
	inl      []inlineSpan
	lineFrom int
	// one stops the scan at the end of the first command (see guardConn).
	one bool
}

// scan consumes p and returns how many of its bytes are fine. When it is
// less than len(p), err says what is wrong with p[ok], or, when err is nil,
// one is set and a command ended at p[ok-1].
func (s *scanner) scan(p []byte) (ok int, err error) {
	s.inl, s.lineFrom = s.inl[:0], 0
	defer func() {
		if s.st == stInline && ok > s.lineFrom { // a line not (yet) complete
			s.inl = append(s.inl, inlineSpan{from: s.lineFrom, to: ok})
		}
	}()
	for i := 0; i < len(p); {
		c := p[i]
		if s.st != stStart && s.st != stInline {
			s.cmd++
			if s.cmd > s.lim.command {
				return i, protoErr("command of more than %d bytes", s.lim.command)
			}
		}
		switch s.st {
		case stStart:
			if c == '*' {
				s.st, s.cmd, s.hdr = stArrayHdr, 1, s.hdr[:0]
			} else {
				s.st, s.line, s.lineFrom = stInline, s.line[:0], i
				continue // the byte belongs to the line
			}
		case stArrayHdr, stBulkHdr:
			if c != '\n' {
				if len(s.hdr) >= maxHeader {
					return i, s.lengthErr()
				}
				s.hdr = append(s.hdr, c)
				break
			}
			n, ok := headerValue(s.hdr)
			if s.st == stArrayHdr {
				switch {
				case !ok || n <= 0:
					return i, protoErr("invalid multibulk length")
				case n > s.lim.array:
					return i, protoErr("invalid multibulk length (%d elements; the limit is %d)", n, s.lim.array)
				}
				s.left, s.st = n, stBulkMark
				break
			}
			switch {
			case !ok:
				return i, protoErr("invalid bulk length")
			case n > s.lim.bulk:
				return i, protoErr("invalid bulk length (%d bytes; the limit is %d)", n, s.lim.bulk)
			}
			s.data, s.st = n, stBulkData
			if n == 0 {
				s.st = stBulkCR
			}
		case stBulkMark:
			if c != '$' {
				got := string(c)
				if c < 0x20 || c > 0x7e {
					got = fmt.Sprintf("\\x%02x", c)
				}
				return i, protoErr("expected '$', got '%s'", got)
			}
			s.st, s.hdr = stBulkHdr, s.hdr[:0]
		case stBulkData:
			// Skip the data in one step (the command budget included).
			n := min(s.data, int64(len(p)-i))
			if s.cmd-1+n > s.lim.command {
				return i + int(s.lim.command-s.cmd+1), protoErr("command of more than %d bytes", s.lim.command)
			}
			s.cmd += n - 1
			s.data -= n
			i += int(n)
			if s.data == 0 {
				s.st = stBulkCR
			}
			continue
		case stBulkCR:
			if c != '\r' {
				return i, protoErr("invalid bulk length")
			}
			s.st = stBulkLF
		case stBulkLF:
			if c != '\n' {
				return i, protoErr("invalid bulk length")
			}
			s.left--
			s.st = stBulkMark
			if s.left == 0 {
				s.st = stStart
			}
		case stInline:
			if c == '\n' {
				line := s.line
				if len(line) > 0 && line[len(line)-1] == '\r' {
					line = line[:len(line)-1]
				}
				args, err := splitInline(line)
				if err != nil {
					return i, err
				}
				s.inl = append(s.inl, inlineSpan{from: s.lineFrom, to: i + 1, cmd: appendCommand(nil, args)})
				s.st = stStart
				break
			}
			if len(s.line) >= maxInline {
				return i, protoErr("too big inline request")
			}
			s.line = append(s.line, c)
		}
		i++
		// Back at the start after a byte: that byte ended a command
		// (stStart itself always moves on to another state).
		if s.one && s.st == stStart && i < len(p) {
			return i, nil
		}
	}
	return len(p), nil
}

func (s *scanner) lengthErr() error {
	if s.st == stArrayHdr {
		return protoErr("invalid multibulk length")
	}
	return protoErr("invalid bulk length")
}

// headerValue parses a header line "<digits>\r": digits only, no sign.
func headerValue(h []byte) (int64, bool) {
	if len(h) < 2 || h[len(h)-1] != '\r' {
		return 0, false
	}
	digits := h[:len(h)-1]
	for _, d := range digits {
		if d < '0' || d > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(string(digits), 10, 64)
	return n, err == nil
}

// guardConn passes a connection's input through the scanner.
//
// Before AUTH (access control on), the input goes through one command at
// a time, under the preAuth limits: the scanner runs ahead of redcon, and
// the commands after an AUTH in the same read must be scanned under the
// limits of an authenticated connection, once AUTH has run. redcon runs
// the commands of one read before it reads again, so the bytes after the
// first command are held back (held) for the next Read.
type guardConn struct {
	net.Conn
	sc  scanner
	lim limits // the limits once authenticated

	// enforced reports whether access control is in force now: asked at
	// every Read, not once at accept, since a member started without
	// -auth turns it on when the cluster does (Config.AuthFromState), and
	// a connection accepted before must then be held to the limits before
	// AUTH like one accepted after.
	enforced func() bool
	// authed is set by a good AUTH (Authenticated).
	authed  atomic.Bool
	held    []byte // input read but not yet handed over
	heldErr error  // the read error that came with held
	out     []byte // output (inline lines made RESP) not yet handed over

	wmu      sync.Mutex // one writer at a time: replies, or the rejection
	rejected error      // set once a violation was found
}

// Authenticated lifts the limits before AUTH.
func (g *guardConn) Authenticated() { g.authed.Store(true) }

// Unauthenticated puts them back: the connection's token was deleted.
func (g *guardConn) Unauthenticated() { g.authed.Store(false) }

// errRejected ends the connection after a protocol error was answered.
var errRejected = errors.New("resp: connection closed after a protocol error")

func (g *guardConn) Read(p []byte) (int, error) {
	for {
		n, err := g.read(p)
		if n > 0 || err != nil || len(p) == 0 {
			return n, err
		}
		// Only part of an inline line came: nothing for redcon yet.
	}
}

func (g *guardConn) read(p []byte) (int, error) {
	if len(g.out) > 0 {
		n := copy(p, g.out)
		if g.out = g.out[n:]; len(g.out) == 0 {
			g.out = nil
		}
		return n, nil
	}
	if g.rejected != nil {
		g.reject()
		return 0, errRejected
	}
	var n int
	var err error
	switch {
	case len(g.held) > 0:
		n = copy(p, g.held)
		if g.held = g.held[n:]; len(g.held) == 0 {
			g.held = nil
		}
	case g.heldErr != nil: // after the held bytes: redcon drops the bytes of a read that fails
		err, g.heldErr = g.heldErr, nil
		return 0, err
	default:
		n, err = g.Conn.Read(p)
	}
	// Before AUTH each Read ends at a command's end, so AUTH cannot run in
	// the middle of a command. Access control may turn on in the middle of
	// one, though (a Read under the usual limits ended there): that one
	// command is finished under the limits it began with, the scan stops
	// at its end, and the next command starts under the new ones.
	g.sc.one = !g.authed.Load() && g.enforced()
	if g.sc.st == stStart {
		g.sc.lim = g.lim
		if g.sc.one {
			g.sc.lim = limits{bulk: min(g.lim.bulk, preAuth.bulk), array: min(g.lim.array, preAuth.array), command: min(g.lim.command, preAuth.command)}
		}
	}
	ok, verr := g.sc.scan(p[:n])
	if verr == nil && ok < n { // one command: keep the rest for the next Read
		g.held = append(append([]byte(nil), p[ok:n]...), g.held...)
		if err != nil {
			g.heldErr = err
		}
		err = nil
	}
	m := g.deliver(p, ok)
	if verr == nil {
		return m, err
	}
	g.rejected = verr
	if m > 0 {
		return m, nil // the commands before the violation go first
	}
	g.reject()
	return 0, errRejected
}

// deliver puts in p what redcon gets for the first ok bytes of p, just
// scanned (inline lines become RESP commands), and keeps what does not
// fit for the next Read; it returns the bytes put in p.
func (g *guardConn) deliver(p []byte, ok int) int {
	if len(g.sc.inl) == 0 {
		return ok
	}
	out := g.sc.output(p, ok)
	m := copy(p, out)
	g.out = append(g.out, out[m:]...)
	return m
}

// reject answers the protocol error. The caller (redcon's loop, or the
// pub/sub reader) then closes the connection. What the client had already
// sent is read first (briefly, and a bounded amount): closing a socket
// with unread input resets the connection, which may lose the answer.
func (g *guardConn) reject() {
	g.wmu.Lock()
	_ = g.Conn.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = g.Conn.Write([]byte("-ERR " + g.rejected.Error() + "\r\n"))
	g.wmu.Unlock()
	_ = g.Conn.SetReadDeadline(time.Now().Add(rejectDrain))
	_, _ = io.Copy(io.Discard, io.LimitReader(g.Conn, maxInline))
}

// rejectDrain bounds how long reject reads what the client already sent.
const rejectDrain = 100 * time.Millisecond

func (g *guardConn) Write(p []byte) (int, error) {
	g.wmu.Lock()
	defer g.wmu.Unlock()
	return g.Conn.Write(p)
}

// guardListener wraps every accepted connection (after TLS, so the guard
// sees the plain stream).
type guardListener struct {
	net.Listener
	tls  *tls.Config
	lim  limits
	auth func() bool // access control is in force now (guardConn.enforced)
}

func (l *guardListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if l.tls != nil {
		c = tls.Server(c, l.tls)
	}
	return &guardConn{Conn: c, lim: l.lim, enforced: l.auth}, nil
}
