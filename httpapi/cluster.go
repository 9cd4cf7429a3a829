package httpapi

import (
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/rosterhq/roster/registry"
)

// Wire shapes of the cluster routes.
type (
	memberJSON struct {
		ID       string `json:"id"`
		RaftAddr string `json:"raft_addr"`
		HTTPAddr string `json:"http_addr"`
		Voter    bool   `json:"voter"`
		Leader   bool   `json:"leader"`
	}
	clusterResponse struct {
		Leader       *memberJSON  `json:"leader"` // null when none is known
		Members      []memberJSON `json:"members"`
		Term         uint64       `json:"term"`
		CommitIndex  uint64       `json:"commit_index"`
		AppliedIndex uint64       `json:"applied_index"`
	}
	snapshotResponse struct {
		Index uint64 `json:"index"`
	}
	statusResponse struct {
		Status string `json:"status"`
	}
)

func memberOf(m registry.Member) memberJSON {
	return memberJSON{ID: m.ID, RaftAddr: m.RaftAddr, HTTPAddr: m.HTTPAddr, Voter: m.Voter, Leader: m.Leader}
}

// GET /v1/cluster
func (s *Server) cluster(c *gin.Context) {
	info, err := s.b.Cluster(c.Request.Context())
	if err != nil {
		s.fail(c, err)
		return
	}
	resp := clusterResponse{
		Members:      make([]memberJSON, 0, len(info.Members)),
		Term:         info.Term,
		CommitIndex:  info.CommitIndex,
		AppliedIndex: info.AppliedIndex,
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
	writeJSON(c, http.StatusOK, snapshotResponse{Index: idx})
}

// GET /healthz: the process serves HTTP, nothing more.
func (s *Server) healthz(c *gin.Context) {
	writeJSON(c, http.StatusOK, statusResponse{Status: "ok"})
}

// GET /readyz: 200 when the member may serve, else 503 no_leader or
// not_ready. Any other reason the Backend gives is still "not ready": a
// load balancer only needs to know whether to send traffic here.
func (s *Server) readyz(c *gin.Context) {
	err := s.b.Ready()
	if err == nil {
		writeJSON(c, http.StatusOK, statusResponse{Status: "ready"})
		return
	}
	if status, _ := errorStatus(err); status != http.StatusServiceUnavailable {
		err = notReady(err)
	}
	s.fail(c, err)
}
