package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/rosterhq/roster/api"
	"github.com/rosterhq/roster/fsm"
	"github.com/rosterhq/roster/registry"
)

// Errors of the HTTP layer itself. Everything else comes from fsm or
// registry and is classified by errorStatus.
var (
	errRouteNotFound    = errors.New("no such route")
	errMethodNotAllowed = errors.New("method not allowed on this route")
	errPanic            = errors.New("internal error")
)

// invalidf returns an error that maps to 400 invalid_argument.
func invalidf(format string, a ...any) error {
	return fmt.Errorf("%w: %s", fsm.ErrInvalidArgument, fmt.Sprintf(format, a...))
}

// keyNotFound returns an error that maps to 404 not_found.
func keyNotFound(key string) error {
	return fmt.Errorf("%w: %q", fsm.ErrKeyNotFound, key)
}

// leaseNotFound returns an error that maps to 404 lease_not_found.
func leaseNotFound(id int64) error {
	return fmt.Errorf("%w: %d", fsm.ErrLeaseNotFound, id)
}

// notReady returns an error that maps to 503 not_ready.
func notReady(cause error) error {
	return fmt.Errorf("%w: %v", registry.ErrNotReady, cause)
}

// tooLarge returns an error that maps to 413 too_large.
func tooLarge(what string, limit int64) error {
	return fmt.Errorf("%w: %s is over the limit of %d bytes", registry.ErrTooLarge, what, limit)
}

// errorStatus is the one place that decides the status and code for an
// error. The order matters only where an error could match two entries:
// state errors (which changed nothing) before availability errors.
func errorStatus(err error) (int, api.ErrorDetail) {
	d := api.ErrorDetail{Message: err.Error()}
	var cas *fsm.CASError
	var maxBytes *http.MaxBytesError
	var compacted *fsm.CompactedError
	switch {
	case errors.As(err, &compacted):
		oldest := compacted.Oldest
		d.Code, d.OldestRevision = api.CodeCompacted, &oldest
		return http.StatusGone, d
	case errors.As(err, &cas):
		cur := cas.Current
		d.Code, d.CurrentModRevision = api.CodeCASFailed, &cur
		return http.StatusConflict, d
	case errors.Is(err, fsm.ErrCASFailed):
		// A bare sentinel without the revision: still a conflict; the
		// contract promises the field, so say 0 rather than omit it.
		var cur int64
		d.Code, d.CurrentModRevision = api.CodeCASFailed, &cur
		return http.StatusConflict, d
	case errors.Is(err, registry.ErrUnauthenticated):
		d.Code = api.CodeUnauthenticated
		return http.StatusUnauthorized, d
	case errors.Is(err, registry.ErrPermissionDenied):
		d.Code = api.CodePermissionDenied
		return http.StatusForbidden, d
	case errors.Is(err, fsm.ErrLeaseExists), errors.Is(err, fsm.ErrTokenExists):
		d.Code = api.CodeAlreadyExists
		return http.StatusConflict, d
	case errors.Is(err, fsm.ErrRoleNotFound), errors.Is(err, fsm.ErrTokenNotFound):
		d.Code = api.CodeNotFound
		return http.StatusNotFound, d
	case errors.Is(err, fsm.ErrLeaseNotFound):
		d.Code = api.CodeLeaseNotFound
		return http.StatusNotFound, d
	case errors.Is(err, fsm.ErrKeyNotFound), errors.Is(err, errRouteNotFound), errors.Is(err, registry.ErrNotMember):
		d.Code = api.CodeNotFound
		return http.StatusNotFound, d
	case errors.Is(err, errMethodNotAllowed):
		d.Code = api.CodeMethodNotAllowed
		return http.StatusMethodNotAllowed, d
	case errors.Is(err, fsm.ErrInvalidArgument):
		d.Code = api.CodeInvalidArgument
		return http.StatusBadRequest, d
	case errors.Is(err, registry.ErrTooLarge), errors.As(err, &maxBytes):
		d.Code = api.CodeTooLarge
		return http.StatusRequestEntityTooLarge, d
	case errors.Is(err, errRateLimited):
		d.Code = api.CodeRateLimited
		return http.StatusTooManyRequests, d
	case errors.Is(err, registry.ErrNotReady):
		d.Code = api.CodeNotReady
		return http.StatusServiceUnavailable, d
	case errors.Is(err, registry.ErrClusterMismatch):
		// After not_ready: a member that met another cluster's entries
		// is not ready (503); a join from another cluster is a conflict.
		d.Code = api.CodeClusterMismatch
		return http.StatusConflict, d
	case errors.Is(err, registry.ErrNoLeader), errors.Is(err, registry.ErrClosed):
		// Both promise that nothing was proposed, so 503 is honest.
		d.Code = api.CodeNoLeader
		return http.StatusServiceUnavailable, d
	case errors.Is(err, registry.ErrTimeout), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, context.Canceled):
		// The outcome is unknown: the write may still commit. A canceled
		// request (the client went away) is in the same position.
		d.Code = api.CodeTimeout
		return http.StatusGatewayTimeout, d
	default:
		// fsm.ErrFailed and anything unforeseen.
		d.Code = api.CodeInternal
		return http.StatusInternalServerError, d
	}
}

