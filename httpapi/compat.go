package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/rosterhq/roster/fsm"
)

// The compatibility routes (API.md "Compatibility routes") answer in the
// shapes that scripts written for the raftd/hraftd family expect: a bare ID
// from a grant, `null` from a keep-alive, raw bytes from /key. Errors still
// use the JSON error envelope; those scripts look at the status only.

// formLimit bounds a form body: a value of the maximum size, URL-encoded
// (up to three bytes per byte), plus room for the other fields.
func (s *Server) formLimit() int64 { return 3*int64(s.b.MaxValueBytes()) + 64<<10 }

// parseForm parses the URL query and a urlencoded or multipart body into
// c.Request.Form (body fields win over query fields), within the limit.
func (s *Server) parseForm(c *gin.Context) error {
	r, limit := c.Request, s.formLimit()
	if r.ContentLength > limit {
		return tooLarge("the form body", limit)
	}
	r.Body = http.MaxBytesReader(c.Writer, r.Body, limit)
	// ParseForm first: ParseMultipartForm swallows its errors (a bad
	// escape, a body over the limit) when the body is not multipart.
	err := r.ParseForm()
	if err == nil {
		if err = r.ParseMultipartForm(limit); errors.Is(err, http.ErrNotMultipart) {
			err = nil
		}
	}
	var mbe *http.MaxBytesError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &mbe):
		return tooLarge("the form body", limit)
	default:
		return invalidf("bad form body: %v", err)
	}
}

// POST /lease/grant?ttl=10&name=/esq/node-1 → 200, the ID as bare digits,
// so that ID=$(curl -s -XPOST …) captures it.
func (s *Server) compatGrant(c *gin.Context) {
	if err := s.parseForm(c); err != nil {
		s.fail(c, err)
		return
	}
	ttl, err := parseNonNegative("ttl", c.Request.FormValue("ttl"))
	if err != nil {
		s.fail(c, err)
		return
	}
	name := c.Request.FormValue("name")
	if err := validateGrant(ttl, name); err != nil {
		s.fail(c, err)
		return
	}
	st, err := s.b.Grant(c.Request.Context(), ttl, name, 0)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Data(http.StatusOK, contentText, strconv.AppendInt(nil, st.ID, 10))
}

