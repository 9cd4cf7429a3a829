package httpapi

import (
	"net"
	"net/netip"
	"strconv"
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
	s.join(c, registry.JoinRequest{ID: req.ID, RaftAddr: req.RaftAddr, HTTPAddr: req.HTTPAddr, Voter: voter, ClusterID: req.ClusterID})
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

// validateMember checks a member request before the Backend sees it.
func validateMember(req registry.JoinRequest) error {
	if req.ID == "" {
		return invalidf("member id is required")
	}
	// DELETE /v1/cluster/members/{id} takes one path segment: a member
	// whose ID holds a slash could never be removed.
	if strings.Contains(req.ID, "/") {
		return invalidf("member id %q holds a /", clip(req.ID))
	}
	if !validAddr(req.RaftAddr, true) {
		return invalidf("raft address %q is not host:port", clip(req.RaftAddr))
	}
	// host:port, or with a scheme (https:// when the member serves TLS).
	if req.HTTPAddr != "" && !validAddr(memberURL(req.HTTPAddr).Host, false) {
		return invalidf("http address %q is not host:port or https://host:port", clip(req.HTTPAddr))
	}
	return nil
}

// validAddr reports whether addr is host:port with a port number 0..65535;
// net.SplitHostPort alone takes "host:notaport". A raft address must also
// be dialable (a host that is not a wildcard, a port that is not 0), or
// raft would dial the member in vain for ever. An HTTP address need not:
// a member started with -http :7370 and no -advertise-http records that
// (rosterd warns), and only the status probes of it fail.
func validAddr(addr string, dialable bool) bool {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || strings.ContainsAny(host, "/?#@") {
		return false
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || !dialable {
		return err == nil
	}
	ip, ipErr := netip.ParseAddr(host)
	return host != "" && p > 0 && (ipErr != nil || !ip.IsUnspecified())
}

func (s *Server) join(c *gin.Context, req registry.JoinRequest) {
	if err := validateMember(req); err != nil {
		s.fail(c, err)
		return
	}
	if err := s.b.AddMember(c.Request.Context(), req); err != nil {
		s.fail(c, err)
		return
	}
	m := api.Member{ID: req.ID, RaftAddr: req.RaftAddr, HTTPAddr: req.HTTPAddr, Voter: req.Voter}
	if m.HTTPAddr == "" {
		// Without one, a member joining again keeps the HTTP address it
		// recorded (registry.AddMember): answer that.
		if info, err := s.b.Cluster(c.Request.Context()); err == nil {
			for _, cm := range info.Members {
				if cm.ID == m.ID && cm.RaftAddr == m.RaftAddr {
					m.HTTPAddr = cm.HTTPAddr
				}
			}
		}
	}
	writeJSON(c, 200, m)
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

// updateMember: PUT /v1/cluster/members/{id} with {"raft_addr","http_addr"}
// re-records the HTTP address of a member that is in the configuration at
// that raft address; 404 not_found otherwise. It never adds a member: a
// member's metadata keeper uses it, and a removed member must not be able
// to bring itself back.
func (s *Server) updateMember(c *gin.Context) {
	var req api.AddMemberRequest
	if err := decodeJSON(c, &req, false); err != nil {
		s.fail(c, err)
		return
	}
	if req.ID != "" && req.ID != c.Param("id") {
		s.fail(c, invalidf("member id %q in the body differs from %q in the path", clip(req.ID), clip(c.Param("id"))))
		return
	}
	jr := registry.JoinRequest{ID: c.Param("id"), RaftAddr: req.RaftAddr, HTTPAddr: req.HTTPAddr, Voter: true}
	if err := validateMember(jr); err != nil {
		s.fail(c, err)
		return
	}
	if err := s.b.UpdateMember(c.Request.Context(), jr); err != nil {
		s.fail(c, err)
		return
	}
	writeJSON(c, 200, api.Member{ID: jr.ID, RaftAddr: jr.RaftAddr, HTTPAddr: jr.HTTPAddr, Voter: true})
}
