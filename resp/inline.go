package resp

import "strconv"

// Inline commands (a line typed into telnet: PING, SET k "a b") are split
// here, as Redis splits them (sdssplitargs), and handed to redcon as the
// RESP command they stand for: redcon's own inline parser splits on
// spaces only, knows no \xHH escapes, reads escapes inside single quotes
// and refuses a quote inside an argument, all of which Redis reads.

var errUnbalancedQuotes = protoErr("unbalanced quotes in request")

// isSpace is C's isspace in the C locale.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

func hexValue(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// splitInline splits an inline command line (without its CR LF) into
// arguments as Redis's sdssplitargs does: blanks separate arguments; in
// "double quotes" \n \r \t \b \a \xHH and \<any> are escapes; in 'single
// quotes' only \' is; a quote may open within an argument; a closing
// quote must be followed by a blank or the end of the line, and a quote
// left open is an error. The line ends at a NUL byte, as a C string does.
func splitInline(line []byte) ([][]byte, error) {
	var args [][]byte
	at := func(i int) byte { // the line as a C string
		if i < len(line) {
			return line[i]
		}
		return 0
	}
	p := 0
	for {
		for at(p) != 0 && isSpace(at(p)) {
			p++
		}
		if at(p) == 0 {
			return args, nil
		}
		cur := []byte{}
		inq, insq := false, false
		for done := false; !done; {
			c := at(p)
			switch {
			case inq:
				h1, ok1 := hexValue(at(p + 2))
				h2, ok2 := hexValue(at(p + 3))
				switch {
				case c == '\\' && at(p+1) == 'x' && ok1 && ok2:
					cur = append(cur, h1*16+h2)
					p += 3
				case c == '\\' && at(p+1) != 0:
					p++
					e := at(p)
					switch e {
					case 'n':
						e = '\n'
					case 'r':
						e = '\r'
					case 't':
						e = '\t'
					case 'b':
						e = '\b'
					case 'a':
						e = '\a'
					}
					cur = append(cur, e)
				case c == '"':
					if at(p+1) != 0 && !isSpace(at(p+1)) {
						return nil, errUnbalancedQuotes
					}
					done = true
				case c == 0:
					return nil, errUnbalancedQuotes
				default:
					cur = append(cur, c)
				}
			case insq:
				switch {
				case c == '\\' && at(p+1) == '\'':
					p++
					cur = append(cur, '\'')
				case c == '\'':
					if at(p+1) != 0 && !isSpace(at(p+1)) {
						return nil, errUnbalancedQuotes
					}
					done = true
				case c == 0:
					return nil, errUnbalancedQuotes
				default:
					cur = append(cur, c)
				}
			default:
				switch c {
				case ' ', '\n', '\r', '\t', 0:
					done = true
				case '"':
					inq = true
				case '\'':
					insq = true
				default:
					cur = append(cur, c)
				}
			}
			if at(p) != 0 {
				p++
			}
		}
		args = append(args, cur)
	}
}

// appendCommand appends args as a RESP command (nothing for no args: an
// empty line is no command).
func appendCommand(b []byte, args [][]byte) []byte {
	if len(args) == 0 {
		return b
	}
	b = append(b, '*')
	b = strconv.AppendInt(b, int64(len(args)), 10)
	b = append(b, '\r', '\n')
	for _, a := range args {
		b = append(b, '$')
		b = strconv.AppendInt(b, int64(len(a)), 10)
		b = append(b, '\r', '\n')
		b = append(b, a...)
		b = append(b, '\r', '\n')
	}
	return b
}

// inlineSpan is a part of one scan's input that holds (part of) an inline
// line: the scanner's output leaves it out and puts cmd, the line as a
// RESP command, in its place (nil while the line is not complete).
type inlineSpan struct {
	from, to int
	cmd      []byte
}

// output is what redcon gets for the first ok bytes of the input p of the
// last scan: p itself unless it held inline lines.
func (s *scanner) output(p []byte, ok int) []byte {
	if len(s.inl) == 0 {
		return p[:ok]
	}
	out := make([]byte, 0, ok+64)
	at := 0
	for _, sp := range s.inl {
		if sp.from >= ok {
			break
		}
		out = append(out, p[at:sp.from]...)
		out = append(out, sp.cmd...)
		at = min(sp.to, ok)
	}
	return append(out, p[at:ok]...)
}
