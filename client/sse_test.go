package client

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func readAllEvents(t *testing.T, r io.Reader) ([]sseEvent, error) {
	t.Helper()
	p := newSSEReader(r, nil)
	var out []sseEvent
	for {
		ev, err := p.next()
		if err != nil {
			return out, err
		}
		out = append(out, ev)
	}
}

func TestSSEParser(t *testing.T) {
	const put = `{"type":"put","kv":{"key":"/a","value":"1","create_revision":5,"mod_revision":5,"version":1}}`
	tests := []struct {
		name    string
		in      string
		want    []sseEvent
		wantErr error
	}{
		{
			name: "server frames with heartbeats",
			in:   ": heartbeat\n\nid: 5\ndata: " + put + "\n\n: heartbeat\n\nid: 6\ndata: {}\n\n",
			want: []sseEvent{{ID: "5", HasID: true, Data: []byte(put)}, {ID: "6", HasID: true, Data: []byte("{}")}},
		},
		{
			name: "CRLF line endings",
			in:   "id: 7\r\ndata: x\r\n\r\n",
			want: []sseEvent{{ID: "7", HasID: true, Data: []byte("x")}},
		},
		{
			name: "CR line endings",
			in:   "id: 8\rdata: y\r\r",
			want: []sseEvent{{ID: "8", HasID: true, Data: []byte("y")}},
		},
		{
			name: "multi-line data, no space after the colon, event field",
			in:   "event: cutoff\ndata:a\ndata: b\ndata\n\n",
			want: []sseEvent{{Event: "cutoff", Data: []byte("a\nb\n")}},
		},
		{
			name: "only the first space is stripped",
			in:   "data:  two\n\n",
			want: []sseEvent{{Data: []byte(" two")}},
		},
		{
			name: "id-only block: the id carries to the next event; the event type does not",
			in:   "id: 9\nevent: x\n\ndata: z\n\n",
			want: []sseEvent{{ID: "9", HasID: true, Data: []byte("z")}},
		},
		{
			name: "unknown fields and retry are ignored",
			in:   "retry: 100\nfoo: bar\ndata: q\n\n",
			want: []sseEvent{{Data: []byte("q")}},
		},
		{
			name:    "an event cut off by the end of the stream is not delivered",
			in:      "id: 1\ndata: ok\n\nid: 2\ndata: cut",
			want:    []sseEvent{{ID: "1", HasID: true, Data: []byte("ok")}},
			wantErr: io.ErrUnexpectedEOF,
		},
		{
			name:    "an event without its blank line is not delivered",
			in:      "data: almost\n",
			wantErr: io.ErrUnexpectedEOF,
		},
		{
			name: "empty stream",
			in:   "",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.wantErr == nil {
				tc.wantErr = io.EOF
			}
			// Whole, and one byte at a time (a stream split anywhere).
			for _, r := range []io.Reader{strings.NewReader(tc.in), iotest.OneByteReader(strings.NewReader(tc.in))} {
				got, err := readAllEvents(t, r)
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("error %v, want %v", err, tc.wantErr)
				}
				if len(got) != len(tc.want) {
					t.Fatalf("events %+v, want %+v", got, tc.want)
				}
				for i := range got {
					g, w := got[i], tc.want[i]
					if g.ID != w.ID || g.HasID != w.HasID || g.Event != w.Event || string(g.Data) != string(w.Data) {
						t.Fatalf("event %d = %+v (data %q), want %+v (data %q)", i, g, g.Data, w, w.Data)
					}
				}
			}
		})
	}
}

func TestSSELineTooLong(t *testing.T) {
	p := newSSEReader(strings.NewReader("data: "+strings.Repeat("x", 1<<20)+"\n\n"), nil)
	p.maxLine = 1 << 20
	if _, err := p.next(); !errors.Is(err, errSSELineTooLong) {
		t.Fatalf("error %v, want errSSELineTooLong", err)
	}
}

func TestSSECompleteEventBuffered(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"", false},
		{"data: x\n", false},
		{"data: x\n\n", true},
		{"id: 1\r\ndata: x\r\n\r\n", true},
		{": heartbeat\n\n", false}, // no data: next would block past it
		{": heartbeat\n\ndata: y\n\n", true},
		{"id: 3\n\n", false},
	} {
		p := newSSEReader(strings.NewReader(tc.in), nil)
		p.r.Peek(len(tc.in)) // fill the buffer
		if got := p.completeEventBuffered(); got != tc.want {
			t.Errorf("completeEventBuffered(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestDecodeEvent(t *testing.T) {
	w := &watcher{rev: 10, from: true}
	ev, skip, err := w.decodeEvent(sseEvent{ID: "12", HasID: true, Data: []byte(
		`{"type":"put","kv":{"key":"/b","value_base64":"/w==","create_revision":11,"mod_revision":12,"version":2,"lease":"1728394857362391040"},` +
			`"prev_kv":{"key":"/b","value":"old","create_revision":11,"mod_revision":11,"version":1}}`)})
	if err != nil || skip || ev.Type != EventPut || ev.Revision != 12 || string(ev.KV.Value) != "\xff" ||
		ev.KV.Lease != 1728394857362391040 || ev.PrevKV == nil || string(ev.PrevKV.Value) != "old" {
		t.Fatalf("decodeEvent = %+v, %v, %v", ev, skip, err)
	}
	ev, skip, err = w.decodeEvent(sseEvent{Data: []byte(`{"type":"delete","kv":{"key":"/b","mod_revision":13}}`)})
	if err != nil || skip || ev.Type != EventDelete || ev.Revision != 13 || ev.KV.Value != nil {
		t.Fatalf("decodeEvent delete = %+v, %v, %v", ev, skip, err)
	}
	// Already delivered (a repeat after a reconnect): skipped.
	if _, skip, _ := w.decodeEvent(sseEvent{ID: "9", HasID: true, Data: []byte(`{"type":"put","kv":{"key":"/b"}}`)}); !skip {
		t.Fatal("an event at or below the resume revision was not skipped")
	}
	// A cutoff moves the resume revision and delivers nothing.
	if _, skip, _ := w.decodeEvent(sseEvent{Event: "cutoff", Data: []byte(`{"type":"cutoff","resume_rev":40}`)}); !skip || w.rev != 40 {
		t.Fatalf("cutoff: skip %v, rev %d; want skipped and rev 40", skip, w.rev)
	}
	if _, _, err := w.decodeEvent(sseEvent{Data: []byte(`not json`)}); !errors.Is(err, errBadEvent) {
		t.Fatalf("bad event: %v", err)
	}
}

// TestSSEBareID: a block with an id and no data (a heartbeat carrying
// progress) reaches bareID; ids of events and bare comments do not.
func TestSSEBareID(t *testing.T) {
	in := ": heartbeat\nid: 5\n\nid: 6\ndata: x\n\n: heartbeat\n\nid: 7\r\n: heartbeat\r\n\r\nevent: e\n\n"
	var ids []string
	p := newSSEReader(strings.NewReader(in), nil)
	p.bareID = func(id string) { ids = append(ids, id) }
	ev, err := p.next()
	if err != nil || ev.ID != "6" || string(ev.Data) != "x" {
		t.Fatalf("next: %+v %v", ev, err)
	}
	if _, err := p.next(); err != io.EOF {
		t.Fatalf("at the end: %v", err)
	}
	if fmt.Sprint(ids) != "[5 7]" {
		t.Fatalf("bare ids %v, want [5 7]", ids)
	}
}
