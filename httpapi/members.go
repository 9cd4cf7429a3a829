package httpapi

import (
	"net"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/rosterhq/roster/api"
	"github.com/rosterhq/roster/registry"
)

// addMember: POST /v1/cluster/members, answered once the member is part of
// the configuration.
func (s *Server) addMember(c *gin.Context) {
	var req api.AddMemberRequest
	if err := decodeJSON(c, &req, false); err != nil {
		s.fail(c, err)
		return
	}
	voter := req.Voter == nil || *req.Voter
	s.join(c, registry.JoinRequest{ID: req.ID, RaftAddr: req.RaftAddr, HTTPAddr: req.HTTPAddr, Voter: voter})
}

// compatJoin: POST /join with {"id","addr"} or {"id","raftAddr","httpAddr"}.
func (s *Server) compatJoin(c *gin.Context) {
	var req struct {
		ID       string `json:"id"`
		Addr     string `json:"addr"`
		RaftAddr string `json:"raftAddr"`
		HTTPAddr string `json:"httpAddr"`
	}
	if err := decodeJSON(c, &req, false); err != nil {
		s.fail(c, err)
		return
	}
	raftAddr := req.RaftAddr
	if raftAddr == "" {
		raftAddr = req.Addr
	}
	s.join(c, registry.JoinRequest{ID: req.ID, RaftAddr: raftAddr, HTTPAddr: req.HTTPAddr, Voter: true})
}

func (s *Server) join(c *gin.Context, req registry.JoinRequest) {
	if req.ID == "" {
		s.fail(c, invalidf("member id is required"))
		return
	}
	if _, _, err := net.SplitHostPort(req.RaftAddr); err != nil {
		s.fail(c, invalidf("raft address %q is not host:port", clip(req.RaftAddr)))
		return
	}
	if req.HTTPAddr != "" {
		// host:port, or with a scheme (https:// when the member serves TLS).
		if _, _, err := net.SplitHostPort(memberURL(req.HTTPAddr).Host); err != nil || strings.Contains(memberURL(req.HTTPAddr).Host, "/") {
			s.fail(c, invalidf("http address %q is not host:port or https://host:port", clip(req.HTTPAddr)))
			return
		}
	}
	if err := s.b.AddMember(c.Request.Context(), req); err != nil {
		s.fail(c, err)
		return
	}
	writeJSON(c, 200, api.Member{ID: req.ID, RaftAddr: req.RaftAddr, HTTPAddr: req.HTTPAddr, Voter: req.Voter})
}

// removeMember: DELETE /v1/cluster/members/{id}.
func (s *Server) removeMember(c *gin.Context) {
	id := c.Param("id")
	if id == "" {
		s.fail(c, invalidf("member id is required"))
		return
	}
	if err := s.b.RemoveMember(c.Request.Context(), id); err != nil {
		s.fail(c, err)
		return
	}
	writeJSON(c, 200, api.RemovedResponse{Removed: id})
}
