package httpapi

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/rosterhq/roster/fsm"
	"github.com/rosterhq/roster/registry"
)

// Access control (API.md "Security"). With Config.Auth, every request
// passes authorize: the one place that decides, from routeAccess, what a
// route needs. A route missing from the table is refused (and a test
// checks every registered route has an entry), so a new route cannot
// silently skip the check. Refusals happen before any handler or
// forwarding runs, so they change nothing. A route that writes checks the
// command it proposes with the registry's rules (authwrite.go); reads
// are checked here, with the token's CanRead and CanReadPrefix.

// access is what one route needs.
type access struct {
	// open routes need no token (probes, metrics, the console's assets).
	open bool
	// check decides for a valid token; nil: any valid token will do.
	check func(s *Server, c *gin.Context, p *registry.Principal) error
	// admin marks refusals worth an audit line: the route needs admin.
	admin bool
}

var (
	openRoute = access{open: true}
	anyToken  = access{}
	adminOnly = access{check: needAdmin, admin: true}
	kvRead    = access{check: checkKVRead}
	kvWrite   = access{check: checkKVWrite}
	leaseRead = access{check: checkLeaseInspect}
	revoke    = access{check: checkRevoke}
	// The routes that change the membership or the access control
	// tables: what the rules of writes say of their records (admin).
	membersWrite = adminWrite(fsm.SetMember{})
	authWrite    = adminWrite(fsm.PutRole{})
)

// routeAccess maps "METHOD /registered/path" to what the route needs.
var routeAccess = map[string]access{
	"POST /v1/leases":                anyToken,
	"GET /v1/leases":                 adminOnly,
	"POST /v1/leases/keepalive":      {check: checkKeepAliveBatch},
	"GET /v1/leases/:id":             leaseRead,
	"DELETE /v1/leases/:id":          revoke,
	"POST /v1/leases/:id/keepalive":  {check: checkKeepAlive},
	"GET /v1/kv/*key":                kvRead,
	"PUT /v1/kv/*key":                kvWrite,
	"DELETE /v1/kv/*key":             kvWrite,
	"POST /v1/kv/*key":               {check: checkIncr},
	"GET /v1/watch/*key":             kvRead,
	"GET /v1/cluster":                anyToken,
	"POST /v1/cluster/snapshot":      adminOnly,
	"POST /v1/cluster/members":       membersWrite,
	"DELETE /v1/cluster/members/:id": membersWrite,
	"PUT /v1/cluster/members/:id":    membersWrite,
	"PUT /v1/auth/roles/:name":       authWrite,
	"GET /v1/auth/roles":             adminOnly,
	"GET /v1/auth/roles/:name":       adminOnly,
	"DELETE /v1/auth/roles/:name":    authWrite,
	"POST /v1/auth/tokens":           authWrite,
	"GET /v1/auth/tokens":            adminOnly,
	"DELETE /v1/auth/tokens/:id":     authWrite,
	"GET /v1/auth/whoami":            anyToken,
	"GET /healthz":                   openRoute,
	"HEAD /healthz":                  openRoute,
	"GET /readyz":                    openRoute,
	"HEAD /readyz":                   openRoute,
	"GET /metrics":                   openRoute,
	"GET /":                          openRoute, // the console: it asks for a token itself
	"HEAD /":                         openRoute,
	"GET /ui/*file":                  openRoute,
	"HEAD /ui/*file":                 openRoute,
	"GET /v1/cluster/status":         anyToken,
	"POST /lease/grant":              anyToken,
	"POST /lease/keepalive/:id":      {check: checkCompatKeepAlive},
	"POST /lease/revoke/:id":         revoke,
	"POST /lease/timetolive/:id":     leaseRead,
	"POST /lease/kv/*key":            {check: checkCompatLeaseKV},
	"PUT /key/*key":                  kvWrite,
	"GET /key/*key":                  kvRead,
	"DELETE /key/*key":               kvWrite,
	"POST /join":                     membersWrite,
	"POST /key":                      {check: checkSetKeys},
	"POST /put":                      {check: checkDemoWrite(true, demoPut)},
	"POST /get":                      {check: checkDemoRead},
	"POST /delete":                   {check: checkDemoWrite(false, demoDelete)},
	"POST /inc":                      {check: checkDemoWrite(true, demoIncr)},
}

// debugMethods are the methods gin's Any registers /debug/*path under
// (Config.Debug, rosterd's -pprof): profiles, traces and the process's
// command line are for operators, admin tokens only.
var debugMethods = []string{
	http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch,
	http.MethodHead, http.MethodOptions, http.MethodDelete, http.MethodConnect,
	http.MethodTrace,
}

func init() {
	for _, m := range debugMethods {
		routeAccess[m+" /debug/*path"] = adminOnly
	}
}

