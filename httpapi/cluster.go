package httpapi

import (
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/rosterhq/roster/api"
	"github.com/rosterhq/roster/registry"
)

func memberOf(m registry.Member) api.Member {
	return api.Member{ID: m.ID, RaftAddr: m.RaftAddr, HTTPAddr: m.HTTPAddr, Voter: m.Voter, Leader: m.Leader}
}

// GET /v1/cluster
func (s *Server) cluster(c *gin.Context) {
	info, err := s.b.Cluster(c.Request.Context())
	if err != nil {
		s.fail(c, err)
		return
	}
	resp := api.ClusterResponse{
		Members:      make([]api.Member, 0, len(info.Members)),
		Term:         info.Term,
		CommitIndex:  info.CommitIndex,
		AppliedIndex: info.AppliedIndex,
		ClusterID:    info.ClusterID,
	}
	if info.Leader != nil {
		l := memberOf(*info.Leader)
		resp.Leader = &l
	}
	for _, m := range info.Members {
		resp.Members = append(resp.Members, memberOf(m))
	}
	writeJSON(c, http.StatusOK, resp)
}

// POST /v1/cluster/snapshot
func (s *Server) snapshot(c *gin.Context) {
	idx, err := s.b.Snapshot(c.Request.Context())
	if err != nil {
		s.fail(c, err)
		return
	}
	writeJSON(c, http.StatusOK, api.SnapshotResponse{Index: idx})
}

// GET /healthz: the process serves HTTP, nothing more.
func (s *Server) healthz(c *gin.Context) {
	writeJSON(c, http.StatusOK, api.StatusResponse{Status: "ok"})
}

// GET /readyz: 200 when the member may serve, else 503 no_leader or
// not_ready. Any other reason the Backend gives is still "not ready": a
// load balancer only needs to know whether to send traffic here.
func (s *Server) readyz(c *gin.Context) {
	if err := s.readiness(); err != nil {
		s.fail(c, err)
		return
	}
	writeJSON(c, http.StatusOK, api.StatusResponse{Status: "ready"})
}
