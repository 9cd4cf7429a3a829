package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sort"
	"strconv"

	"github.com/gin-gonic/gin"
	"github.com/rosterhq/roster/fsm"
	"github.com/rosterhq/roster/registry"
)

// The routes of the two seed projects that wrote with JSON bodies (API.md
// "Compatibility routes"): hraftd's POST /key, which stores a JSON object
// of strings in one entry, and the gin + raft KV demo's POST /put, /get,
// /delete and /inc, which answer {"value": V} or {"error": "<message>"}.
// Every key K of theirs is the Roster key /K, as with /key/{key}.

// seedRoutes registers them; like every route they work on any member.
func (s *Server) seedRoutes(e *gin.Engine) {
	e.POST("/key", s.compatSetKeys)
	e.POST("/put", s.demoPut)
	e.POST("/get", s.demoGet) // linearizable
	e.POST("/delete", s.demoDelete)
	e.POST("/inc", s.demoInc)
}

// demoPaths are the demo's routes. Every error of a request to one of
// them answers in the demo's shape (errors.go, fail), whatever refuses
// it: the handler, a middleware that runs before any route's own (a 429
// for the request bytes, a refused token) or a wrong method's 405.
var demoPaths = map[string]bool{"/put": true, "/get": true, "/delete": true, "/inc": true}

// seedBodyLimit bounds these bodies: what a Txn may carry, JSON-escaped.
func (s *Server) seedBodyLimit() int64 {
	return max(maxJSONBody, 2*int64(registry.TxnBytesFactor)*int64(s.b.MaxValueBytes()))
}

// POST /key with {"k1":"v1","k2":"v2"} → 200, empty body. Every k is
// stored as /k, all in one Txn: all or nothing, consecutive revisions in
// key order. A value that is not a string, or an empty object, is 400.
func (s *Server) compatSetKeys(c *gin.Context) {
	body, err := readBody(c, s.seedBodyLimit())
	if err != nil {
		s.fail(c, err)
		return
	}
	if err := jsonObject(body); err != nil {
		s.fail(c, err)
		return
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil {
		s.fail(c, invalidf("bad JSON body: %v", err))
		return
	}
	if len(obj) == 0 {
		s.fail(c, invalidf("the object has no keys; give at least one \"key\": \"value\""))
		return
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	ops := make([]fsm.Command, 0, len(keys))
	for _, k := range keys {
		raw := obj[k]
		var v string
		if raw[0] != '"' || json.Unmarshal(raw, &v) != nil {
			s.fail(c, invalidf("the value of %q is %s, not a string", clip(k), clip(string(raw))))
			return
		}
		key := "/" + k
		if err := fsm.ValidateKey(key); err != nil {
			s.fail(c, err)
			return
		}
		ops = append(ops, fsm.Put{Key: key, Value: []byte(v)})
	}
	res, err := s.b.Txn(c.Request.Context(), ops)
	if err := resultErr(res, err); err != nil {
		s.failWrite(c, res, err)
		return
	}
	writeRevision(c, res.Revision)
	c.Status(http.StatusOK)
}

// jsonObject checks that body is exactly one JSON object and nothing else.
func jsonObject(body []byte) error {
	t := bytes.TrimSpace(body)
	if len(t) == 0 {
		return invalidf("the request body is empty; a JSON object is required")
	}
	if t[0] != '{' {
		return invalidf("the request body must be a JSON object")
	}
	if err := checkUTF8(t); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(t))
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return invalidf("bad JSON body: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return invalidf("bad JSON body: unexpected data after the JSON object")
	}
	return nil
}

// demoRequest is a demo route's body: {"key": K} and, for /put and /inc,
// "value". Fields are raw so that strings and integers can be told apart.
type demoRequest struct {
	Key   json.RawMessage `json:"key"`
	Value json.RawMessage `json:"value"`
}

// demoScalar is a key or value of the demo: a JSON string or integer.
type demoScalar struct {
	text  string // the stored text: the string, or the integer in decimal
	isInt bool
	n     int64
}

func parseDemoScalar(name string, raw json.RawMessage) (demoScalar, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return demoScalar{}, invalidf("%q is required", name)
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return demoScalar{}, invalidf("%q: %v", name, err)
		}
		return demoScalar{text: s}, nil
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		return demoScalar{}, invalidf("%q must be a string or an integer, not %s", name, clip(string(raw)))
	}
	return demoScalar{text: strconv.FormatInt(n, 10), isInt: true, n: n}, nil
}

