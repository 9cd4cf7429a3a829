package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"

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
	buf     bytes.Buffer
	enc     *json.Encoder
	started bool  // the status line and the first chunk were written
	err     error // the first failure; everything after it is dropped
}

func newJSONStream(c *gin.Context, status int) *jsonStream {
	js := &jsonStream{c: c, status: status}
	js.enc = json.NewEncoder(&js.buf)
	js.enc.SetEscapeHTML(false) // as writeJSON
	return js
}

// raw appends text as is.
func (js *jsonStream) raw(text string) { js.buf.WriteString(text) }

// value appends v encoded as writeJSON encodes it. It reports false once
// the stream failed (the client went away): the caller stops producing.
func (js *jsonStream) value(v any) bool {
	if js.err != nil {
		return false
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

// finish ends the document. An answer that never reached a chunk goes out
// in one piece; one that failed to encode before anything was sent gets
// the error envelope instead (a type that cannot encode: a bug).
func (js *jsonStream) finish() {
	switch {
	case !js.started && js.err != nil:
		js.c.Data(http.StatusInternalServerError, contentJSON, []byte(encodeFailed))
	case !js.started:
		js.c.Data(js.status, contentJSON, js.buf.Bytes())
	case js.err == nil:
		js.flush()
	}
}
