package httpapi

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"
	"github.com/rosterhq/roster/api"
	"github.com/rosterhq/roster/fsm"
)

// maxKeepAliveIDs is the contract's cap on one batch keep-alive.
const maxKeepAliveIDs = 10_000

func renewed(st fsm.LeaseStatus) api.Renewal {
	return api.Renewal{ID: api.LeaseID(st.ID), TTL: st.TTL, Remaining: st.Remaining}
}

func leaseOf(st fsm.LeaseStatus) api.LeaseStatus {
	return api.LeaseStatus{ID: api.LeaseID(st.ID), TTL: st.TTL, Remaining: st.Remaining, Name: st.Name}
}

// POST /v1/leases
func (s *Server) grant(c *gin.Context) {
	var req api.GrantRequest
	if err := decodeJSON(c, &req, false); err != nil {
		s.fail(c, err)
		return
	}
	if err := validateGrant(req.TTL, req.Name); err != nil {
		s.fail(c, err)
		return
	}
	st, err := s.b.Grant(c.Request.Context(), req.TTL, req.Name, int64(req.ID))
	if err != nil {
		s.fail(c, err)
		return
	}
	writeJSON(c, http.StatusCreated, api.GrantResponse{ID: api.LeaseID(st.ID), TTL: st.TTL, Name: st.Name})
}

// validateGrant checks a grant before it is proposed (the Backend checks
// again; a bad grant must never reach the log).
func validateGrant(ttl int64, name string) error {
	if err := fsm.ValidateTTL(ttl); err != nil {
		return err
	}
	return fsm.ValidateLeaseName(name)
}

// POST /v1/leases/{id}/keepalive
func (s *Server) keepAliveOne(c *gin.Context) {
	id, err := pathID(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	st, err := s.renewOne(c, id)
	if err != nil {
		s.fail(c, err)
		return
	}
	writeJSON(c, http.StatusOK, renewed(st))
}

// renewOne renews one lease; a lease that is gone is lease_not_found.
func (s *Server) renewOne(c *gin.Context, id int64) (fsm.LeaseStatus, error) {
	got, _, err := s.b.KeepAlive(c.Request.Context(), []int64{id})
	if err != nil {
		return fsm.LeaseStatus{}, err
	}
	if len(got) == 0 {
		return fsm.LeaseStatus{}, leaseNotFound(id)
	}
	return got[0], nil
}

// POST /v1/leases/keepalive
func (s *Server) keepAliveMany(c *gin.Context) {
	var req api.KeepAliveRequest
	if err := decodeJSON(c, &req, false); err != nil {
		s.fail(c, err)
		return
	}
	ids := make([]int64, 0, len(req.IDs))
	seen := make(map[int64]struct{}, len(req.IDs))
	for i, id := range req.IDs {
		if id <= 0 {
			s.fail(c, invalidf("ids[%d]: lease id must be positive", i))
			return
		}
		if _, dup := seen[int64(id)]; dup {
			continue
		}
		seen[int64(id)] = struct{}{}
		ids = append(ids, int64(id))
	}
	if len(ids) > maxKeepAliveIDs {
		s.fail(c, invalidf("%d distinct lease ids; at most %d per request", len(ids), maxKeepAliveIDs))
		return
	}
	var got []fsm.LeaseStatus
	var notFound []int64
	if len(ids) > 0 {
		var err error
		if got, notFound, err = s.b.KeepAlive(c.Request.Context(), ids); err != nil {
			s.fail(c, err)
			return
		}
	}
	c.Data(http.StatusOK, contentJSON, appendKeepAlive(make([]byte, 0, 32+48*len(got)), got, notFound))
}

// appendKeepAlive writes the api.KeepAliveResponse of a batch renewal, the
// bytes encoding/json would write, by hand: a batch answers thousands of
// renewals a second, and encoding/json calls LeaseID's MarshalJSON and
// re-validates its output for each one.
func appendKeepAlive(b []byte, got []fsm.LeaseStatus, notFound []int64) []byte {
	b = append(b, `{"leases":[`...)
	for i, st := range got {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"id":"`...)
		b = strconv.AppendInt(b, st.ID, 10)
		b = append(b, `","ttl":`...)
		b = strconv.AppendInt(b, st.TTL, 10)
		b = append(b, `,"remaining":`...)
		b = strconv.AppendInt(b, st.Remaining, 10)
		b = append(b, '}')
	}
	b = append(b, `],"not_found":[`...)
	for i, id := range notFound {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = strconv.AppendInt(b, id, 10)
		b = append(b, '"')
	}
	return append(b, "]}"...)
}

// GET /v1/leases/{id}
func (s *Server) getLease(c *gin.Context) {
	id, err := pathID(c)
	q := newQuery(c)
	withKeys, stale := q.flag("keys"), q.flag("stale")
	if err == nil {
		err = q.err
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	lj, err := s.leaseInfo(c, id, withKeys, stale)
	if err != nil {
		s.fail(c, err)
		return
	}
	writeJSON(c, http.StatusOK, lj)
}

// leaseInfo reads one lease, with its keys when asked.
func (s *Server) leaseInfo(c *gin.Context, id int64, withKeys, stale bool) (api.LeaseInfo, error) {
	state, err := s.read(c, stale)
	if err != nil {
		return api.LeaseInfo{}, err
	}
	st, ok := state.Lease(id)
	if !ok {
		return api.LeaseInfo{}, leaseNotFound(id)
	}
	lj := api.LeaseInfo{LeaseStatus: leaseOf(st)}
	if withKeys {
		lj.Keys = append([]string{}, state.LeaseKeys(id)...)
	}
	return lj, nil
}

// GET /v1/leases
func (s *Server) listLeases(c *gin.Context) {
	q := newQuery(c)
	limit, _ := q.count("limit") // 0 or absent: all
	// after=0 means the start, like no after.
	var after int64
	if q.text("after") != "0" {
		after = q.id("after")
	}
	stale := q.flag("stale")
	if q.err != nil {
		s.fail(c, q.err)
		return
	}
	state, err := s.read(c, stale)
	if err != nil {
		s.fail(c, err)
		return
	}
	// An api.LeaseList, streamed: there may be millions.
	js := newJSONStream(c, http.StatusOK)
	js.raw(`{"leases":[`)
	var n int64
	more := false
	state.Leases(after, func(st fsm.LeaseStatus) bool {
		if limit > 0 && n == limit {
			more = true
			return false
		}
		if n > 0 {
			js.raw(",")
		}
		n++
		return js.value(leaseOf(st))
	})
	js.raw(`],"more":` + strconv.FormatBool(more) + `}`)
	js.finish()
}

// DELETE /v1/leases/{id}
func (s *Server) revoke(c *gin.Context) {
	id, err := pathID(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	rev, err := s.b.Revoke(c.Request.Context(), id)
	if err != nil {
		s.fail(c, revokeErr(id, err))
		return
	}
	writeJSON(c, http.StatusOK, api.RevisionResponse{Revision: rev})
}

// revokeErr names the lease in a revoke's not-found answer, as the routes
// that read the lease first do (leaseNotFound): the state machine's error
// is the bare sentinel.
func revokeErr(id int64, err error) error {
	if errors.Is(err, fsm.ErrLeaseNotFound) {
		return leaseNotFound(id)
	}
	return err
}
