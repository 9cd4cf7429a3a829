package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/rosterhq/roster/api"
)

// Sentinel errors. Every error the server answers is a *StatusError (or a
// *CASError or *CompactedError wrapping one) that matches the sentinel of
// its code under errors.Is, so callers test the meaning, not the status.
var (
	// ErrKeyNotFound: the key does not exist (404 not_found). A server
	// without the route asked for answers the same code.
	ErrKeyNotFound = errors.New("roster: key not found")
	// ErrLeaseNotFound: the lease does not exist or expired (404 lease_not_found).
	ErrLeaseNotFound = errors.New("roster: lease not found")
	// ErrCASFailed: a compare-and-swap found another mod revision (409
	// cas_failed). errors.As with *CASError gives the current one.
	ErrCASFailed = errors.New("roster: compare-and-swap failed")
	// ErrAlreadyExists: a grant named a lease ID that is taken (409
	// already_exists), or a create-only put or Create found the key present
	// (then the error is also a *CASError).
	ErrAlreadyExists = errors.New("roster: already exists")
	// ErrCompacted: a watch asked for events older than the history the
	// server keeps (410 compacted). errors.As with *CompactedError gives the
	// oldest revision still available. Re-list, then watch again.
	ErrCompacted = errors.New("roster: revision compacted")
	// ErrNoLeader: the cluster has no leader (503 no_leader); nothing was
	// changed. The client already retried on other members before
	// returning it.
	ErrNoLeader = errors.New("roster: no leader")
	// ErrTimeout: the server (504 timeout) or the client's RequestTimeout
	// gave up on a call. For a write the outcome is unknown: it may still
	// commit. Read before retrying a non-idempotent write.
	ErrTimeout = errors.New("roster: request timed out")
	// ErrInvalidArgument: the request was refused as malformed (400
	// invalid_argument), or the client refused it before sending.
	ErrInvalidArgument = errors.New("roster: invalid argument")
	// ErrTooLarge: a value or body is over the server's limit (413 too_large).
	ErrTooLarge = errors.New("roster: too large")
	// ErrUnauthenticated: the member enforces access control and the
	// request had no token, or one it does not know (401).
	ErrUnauthenticated = errors.New("roster: unauthenticated")
	// ErrPermissionDenied: the token's roles do not allow the request
	// (403); nothing was changed.
	ErrPermissionDenied = errors.New("roster: permission denied")
	// ErrRateLimited: the members refused the request for being over one
	// of their limits (429 rate_limited: connections, watch streams,
	// blocking reads, request bytes held); nothing was changed. The client
	// retried on the other members, with backoff, until the call's
	// deadline before returning it.
	ErrRateLimited = errors.New("roster: rate limited")
	// ErrClosed: the Client (or Registration, Resolver) was closed.
	ErrClosed = errors.New("roster: client closed")
)

// codeSentinel maps the contract's error codes to the sentinels.
var codeSentinel = map[string]error{
	api.CodeNotFound:         ErrKeyNotFound,
	api.CodeLeaseNotFound:    ErrLeaseNotFound,
	api.CodeCASFailed:        ErrCASFailed,
	api.CodeAlreadyExists:    ErrAlreadyExists,
	api.CodeCompacted:        ErrCompacted,
	api.CodeNoLeader:         ErrNoLeader,
	api.CodeTimeout:          ErrTimeout,
	api.CodeInvalidArgument:  ErrInvalidArgument,
	api.CodeTooLarge:         ErrTooLarge,
	api.CodeUnauthenticated:  ErrUnauthenticated,
	api.CodePermissionDenied: ErrPermissionDenied,
	api.CodeRateLimited:      ErrRateLimited,
}

// StatusError is an error answer from a member: the HTTP status and the
// contract's error code and message. Codes without a sentinel (internal,
// method_not_allowed, ...) are reported as a plain StatusError.
type StatusError struct {
	Status  int    // HTTP status, e.g. 404
	Code    string // error.code, e.g. "lease_not_found"; "" when the body was not the JSON envelope
	Message string // error.message
}