// POST /lease/keepalive/{id} with form fields key, data: renews the lease
// and, when key is given, stores data under {name}/{key} attached to it.
// Scripts re-send the same data on every loop: when the state read already
// holds it, nothing is written, and the put is IfChanged anyway so that an
// unchanged value never costs a revision or wakes a watcher.
func (s *Server) compatKeepAlive(c *gin.Context) {
	id, err := pathID(c)
	if err == nil {
		err = s.parseForm(c)
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	key, data := c.Request.FormValue("key"), c.Request.FormValue("data")
	if key == "" {
		if _, err := s.renewOne(c, id); err != nil {
			s.fail(c, err)
			return
		}
		writeJSON(c, http.StatusOK, nil)
		return
	}
	// Resolve and check the full key before renewing, so that a bad key or
	// an oversized value changes nothing.
	state, err := s.read(c, false)
	if err != nil {
		s.fail(c, err)
		return
	}
	st, ok := state.Lease(id)
	if !ok {
		s.fail(c, leaseNotFound(id))
		return
	}
	full := st.Name + "/" + key
	if err := fsm.ValidateKey(full); err != nil {
		s.fail(c, err)
		return
	}
	if max := s.b.MaxValueBytes(); len(data) > max {
		s.fail(c, tooLarge("data", int64(max)))
		return
	}
	if _, err := s.renewOne(c, id); err != nil {
		s.fail(c, err)
		return
	}
	if kv, ok := state.Get(full); ok && kv.Lease == id && string(kv.Value) == data {
		// The usual loop: nothing to store, so spare the raft entry too.
		writeJSON(c, http.StatusOK, nil)
		return
	}
	res, err := s.b.Put(c.Request.Context(), fsm.Put{Key: full, Value: []byte(data), Lease: id, IfChanged: true})
	if err := resultErr(res, err); err != nil {
		s.fail(c, err)
		return
	}
	writeJSON(c, http.StatusOK, nil)
}

// POST /lease/revoke/{id} → 200 null; 404 when the lease is gone.
func (s *Server) compatRevoke(c *gin.Context) {
	id, err := pathID(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	if _, err := s.b.Revoke(c.Request.Context(), id); err != nil {
		s.fail(c, revokeErr(id, err))
		return
	}
	writeJSON(c, http.StatusOK, nil)
}

// POST /lease/timetolive/{id} → {"id","ttl","remaining","name","keys"}.
func (s *Server) compatTimeToLive(c *gin.Context) {
	id, err := pathID(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	lj, err := s.leaseInfo(c, id, true, false)
	if err != nil {
		s.fail(c, err)
		return
	}
	writeJSON(c, http.StatusOK, lj)
}

// POST /lease/kv/{key} with form field prefix → a JSON array with, for each
// live lease whose name starts with prefix and that holds {name}/{key},
// that key's value (embedded as JSON when it is JSON, else as a string),
// in order of lease name. This is how the scripts discover their peers.
func (s *Server) compatLeaseKV(c *gin.Context) {
	key := strings.TrimPrefix(c.Param("key"), "/")
	if key == "" {
		s.fail(c, invalidf("the key after /lease/kv/ is empty"))
		return
	}
	if err := s.parseForm(c); err != nil {
		s.fail(c, err)
		return
	}
	prefix := c.Request.FormValue("prefix")
	state, err := s.read(c, false)
	if err != nil {
		s.fail(c, err)
		return
	}
	type hit struct {
		name  string
		value []byte
	}
	var hits []hit
	// Every {name}/{key} of a lease whose name starts with prefix is itself
	// under prefix, so one range scan finds them all.
	state.Range(prefix, "", func(kv *fsm.KV) bool {
		if kv.Lease == 0 {
			return true
		}
		l, ok := state.Lease(kv.Lease)
		if ok && strings.HasPrefix(l.Name, prefix) && l.Name+"/"+key == kv.Key {
			hits = append(hits, hit{name: l.Name, value: kv.Value})
		}
		return true
	})
	// Key order is not name order ("/a-b/k" < "/a/k" but "/a" < "/a-b").
	sort.SliceStable(hits, func(i, j int) bool { return hits[i].name < hits[j].name })
	out := make([]json.RawMessage, 0, len(hits))
	for _, h := range hits {
		out = append(out, embedValue(h.value))
	}
	writeJSON(c, http.StatusOK, out)
}

// embedValue is a value as JSON: itself when it is a JSON document, else a
// JSON string of it.
func embedValue(v []byte) json.RawMessage {
	if json.Valid(v) {
		return json.RawMessage(v)
	}
	b, err := json.Marshal(string(v))
	if err != nil {
		return json.RawMessage("null") // unreachable: a string always encodes
	}
	return b
}

// PUT /key/{key} with the raw value as body → 200, empty body. The key
// stored is /{key}.
func (s *Server) compatPutKey(c *gin.Context) {
	key, err := kvKey(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	value, err := readBody(c, int64(s.b.MaxValueBytes()))
	if err != nil {
		s.fail(c, err)
		return
	}
	res, err := s.b.Put(c.Request.Context(), fsm.Put{Key: key, Value: value})
	if err := resultErr(res, err); err != nil {
		s.fail(c, err)
		return
	}
	writeRevision(c, res.Revision)
	c.Status(http.StatusOK)
}

// GET /key/{key} → the raw value; 404 when absent.
func (s *Server) compatGetKey(c *gin.Context) {
	key, err := kvKey(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	if kv, ok := s.readKey(c, key); ok {
		c.Data(http.StatusOK, contentBinary, kv.Value)
	}
}

// readKey reads one key linearizably for a compatibility route, with the
// revision header; when it is absent (or the read fails) it answers the
// error and reports false.
func (s *Server) readKey(c *gin.Context, key string) (*fsm.KV, bool) {
	state, err := s.read(c, false)
	if err != nil {
		s.fail(c, err)
		return nil, false
	}
	writeRevision(c, state.Revision())
	kv, ok := state.Get(key)
	if !ok {
		s.fail(c, keyNotFound(key))
	}
	return kv, ok
}

// DELETE /key/{key} → 200, empty body, whether or not the key existed.
func (s *Server) compatDeleteKey(c *gin.Context) {
	key, err := kvKey(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	res, err := s.b.Delete(c.Request.Context(), fsm.Delete{Key: key})
	if err := resultErr(res, err); err != nil {
		s.fail(c, err)
		return
	}
	writeRevision(c, res.Revision)
	c.Status(http.StatusOK)
}