// fail answers the request with the error's status and envelope.
// Server-side failures are logged; client errors are the client's news, and
// 503 is the expected answer during an election or from /readyz probes, so
// it is logged at debug level only.
func (s *Server) fail(c *gin.Context, err error) {
	status, d := errorStatus(err)
	withholdCASRevision(c, &d)
	if status >= 500 {
		level := slog.LevelDebug
		switch status {
		case http.StatusInternalServerError:
			level = slog.LevelError
		case http.StatusGatewayTimeout:
			level = slog.LevelWarn
		}
		s.log.Log(c.Request.Context(), level, "request failed",
			"method", c.Request.Method, "path", c.Request.URL.Path, "status", status, "err", err)
	}
	s.errorRevision(c)
	if demoPaths[c.Request.URL.Path] {
		writeJSON(c, status, demoError{Error: d.Message})
	} else {
		writeJSON(c, status, api.ErrorResponse{Error: &d})
	}
	c.Abort()
}

// casWithheld is the message of a cas_failed answer to a token that may
// write the key but not read it: neither it nor the message says the
// key's mod revision (API.md: a compare-and-swap needs write only).
const casWithheld = "compare-and-swap failed: the key's mod revision is not the one given (this token may not read the key, so the current one is not shown)"

// withholdCASRevision keeps a key's current mod revision out of a
// cas_failed answer to a caller that may not read the key, as Consul
// answers a write-only ACL's failed CAS: the revision is metadata of the
// key, and a write-only token (a drop box) must not learn when others
// wrote it. Without access control (no principal), and for a token with
// read on the key, the answer is unchanged. Every route that answers
// cas_failed names its key as the :key parameter; on a route without one
// the revision is kept back from all but a token that may read every key.
func withholdCASRevision(c *gin.Context, d *api.ErrorDetail) {
	if d.CurrentModRevision == nil {
		return
	}
	if p := principal(c); p != nil && !p.CanRead(c.Param("key")) {
		d.CurrentModRevision, d.Message = nil, casWithheld
	}
}

// demoError is an error of the gin + raft demo's routes (demoPaths), in
// that demo's shape, {"error": "<message>"}, with the same status as any
// other route (compat_seed.go).
type demoError struct {
	Error string `json:"error"`
}

// errorRevision gives an error answer of a KV or watch route the
// X-Roster-Revision every such answer carries (API.md), when the route
// failed before it read a state: this member's own revision.
func (s *Server) errorRevision(c *gin.Context) {
	if c.Writer.Header().Get(api.HeaderRevision) != "" {
		return
	}
	if p := c.FullPath(); !strings.HasPrefix(p, "/v1/kv/") && !strings.HasPrefix(p, "/v1/watch/") {
		return
	}
	if st, err := s.b.Read(c.Request.Context(), true); err == nil {
		writeRevision(c, st.Revision())
	}
}