// ctxPrincipal is the gin context key of the request's *registry.Principal,
// ctxAuthState of the *fsm.State it was resolved against.
const (
	ctxPrincipal  = "roster.principal"
	ctxAuthState  = "roster.auth_state"
	ctxPeekedBody = "roster.peeked_body" // see peekBody
)

// authenticate resolves the request's bearer token against this member's
// replica, and returns the state it used. A token the replica does not
// know may be one created a moment ago that this member has not applied
// yet: it is resolved again after a linearizable read
// (registry.AuthenticateLatest), and refused only if unknown there.
func (s *Server) authenticate(c *gin.Context) (*fsm.State, *registry.Principal, error) {
	st, err := s.b.Read(c.Request.Context(), true)
	if err != nil {
		return nil, nil, err
	}
	return s.b.AuthenticateLatest(c.Request.Context(), st, bearer(c))
}

// enforced reports whether access control is in force for a request:
// always with Config.Auth, else once this member has applied a state that
// has it on. A state that cannot be read counts as on.
func (s *Server) enforced(c *gin.Context) bool {
	if s.cfg.Auth {
		return true
	}
	st, err := s.b.Read(c.Request.Context(), true)
	return err != nil || st.AccessControlled()
}

// authorize is the access control middleware.
func (s *Server) authorize(c *gin.Context) {
	if !s.enforced(c) {
		c.Next()
		return
	}
	route := c.FullPath()
	if route == "" {
		c.Next() // no such route: 404 or 405, which reveal nothing
		return
	}
	a, ok := routeAccess[c.Request.Method+" "+route]
	if !ok {
		s.refuse(c, nil, true, fmt.Errorf("%w: route %s %s has no access rule", registry.ErrPermissionDenied, c.Request.Method, route))
		return
	}
	if a.open {
		c.Next()
		return
	}
	// Resolved against one state of this member's replica, kept so that a
	// later check of the same token (read, streamRecheck) is free unless
	// the tables changed since.
	st, p, err := s.authenticate(c)
	if err != nil {
		s.refuse(c, nil, a.admin, err)
		return
	}
	c.Set(ctxPrincipal, p)
	c.Set(ctxAuthState, st)
	if a.check != nil {
		if err := a.check(s, c, p); err != nil {
			s.refuse(c, p, a.admin, err)
			return
		}
	}
	// Writes forwarded to the leader name the token, which the leader
	// checks against its own, newer state (registry.WithCaller).
	c.Request = c.Request.WithContext(registry.WithCaller(c.Request.Context(), p))
	c.Next()
}

