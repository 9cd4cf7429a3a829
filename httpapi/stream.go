package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"sync"

	"github.com/gin-gonic/gin"
	"github.com/rosterhq/roster/fsm"
)

// streamChunk is how much of a listing is gathered before it is written
// out. A listing that fits goes out whole, exactly as writeJSON would send
// it; a larger one goes out a chunk at a time as it is encoded, so that a
// listing of a million keys costs the server a chunk of memory, not the
// whole answer (and its connection's write deadline moves with each chunk,
// see setDeadlines).
const streamChunk = 32 << 10

// jsonStream writes one JSON document piece by piece: raw text for its
// fixed parts, encoded values for its array elements. The bytes are the
// ones writeJSON would produce for the same document.
type jsonStream struct {
	c       *gin.Context
	status  int
	buf     *bytes.Buffer // from streamBufs; back there on finish
	enc     *json.Encoder // made on first use: listings of keys need none
	started bool          // the status line and the first chunk were written
	err     error         // the first failure; everything after it is dropped
}

// streamBufs recycles the buffers listings are gathered in. A follower
// serving lookups otherwise grows a fresh buffer to each answer's size,
// and that garbage was a fifth of its CPU in collection and growth.
var streamBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// errStreamFinished marks a stream whose buffer went back to the pool.
var errStreamFinished = errors.New("httpapi: stream already finished")

func newJSONStream(c *gin.Context, status int) *jsonStream {
	buf := streamBufs.Get().(*bytes.Buffer)
	buf.Reset()
	return &jsonStream{c: c, status: status, buf: buf}
}

// raw appends text as is.
func (js *jsonStream) raw(text string) {
	if js.err == nil {
		js.buf.WriteString(text)
	}
}

// value appends v encoded as writeJSON encodes it. It reports false once
// the stream failed (the client went away): the caller stops producing.
func (js *jsonStream) value(v any) bool {
	if js.err != nil {
		return false
	}
	if js.enc == nil {
		js.enc = json.NewEncoder(js.buf)
		js.enc.SetEscapeHTML(false) // as writeJSON
	}
	if err := js.enc.Encode(v); err != nil {
		js.err = err
		return false
	}
	js.buf.Truncate(js.buf.Len() - 1) // the encoder's newline
	if js.buf.Len() >= streamChunk {
		js.flush()
	}
	return js.err == nil
}

// kv appends one kv as kvOf(kv, keysOnly) encodes (appendKV, without
// reflection). It reports false once the stream failed.
func (js *jsonStream) kv(kv *fsm.KV, keysOnly bool) bool {
	if js.err != nil {
		return false
	}
	js.buf.Write(appendKV(js.buf.AvailableBuffer(), kv, keysOnly))
	if js.buf.Len() >= streamChunk {
		js.flush()
	}
	return js.err == nil
}

// flush writes what is gathered and sends it on its way.
func (js *jsonStream) flush() {
	if !js.started {
		js.started = true
		js.c.Header("Content-Type", contentJSON)
		js.c.Status(js.status)
	}
	_, err := js.c.Writer.Write(js.buf.Bytes())
	js.buf.Reset()
	if err == nil {
		err = http.NewResponseController(js.c.Writer).Flush()
	}
	if err != nil {
		js.err = err
	}
}

// whole returns a copy of the document when all of it is still in the
// buffer (nothing sent yet, nothing failed), for the listing cache.
func (js *jsonStream) whole() ([]byte, bool) {
	if js.started || js.err != nil {
		return nil, false
	}
	return bytes.Clone(js.buf.Bytes()), true
}

// finish ends the document. An answer that never reached a chunk goes out
// in one piece; one that failed to encode before anything was sent gets
// the error envelope instead (a type that cannot encode: a bug).
func (js *jsonStream) finish() {
	switch {
	case errors.Is(js.err, errStreamFinished):
		return
	case !js.started && js.err != nil:
		js.c.Data(http.StatusInternalServerError, contentJSON, []byte(encodeFailed))
	case !js.started:
		js.c.Data(js.status, contentJSON, js.buf.Bytes())
	case js.err == nil:
		js.flush()
	}
	// The answer has been copied into the connection's writer; the buffer
	// can serve another. An outsized one is left to the collector, so one
	// huge listing does not pin its memory.
	if js.buf.Cap() <= 2*streamChunk {
		js.buf.Reset()
		streamBufs.Put(js.buf)
	}
	js.buf, js.err = nil, errStreamFinished
}