// demoBody reads a demo route's body: exactly one JSON object with "key"
// and, when withValue, "value" (no other field); it returns the Roster key.
func (s *Server) demoBody(c *gin.Context, withValue bool) (string, json.RawMessage, error) {
	body, err := readBody(c, s.seedBodyLimit())
	if err != nil {
		return "", nil, err
	}
	if err := jsonObject(body); err != nil {
		return "", nil, err
	}
	var req demoRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return "", nil, invalidf("bad JSON body: %v", err)
	}
	if !withValue && req.Value != nil {
		return "", nil, invalidf(`this route takes {"key": K} only`)
	}
	k, err := parseDemoScalar("key", req.Key)
	if err != nil {
		return "", nil, err
	}
	key := "/" + k.text
	if err := fsm.ValidateKey(key); err != nil {
		return "", nil, err
	}
	if withValue && req.Value == nil {
		return "", nil, invalidf(`"value" is required`)
	}
	return key, req.Value, nil
}

// demoValue is the demo's answer: {"value": V}.
type demoValue struct {
	Value any `json:"value"`
}

// POST /put {"key": K, "value": V} → {"value": V}; stored with V's text.
func (s *Server) demoPut(c *gin.Context) {
	key, raw, err := s.demoBody(c, true)
	if err != nil {
		s.fail(c, err)
		return
	}
	v, err := parseDemoScalar("value", raw)
	if err != nil {
		s.fail(c, err)
		return
	}
	res, err := s.b.Put(c.Request.Context(), fsm.Put{Key: key, Value: []byte(v.text)})
	if err := resultErr(res, err); err != nil {
		s.failWrite(c, res, err)
		return
	}
	writeRevision(c, res.Revision)
	if v.isInt {
		writeJSON(c, http.StatusOK, demoValue{Value: v.n})
		return
	}
	writeJSON(c, http.StatusOK, demoValue{Value: v.text})
}

// POST /get {"key": K} → {"value": V}, V an integer when the stored text is
// a canonical int64, else a string; 404 when absent.
func (s *Server) demoGet(c *gin.Context) {
	key, _, err := s.demoBody(c, false)
	if err != nil {
		s.fail(c, err)
		return
	}
	kv, ok := s.readKey(c, key)
	if !ok {
		return
	}
	if n, ok := canonicalInt(kv.Value); ok {
		writeJSON(c, http.StatusOK, demoValue{Value: n})
		return
	}
	writeJSON(c, http.StatusOK, demoValue{Value: string(kv.Value)})
}

// canonicalInt reports whether v is an int64 in its one canonical decimal
// spelling (0, -17, 42; not +5, 007 or -0).
func canonicalInt(v []byte) (int64, bool) {
	n, err := strconv.ParseInt(string(v), 10, 64)
	return n, err == nil && strconv.FormatInt(n, 10) == string(v)
}

// POST /delete {"key": K} → {"value": null}, also when K was absent.
func (s *Server) demoDelete(c *gin.Context) {
	key, _, err := s.demoBody(c, false)
	if err != nil {
		s.fail(c, err)
		return
	}
	res, err := s.b.Delete(c.Request.Context(), fsm.Delete{Key: key})
	if err := resultErr(res, err); err != nil {
		s.failWrite(c, res, err)
		return
	}
	writeRevision(c, res.Revision)
	writeJSON(c, http.StatusOK, demoValue{})
}

// POST /inc {"key": K, "value": N} → {"value": the new integer}; an absent
// key counts from 0; a stored value that is not an integer is 400.
func (s *Server) demoInc(c *gin.Context) {
	key, raw, err := s.demoBody(c, true)
	if err != nil {
		s.fail(c, err)
		return
	}
	v, err := parseDemoScalar("value", raw)
	if err == nil && !v.isInt {
		err = invalidf(`"value" must be an integer`)
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	res, err := s.b.Incr(c.Request.Context(), key, v.n)
	if err := resultErr(res, err); err != nil {
		s.failWrite(c, res, err)
		return
	}
	writeRevision(c, res.Revision)
	writeJSON(c, http.StatusOK, demoValue{Value: res.Value})
}
