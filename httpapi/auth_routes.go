package httpapi

import (
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/rosterhq/roster/api"
	"github.com/rosterhq/roster/fsm"
	"github.com/rosterhq/roster/registry"
)

// The /v1/auth routes (API.md "Security"). They work whether or not this
// member enforces access control, so that tables can be prepared before
// -auth is switched on; with it, all but whoami need admin.

func roleOf(r fsm.Role) api.Role {
	out := api.Role{Name: r.Name, Rules: make([]api.Rule, 0, len(r.Rules)), Admin: r.Admin}
	for _, rule := range r.Rules {
		out.Rules = append(out.Rules, api.Rule{Prefix: rule.Prefix, Read: rule.Read, Write: rule.Write})
	}
	return out
}

func tokenInfo(t fsm.Token) api.TokenInfo {
	return api.TokenInfo{ID: t.ID, Name: t.Name, Roles: append([]string{}, t.Roles...)}
}

// PUT /v1/auth/roles/{name}
func (s *Server) putRole(c *gin.Context) {
	var req api.PutRoleRequest
	if err := decodeJSON(c, &req, false); err != nil {
		s.fail(c, err)
		return
	}
	r := fsm.Role{Name: c.Param("name"), Admin: req.Admin}
	for _, rule := range req.Rules {
		r.Rules = append(r.Rules, fsm.Rule{Prefix: rule.Prefix, Read: rule.Read, Write: rule.Write})
	}
	if err := fsm.ValidateRole(r); err != nil {
		s.fail(c, err)
		return
	}
	if err := s.b.PutRole(c.Request.Context(), r); err != nil {
		s.fail(c, err)
		return
	}
	s.audit(c, "role put", "role", r.Name, "admin", r.Admin, "rules", len(r.Rules))
	writeJSON(c, http.StatusOK, roleOf(r))
}

// GET /v1/auth/roles
func (s *Server) listRoles(c *gin.Context) {
	st, err := s.authState(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	out := api.RoleList{Roles: []api.Role{}}
	for _, r := range st.Roles() {
		out.Roles = append(out.Roles, roleOf(r))
	}
	writeJSON(c, http.StatusOK, out)
}

// GET /v1/auth/roles/{name}
func (s *Server) getRole(c *gin.Context) {
	st, err := s.authState(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	r, ok := st.Role(c.Param("name"))
	if !ok {
		s.fail(c, fmt.Errorf("%w: %q", fsm.ErrRoleNotFound, clip(c.Param("name"))))
		return
	}
	writeJSON(c, http.StatusOK, roleOf(r))
}

// DELETE /v1/auth/roles/{name}
func (s *Server) deleteRole(c *gin.Context) {
	name := c.Param("name")
	if err := s.b.DeleteRole(c.Request.Context(), name); err != nil {
		s.fail(c, err)
		return
	}
	s.audit(c, "role deleted", "role", name)
	writeJSON(c, http.StatusOK, api.DeletedResponse{Deleted: name})
}

// POST /v1/auth/tokens: 201 with the secret, shown this once.
func (s *Server) createToken(c *gin.Context) {
	var req api.CreateTokenRequest
	if err := decodeJSON(c, &req, false); err != nil {
		s.fail(c, err)
		return
	}
	t, secret, err := s.b.CreateToken(c.Request.Context(), req.Name, req.Roles)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.audit(c, "token created", "token", t.Name, "token_id", t.ID, "roles", t.Roles)
	writeJSON(c, http.StatusCreated, api.CreatedToken{ID: t.ID, Name: t.Name, Roles: t.Roles, Token: secret})
}

// GET /v1/auth/tokens
func (s *Server) listTokens(c *gin.Context) {
	st, err := s.authState(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	out := api.TokenList{Tokens: []api.TokenInfo{}}
	for _, t := range st.Tokens() {
		out.Tokens = append(out.Tokens, tokenInfo(t))
	}
	writeJSON(c, http.StatusOK, out)
}

// DELETE /v1/auth/tokens/{id}
func (s *Server) deleteToken(c *gin.Context) {
	id := c.Param("id")
	if err := s.b.DeleteToken(c.Request.Context(), id); err != nil {
		s.fail(c, err)
		return
	}
	s.audit(c, "token deleted", "token_id", id)
	writeJSON(c, http.StatusOK, api.DeletedResponse{Deleted: id})
}

// GET /v1/auth/whoami: the caller's token. Without access control on this
// member there is no caller to describe: 401 like a missing token, saying
// that access control is off rather than that a token is required.
func (s *Server) whoami(c *gin.Context) {
	p := principal(c)
	if p == nil && bearer(c) == "" {
		s.fail(c, fmt.Errorf("%w: access control is off: no token was sent, and there is no caller to describe", registry.ErrUnauthenticated))
		return
	}
	if p == nil {
		var err error
		if _, p, err = s.authenticate(c); err != nil {
			s.fail(c, err)
			return
		}
	}
	writeJSON(c, http.StatusOK, api.WhoAmI{ID: p.TokenID, Name: p.Name, Roles: append([]string{}, p.Roles...), Admin: p.Admin()})
}

// authState reads the tables: linearizable unless ?stale=true.
func (s *Server) authState(c *gin.Context) (*fsm.State, error) {
	q := newQuery(c)
	stale := q.flag("stale")
	if q.err != nil {
		return nil, q.err
	}
	return s.read(c, stale)
}
