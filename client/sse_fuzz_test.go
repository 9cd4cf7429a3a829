package client

import (
	"bytes"
	"fmt"
	"io"
	"testing"
	"testing/iotest"
)

// FuzzSSE reads arbitrary bytes as a watch stream. The reader must not
// panic, and what it makes of a stream must not depend on how the network
// cut it up: read whole, a byte at a time, or in halves, the same events
// come out, followed by the same error. When completeEventBuffered says a
// whole event is buffered, next must return one without reading further.
//
//	go test -run '^$' -fuzz FuzzSSE -fuzztime 1m ./client/
func FuzzSSE(f *testing.F) {
	for _, s := range []string{
		"id: 1\nevent: put\ndata: {\"a\":1}\n\n",
		": heartbeat\r\n\r\nid:2\rdata:x\r\rdata: y\r\n\r\n",
		"data: a\ndata: b\n\nid: 3\n\ndata: c\n\n",
		"retry: 10\nid: \x00\ndata\n\n",
		"data: cut off",
		"\r\n\r\r\n\n",
		// Found by this target: "data0" is not a data field, so no event
		// is complete, but completeEventBuffered said one was and the
		// watcher would then wait for more input holding events back.
		"data0\n\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		whole := renderEvents(bytes.NewReader(in))
		for name, r := range map[string]io.Reader{
			"one byte at a time": iotest.OneByteReader(bytes.NewReader(in)),
			"in halves":          iotest.HalfReader(bytes.NewReader(in)),
		} {
			if got := renderEvents(r); got != whole {
				t.Fatalf("%q read %s:\n%s\nread whole:\n%s", in, name, got, whole)
			}
		}

		// completeEventBuffered promises next will not block: with a
		// reader that fails after what is buffered, next must still
		// return an event.
		p := newSSEReader(bytes.NewReader(in), nil)
		if _, err := p.r.Peek(1); err != nil {
			return
		}
		if p.completeEventBuffered() {
			buffered := in[:p.r.Buffered()]
			p.r.Reset(io.MultiReader(bytes.NewReader(buffered), iotest.ErrReader(errNoMoreInput)))
			if _, err := p.next(); err != nil {
				t.Fatalf("%q: completeEventBuffered said yes, but next: %v", in, err)
			}
		}
	})
}

var errNoMoreInput = fmt.Errorf("read past what was buffered")

// renderEvents renders every event of a stream and the error it ends with.
func renderEvents(r io.Reader) string {
	p := newSSEReader(r, nil)
	var out bytes.Buffer
	for i := 0; ; i++ {
		ev, err := p.next()
		if err != nil {
			fmt.Fprintf(&out, "end: %v\n", err)
			return out.String()
		}
		fmt.Fprintf(&out, "%d: id=%q hasID=%v event=%q data=%q\n", i, ev.ID, ev.HasID, ev.Event, ev.Data)
	}
}
