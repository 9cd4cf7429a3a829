package api

// Error codes of the HTTP API (docs/api.md, Errors), plus not_ready for
// /readyz.
const (
	CodeInvalidArgument  = "invalid_argument"  // 400
	CodeUnauthenticated  = "unauthenticated"   // 401
	CodePermissionDenied = "permission_denied" // 403
	CodeNotFound         = "not_found"         // 404: key, or route
	CodeLeaseNotFound    = "lease_not_found"   // 404
	CodeMethodNotAllowed = "method_not_allowed"
	CodeCASFailed        = "cas_failed"       // 409, with current_mod_revision
	CodeAlreadyExists    = "already_exists"   // 409
	CodeClusterMismatch  = "cluster_mismatch" // 409: a join from another cluster's member
	CodeCompacted        = "compacted"        // 410, with oldest_revision
	CodeTooLarge         = "too_large"        // 413
	CodeRateLimited      = "rate_limited"     // 429
	CodeInternal         = "internal"         // 500
	CodeNoLeader         = "no_leader"        // 503: nothing changed
	CodeNotReady         = "not_ready"        // 503, /readyz
	CodeTimeout          = "timeout"          // 504: the outcome is unknown
)

// ErrorResponse is the body of every 4xx/5xx answer. Error is a pointer so
// that a reader can tell the envelope from some other JSON body.
type ErrorResponse struct {
	Error *ErrorDetail `json:"error"`
}

// ErrorDetail is the error inside the envelope.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// CurrentModRevision accompanies cas_failed: the key's mod revision,
	// 0 when it is absent (a pointer so that 0 is still written).
	CurrentModRevision *int64 `json:"current_mod_revision,omitempty"`
	// OldestRevision accompanies compacted: the smallest revision a watch
	// may resume after.
	OldestRevision *int64 `json:"oldest_revision,omitempty"`
}
