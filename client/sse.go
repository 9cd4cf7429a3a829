package client

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// A minimal Server-Sent Events reader (the WHATWG "event stream
// interpretation"), enough for GET /v1/watch: id, event and data fields,
// comment lines (": heartbeat"), multi-line data, and all three line
// endings (\n, \r\n, \r). The retry field is read and ignored: reconnection
// timing is the client's own.

// sseEvent is one dispatched event.
type sseEvent struct {
	ID    string // the id field; "" when the event had none
	HasID bool
	Event string // the event field ("" means "message")
	Data  []byte // data lines joined by \n
}

// maxSSELine bounds one line. It must hold the largest event a member may
// send, or a watch meeting that event could never get past it: it would
// reconnect and read the same line again for ever. That event holds two
// kvs (kv and prev_kv) with the largest value rosterd can be configured
// to take (-max-value-size at most 16 MiB) and the longest key (1 KiB),
// JSON-escaped: a control character becomes six bytes (\u0001). So a
// value of 1 MiB, the default, already takes 12 MiB with prev_kv.
const maxSSELine = 2*6*(16<<20+1<<10) + 4<<10

var errSSELineTooLong = errors.New("roster: watch stream line too long")

type sseReader struct {
	r       *bufio.Reader
	maxLine int // maxSSELine; smaller in tests
	// pendingCR is set when the last line ended in \r: a following \n
	// belongs to that line ending, not a new empty line.
	pendingCR bool
	// progress is called for every line read, heartbeats included, so the
	// watch's idle timer can tell a live stream from a dead one.
	progress func()
	// bareID, when set, is called with the id of each block that has an
	// id but no data: a heartbeat carrying the revision the stream got to
	// (progress_notify).
	bareID func(id string)
}

func newSSEReader(r io.Reader, progress func()) *sseReader {
	return &sseReader{r: bufio.NewReaderSize(r, 64<<10), maxLine: maxSSELine, progress: progress}
}

// readLine returns the next line without its ending. A last line cut off
// by the end of the stream belongs to an incomplete event, which the spec
// discards: it is dropped with io.ErrUnexpectedEOF.
func (p *sseReader) readLine() ([]byte, error) {
	var line []byte
	for {
		b, err := p.r.ReadByte()
		if err != nil {
			if err == io.EOF && len(line) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if p.pendingCR {
			p.pendingCR = false
			if b == '\n' {
				continue
			}
		}
		switch b {
		case '\n':
			p.tick()
			return line, nil
		case '\r':
			p.pendingCR = true
			p.tick()
			return line, nil
		}
		if len(line) >= p.maxLine {
			return nil, errSSELineTooLong
		}
		line = append(line, b)
		// Fast path: take the rest of the line from the buffer at once.
		if buf, _ := p.r.Peek(p.r.Buffered()); len(buf) > 0 {
			i := bytes.IndexAny(buf, "\r\n")
			if i < 0 {
				i = len(buf)
			}
			line = append(line, buf[:i]...)
			p.r.Discard(i)
		}
	}
}

func (p *sseReader) tick() {
	if p.progress != nil {
		p.progress()
	}
}

// completeEventBuffered reports whether the buffer already holds a whole
// event with data, so that next can take it without blocking. It may say
// false when it is not sure (lone \r endings); that only costs batching.
func (p *sseReader) completeEventBuffered() bool {
	if p.pendingCR {
		return false
	}
	buf, _ := p.r.Peek(p.r.Buffered())
	hasData := false
	for len(buf) > 0 {
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			return false
		}
		line := bytes.TrimSuffix(buf[:i], []byte{'\r'})
		buf = buf[i+1:]
		if len(line) == 0 {
			if hasData {
				return true
			}
			continue
		}
		// The field as next reads it: the line up to its first colon. A
		// line that merely starts with "data" ("data0") is another field.
		field := line
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			field = line[:i]
		}
		if string(field) == "data" {
			hasData = true
		}
	}
	return false
}

// next returns the next event that carries data. Blocks of only comments
// or only an id (the spec dispatches nothing for them, though an id still
// updates the last event ID) are skipped; such an id is returned with the
// next event if that has none of its own.
func (p *sseReader) next() (sseEvent, error) {
	var ev sseEvent
	var data [][]byte
	blockID := false // this block has an id field
	for {
		line, err := p.readLine()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
				if len(data) == 0 {
					err = io.EOF
				}
			}
			return sseEvent{}, err
		}
		if len(line) == 0 {
			if len(data) == 0 {
				if blockID && p.bareID != nil {
					p.bareID(ev.ID)
				}
				ev.Event, blockID = "", false
				continue
			}
			ev.Data = bytes.Join(data, []byte{'\n'})
			return ev, nil
		}
		if line[0] == ':' {
			continue // comment: heartbeat
		}
		field, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			field, value = line[:i], line[i+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		}
		switch string(field) {
		case "data":
			data = append(data, value)
		case "id":
			if bytes.IndexByte(value, 0) < 0 {
				ev.ID, ev.HasID, blockID = string(value), true, true
			}
		case "event":
			ev.Event = string(value)
		}
	}
}