// bearer is the token of the Authorization header ("" when none).
func bearer(c *gin.Context) string {
	h := c.GetHeader("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// principal is the request's caller; nil when access control is off.
func principal(c *gin.Context) *registry.Principal {
	if v, ok := c.Get(ctxPrincipal); ok {
		return v.(*registry.Principal)
	}
	return nil
}

// refuse answers 401 or 403. Refused admin requests are audited, with the
// token's name (never its secret).
func (s *Server) refuse(c *gin.Context, p *registry.Principal, admin bool, err error) {
	if admin {
		attrs := []any{"method", c.Request.Method, "path", c.Request.URL.Path, "remote", c.ClientIP(), "reason", err.Error()}
		if p != nil {
			attrs = append(attrs, "token", p.Name, "token_id", p.TokenID)
		}
		s.log.Warn("audit: admin request refused", attrs...)
	}
	if status, _ := errorStatus(err); status == http.StatusUnauthorized {
		c.Header("WWW-Authenticate", `Bearer realm="roster"`)
	}
	s.fail(c, err)
}

// audit logs an access control change with the token that made it.
func (s *Server) audit(c *gin.Context, what string, attrs ...any) {
	if p := principal(c); p != nil {
		attrs = append(attrs, "by_token", p.Name, "by_token_id", p.TokenID)
	}
	s.log.Info("audit: "+what, attrs...)
}

func denied(p *registry.Principal, format string, a ...any) error {
	return fmt.Errorf("%w: token %q may not %s", registry.ErrPermissionDenied, p.Name, fmt.Sprintf(format, a...))
}

func needAdmin(_ *Server, c *gin.Context, p *registry.Principal) error {
	if !p.Admin() {
		return denied(p, "%s %s: admin only", c.Request.Method, c.FullPath())
	}
	return nil
}

// checkKVRead: read on the key, or on a rule covering the whole prefix.
func checkKVRead(_ *Server, c *gin.Context, p *registry.Principal) error {
	q := newQuery(c)
	prefix := q.flag("prefix")
	if q.err != nil {
		return q.err
	}
	return mayReadKV(p, c.Param("key"), prefix)
}

func mayReadKV(p *registry.Principal, key string, prefix bool) error {
	if prefix && !p.CanReadPrefix(key) {
		return denied(p, "read every key under %q", clip(key))
	}
	if !prefix && !p.CanRead(key) {
		return denied(p, "read %q", clip(key))
	}
	return nil
}

// read is the state a route answers from. A linearizable read (or one
// that waited, a blocking read) may see access control changes that this
// member had not applied when authorize checked the request: then the
// request is authorized again against that state, since a change is in
// force as soon as it applies.
func (s *Server) read(c *gin.Context, stale bool) (*fsm.State, error) {
	st, err := s.b.Read(c.Request.Context(), stale)
	if err != nil {
		return nil, err
	}
	return st, s.reauthorize(c, st)
}

// reauthorize runs the route's check again, against st, when the tables
// changed since the request was authorized (a pointer comparison in the
// usual case). A request this member let in unchecked, because access
// control was off, is checked once st has it on, as it would be if it
// came now: by its token, if it presented one (a cluster may have roles
// and tokens before its first admin token), else refused.
func (s *Server) reauthorize(c *gin.Context, st *fsm.State) error {
	route := c.Request.Method + " " + c.FullPath()
	if principal(c) == nil {
		if routeAccess[route].open || !s.letInOpen(st) {
			return nil
		}
	} else if v, _ := c.Get(ctxAuthState); st.SameAuth(v.(*fsm.State)) {
		return nil
	}
	p, err := authenticateNow(st, bearer(c))
	if err != nil {
		return err
	}
	if check := routeAccess[route].check; check != nil {
		if err := check(s, c, p); err != nil {
			return err
		}
	}
	c.Set(ctxPrincipal, p)
	c.Set(ctxAuthState, st)
	return nil
}

// letInOpen reports whether a request this member let in without
// checking it (access control was off) must be checked against st: st
// has access control on.
func (s *Server) letInOpen(st *fsm.State) bool {
	return !s.cfg.Auth && st.AccessControlled()
}

// authenticateNow is registry.Authenticate for a request let in while
// access control was off, or one authorized before: a request without a
// token learns why one is needed now.
func authenticateNow(st *fsm.State, token string) (*registry.Principal, error) {
	if token == "" {
		return nil, fmt.Errorf("%w: access control is on in the cluster now: a token is required (Authorization: Bearer <token>)", registry.ErrUnauthenticated)
	}
	return registry.Authenticate(st, token)
}

// streamRecheck is, for a watch, the check of its token against the
// newest state before each batch of events: a token deleted, or a role
// narrowed, while the stream is open ends it; a watch let in unchecked
// while access control was off is checked, by its token if it has one,
// once the state has it on. The watch outlives its request's handler, so
// this holds what it needs rather than the request. The token is
// resolved again only when the tables changed, so open streams cost
// nothing per event. nil when there is nothing to check.
func (s *Server) streamRecheck(c *gin.Context, key string, prefix bool) func(*fsm.State) error {
	var checked *fsm.State // what authorize resolved the token against
	if principal(c) != nil {
		v, _ := c.Get(ctxAuthState)
		checked = v.(*fsm.State)
	} else if s.cfg.Auth {
		return nil // an open route: nothing to check
	}
	token := bearer(c)
	return func(st *fsm.State) error {
		if checked == nil && !s.letInOpen(st) || st.SameAuth(checked) {
			return nil
		}
		p, err := authenticateNow(st, token)
		if err == nil {
			err = mayReadKV(p, key, prefix)
		}
		if err != nil {
			return err
		}
		checked = st
		return nil
	}
}

// peekBody reads the body for a check and puts it back for the handler.
// It keeps it too: a check that runs again (reauthorize), after the handler
// read the body, sees the same bytes.
func peekBody(c *gin.Context, limit int64) ([]byte, error) {
	var data []byte
	if v, ok := c.Get(ctxPeekedBody); ok {
		data = v.([]byte)
	} else {
		var err error
		if data, err = readBody(c, limit); err != nil {
			return nil, err
		}
		c.Set(ctxPeekedBody, data)
	}
	c.Request.Body = io.NopCloser(bytes.NewReader(data))
	c.Request.ContentLength = int64(len(data))
	return data, nil
}

// checkCompatLeaseKV: reads keys under the form's prefix.
func checkCompatLeaseKV(s *Server, c *gin.Context, p *registry.Principal) error {
	if err := s.parseForm(c); err != nil {
		return err
	}
	prefix := c.Request.FormValue("prefix")
	if !strings.HasPrefix(prefix, "/") {
		prefix = "" // every key: only a rule on "/" covers it
	}
	if !p.CanReadPrefix(prefix) {
		return denied(p, "read every key under %q", clip(prefix))
	}
	return nil
}