func (e *StatusError) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("roster: %d %s: %s", e.Status, http.StatusText(e.Status), e.Message)
	}
	return fmt.Sprintf("roster: %s (%d): %s", e.Code, e.Status, e.Message)
}

// Is matches the sentinel of the error's code.
func (e *StatusError) Is(target error) bool {
	s, ok := codeSentinel[e.Code]
	return ok && s == target
}

// CASError is a failed compare-and-swap (409 cas_failed): the key's mod
// revision was not the one asked for. errors.Is(err, ErrCASFailed) holds;
// so does errors.Is(err, ErrAlreadyExists) when the write was create-only.
type CASError struct {
	// CurrentModRevision is the key's mod revision when the write was
	// refused; 0 when the key is absent.
	CurrentModRevision int64
	// RevisionWithheld: the server did not say the key's mod revision
	// (the token may write the key but not read it), so
	// CurrentModRevision is 0 and means nothing.
	RevisionWithheld bool
	createOnly       bool
	status           *StatusError
}

func (e *CASError) Error() string {
	switch {
	case e.RevisionWithheld && e.createOnly:
		return "roster: key already exists"
	case e.RevisionWithheld:
		return "roster: compare-and-swap failed (the token may not read the key: its mod revision is not shown)"
	case e.createOnly:
		return fmt.Sprintf("roster: key already exists (mod revision %d)", e.CurrentModRevision)
	}
	return fmt.Sprintf("roster: compare-and-swap failed: current mod revision is %d", e.CurrentModRevision)
}

// Is matches ErrCASFailed, and ErrAlreadyExists for a create-only write.
func (e *CASError) Is(target error) bool {
	return target == ErrCASFailed || (e.createOnly && target == ErrAlreadyExists)
}

// Unwrap gives the *StatusError of the answer.
func (e *CASError) Unwrap() error { return e.status }

// CompactedError is 410 compacted: the events a watch asked for are no
// longer kept. errors.Is(err, ErrCompacted) holds.
type CompactedError struct {
	// OldestRevision is the smallest revision a watch may resume after.
	OldestRevision int64
	status         *StatusError
}

func (e *CompactedError) Error() string {
	return fmt.Sprintf("roster: revision compacted: the history starts after revision %d", e.OldestRevision)
}

// Is matches ErrCompacted.
func (e *CompactedError) Is(target error) bool { return target == ErrCompacted }

// Unwrap gives the *StatusError of the answer.
func (e *CompactedError) Unwrap() error { return e.status }

// decodeError turns an error answer into the typed error. A body that is
// not the envelope (a proxy's page, say) still gives a StatusError, with
// the start of the body as its message.
func decodeError(status int, body []byte) error {
	var env api.ErrorResponse
	if err := json.Unmarshal(body, &env); err != nil || env.Error == nil {
		msg := strings.TrimSpace(string(body))
		if len(msg) > 200 {
			msg = msg[:200] + "…"
		}
		if msg == "" {
			msg = http.StatusText(status)
		}
		return &StatusError{Status: status, Message: msg}
	}
	se := &StatusError{Status: status, Code: env.Error.Code, Message: env.Error.Message}
	switch se.Code {
	case api.CodeCASFailed:
		ce := &CASError{status: se}
		if env.Error.CurrentModRevision != nil {
			ce.CurrentModRevision = *env.Error.CurrentModRevision
		} else {
			ce.RevisionWithheld = true
		}
		return ce
	case api.CodeCompacted:
		ce := &CompactedError{status: se}
		if env.Error.OldestRevision != nil {
			ce.OldestRevision = *env.Error.OldestRevision
		}
		return ce
	}
	return se
}

// statusOf returns the *StatusError inside err, if any.
func statusOf(err error) *StatusError {
	var se *StatusError
	if errors.As(err, &se) {
		return se
	}
	return nil
}
