package httpapi

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/rosterhq/roster/api"
	"github.com/rosterhq/roster/fsm"
)

// incrSuffix marks POST /v1/kv/{key}/incr; gin cannot put a static segment
// after a catch-all, so the POST catch-all checks it.
const incrSuffix = "/incr"

// kvOf is a kv as the API writes it; without the value with keysOnly.
func kvOf(kv *fsm.KV, keysOnly bool) api.KV {
	j := api.KV{
		Key:            kv.Key,
		CreateRevision: kv.CreateRevision,
		ModRevision:    kv.ModRevision,
		Version:        kv.Version,
		Lease:          api.LeaseID(kv.Lease),
	}
	if !keysOnly {
		j.SetValue(kv.Value)
	}
	return j
}

// resultErr is the error of a write: the Backend's, or the state error the
// command returned as a value.
func resultErr(r fsm.Result, err error) error {
	if err != nil {
		return err
	}
	return r.Err
}

// kvKey is the key of a /v1/kv route: gin's catch-all holds the decoded
// rest of the path, leading and trailing slashes included.
func kvKey(c *gin.Context) (string, error) {
	key := c.Param("key")
	return key, fsm.ValidateKey(key)
}

// GET /v1/kv/{key}
func (s *Server) getKV(c *gin.Context) {
	q := newQuery(c)
	prefix, raw, stale := q.flag("prefix"), q.flag("raw"), q.flag("stale")
	keysOnly, countOnly := q.flag("keys_only"), q.flag("count_only")
	limit, _ := q.count("limit") // absent or 0: all
	after := q.text("after")
	index, wait, blocking := blockingParams(q)
	if q.err != nil {
		s.fail(c, q.err)
		return
	}
	key, err := kvKey(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	if raw && (prefix || countOnly) {
		s.fail(c, invalidf("raw=true reads one value; it cannot be combined with prefix or count_only"))
		return
	}
	if blocking {
		if s.b.Removed() {
			s.fail(c, errRemoved) // it would wait for a change that never comes
			return
		}
		if !s.admit(c, &s.blocking, "blocking_reads") {
			return
		}
		s.metrics.blocking.Inc()
		s.waitForChange(c.Request.Context(), key, prefix, index, wait, !stale)
		s.metrics.blocking.Dec()
		s.blocking.leave()
		if s.b.Removed() {
			s.fail(c, errRemoved) // removed while it waited
			return
		}
	}
	state, err := s.read(c, stale) // the token may have gone while this read waited
	if err != nil {
		s.fail(c, err)
		return
	}
	rev := state.Revision()
	writeRevision(c, rev)

	if prefix {
		if countOnly {
			var n int64
			state.Range(key, after, func(*fsm.KV) bool { n++; return true })
			writeJSON(c, http.StatusOK, api.CountResponse{Revision: rev, Count: n})
			return
		}
		lk := listKey{prefix: key, after: after, limit: limit, keysOnly: keysOnly}
		if rest, ok := s.lists.get(s.b.History(), rev, lk); ok {
			serveListing(c, rev, rest)
			return
		}
		// An api.RangeResponse, streamed: a listing may hold millions.
		js := newJSONStream(c, http.StatusOK)
		js.raw(revisionHead + strconv.FormatInt(rev, 10) + `,"kvs":[`)
		var n int64
		more := false
		state.Range(key, after, func(kv *fsm.KV) bool {
			if limit > 0 && n == limit {
				more = true
				return false
			}
			if n > 0 {
				js.raw(",")
			}
			n++
			return js.kv(kv, keysOnly)
		})
		js.raw(`],"more":` + strconv.FormatBool(more) + `}`)
		if body, ok := js.whole(); ok {
			s.lists.put(rev, lk, body)
		}
		js.finish()
		return
	}

	kv, ok := state.Get(key)
	switch {
	case countOnly:
		var n int64
		if ok {
			n = 1
		}
		writeJSON(c, http.StatusOK, api.CountResponse{Revision: rev, Count: n})
	case !ok:
		s.fail(c, keyNotFound(key))
	case raw:
		c.Data(http.StatusOK, contentBinary, kv.Value)
	default:
		c.Data(http.StatusOK, contentJSON, appendKV(make([]byte, 0, 128+len(kv.Key)+len(kv.Value)), kv, keysOnly))
	}
}

// PUT /v1/kv/{key}
func (s *Server) putKV(c *gin.Context) {
	q := newQuery(c)
	leaseID := q.id("lease")
	cas, hasCAS := q.count("cas")
	withPrev := q.flag("prev")
	if q.err != nil {
		s.fail(c, q.err)
		return
	}
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
	res, err := s.b.Put(c.Request.Context(), fsm.Put{Key: key, Value: value, Lease: leaseID, HasCAS: hasCAS, CAS: cas})
	if err := resultErr(res, err); err != nil {
		s.failWrite(c, res, err)
		return
	}
	writeRevision(c, res.Revision)
	resp := api.PutResponse{Revision: res.Revision}
	if withPrev && res.Prev != nil {
		p := kvOf(res.Prev, false)
		resp.Prev = &p
	}
	writeJSON(c, http.StatusOK, resp)
}

// failWrite answers a failed write; a write that reached the state machine
// and was refused there (CAS, lease gone) still reports the revision it saw.
func (s *Server) failWrite(c *gin.Context, res fsm.Result, err error) {
	if res.Revision > 0 {
		writeRevision(c, res.Revision)
	}
	s.fail(c, err)
}

// DELETE /v1/kv/{key}
func (s *Server) deleteKV(c *gin.Context) {
	q := newQuery(c)
	prefix := q.flag("prefix")
	cas, hasCAS := q.count("cas")
	if q.err != nil {
		s.fail(c, q.err)
		return
	}
	if prefix && hasCAS {
		s.fail(c, invalidf("cas cannot be combined with prefix=true"))
		return
	}
	key, err := kvKey(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	res, err := s.b.Delete(c.Request.Context(), fsm.Delete{Key: key, Prefix: prefix, HasCAS: hasCAS, CAS: cas})
	if err := resultErr(res, err); err != nil {
		s.failWrite(c, res, err)
		return
	}
	writeRevision(c, res.Revision)
	writeJSON(c, http.StatusOK, api.DeleteResponse{Revision: res.Revision, Deleted: res.Deleted})
}

// POST /v1/kv/{key}/incr. Any other POST under /v1/kv is the key route
// with a method it does not take: 405, as gin would answer for a route of
// its own.
func (s *Server) postKV(c *gin.Context) {
	path := c.Param("key")
	if !strings.HasSuffix(path, incrSuffix) {
		c.Header("Allow", "GET, PUT, DELETE")
		s.fail(c, errMethodNotAllowed)
		return
	}
	key := strings.TrimSuffix(path, incrSuffix)
	if err := fsm.ValidateKey(key); err != nil {
		s.fail(c, err)
		return
	}
	var req api.IncrRequest
	if err := decodeJSON(c, &req, true); err != nil {
		s.fail(c, err)
		return
	}
	by := int64(1)
	if req.By != nil {
		by = *req.By
	}
	res, err := s.b.Incr(c.Request.Context(), key, by)
	if err := resultErr(res, err); err != nil {
		s.failWrite(c, res, err)
		return
	}
	writeRevision(c, res.Revision)
	writeJSON(c, http.StatusOK, api.IncrResponse{Revision: res.Revision, Value: res.Value})
}
