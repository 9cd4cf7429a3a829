package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/rosterhq/roster/api"
)

// maxJSONBody bounds every JSON request body that is not a value: the
// largest legitimate one is a keep-alive batch of 10,000 IDs (~250 KiB).
const maxJSONBody = 2 << 20

const (
	contentJSON   = "application/json"
	contentBinary = "application/octet-stream"
	contentText   = "text/plain; charset=utf-8"
)

// encodeFailed is the answer when a value cannot be encoded (a bug: every
// answer is a plain struct), written by hand to keep the envelope promise.
const encodeFailed = `{"error":{"code":"internal","message":"encoding the answer failed"}}`

// writeJSON answers with v as JSON. It encodes without HTML escaping
// (values are data, not markup; compatibility clients compare bytes) and
// without the encoder's trailing newline, like gin's own c.JSON.
func writeJSON(c *gin.Context, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Only a programming error (an unencodable type) lands here; keep
		// the envelope promise with a hand-written body.
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(encodeFailed)
	}
	body := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	c.Data(status, contentJSON, body)
}

// writeRevision sets X-Roster-Revision, which every KV answer carries.
func writeRevision(c *gin.Context, rev int64) {
	c.Header(api.HeaderRevision, strconv.FormatInt(rev, 10))
}

// readBody reads the whole request body, at most limit bytes; what is over
// the limit is too_large, checked against Content-Length first so that an
// honest oversized upload is refused before it is read.
func readBody(c *gin.Context, limit int64) ([]byte, error) {
	if c.Request.ContentLength > limit {
		return nil, tooLarge("the request body", limit)
	}
	data, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, tooLarge("the request body", limit)
		}
		if isTimeout(err) {
			return nil, invalidf("the request body did not arrive within the server's read timeout")
		}
		return nil, invalidf("reading the request body: %v", err)
	}
	return data, nil
}

// decodeJSON decodes the request body into v strictly: one JSON value, of
// the right types, with nothing but white space after it. Unknown fields
// are ignored, like unknown query parameters, so that newer clients can
// talk to older servers. An empty body leaves v untouched when allowEmpty.
func decodeJSON(c *gin.Context, v any, allowEmpty bool) error {
	data, err := readBody(c, maxJSONBody)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(data)) == 0 {
		if allowEmpty {
			return nil
		}
		return invalidf("the request body is empty; a JSON object is required")
	}
	if err := checkUTF8(data); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		return invalidf("bad JSON body: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return invalidf("bad JSON body: unexpected data after the JSON value")
	}
	return nil
}

// checkUTF8 refuses a JSON body that is not UTF-8 (RFC 8259 requires it):
// encoding/json would quietly turn each bad byte into U+FFFD, and the
// name, key or value stored would not be the one the client sent.
func checkUTF8(body []byte) error {
	if !utf8.Valid(body) {
		return invalidf("bad JSON body: not valid UTF-8")
	}
	return nil
}

// parseID parses a lease ID strictly (api.ParseLeaseID): a positive int64
// in canonical decimal, so that every ID has exactly one spelling.
func parseID(s string) (int64, error) {
	v, err := api.ParseLeaseID(s)
	if err != nil {
		return 0, invalidf("%v", err)
	}
	return int64(v), nil
}

// parseNonNegative parses a count or revision: digits only, fits int64.
func parseNonNegative(name, s string) (int64, error) {
	if s == "" || strings.Trim(s, "0123456789") != "" {
		return 0, invalidf("%s %q is not a non-negative decimal integer", name, clip(s))
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, invalidf("%s %q is out of range", name, clip(s))
	}
	return v, nil
}

// clip shortens user input quoted in an error message.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
