package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/rosterhq/roster/client"
)

// Exit codes (see exitCodesHelp).
const (
	exitOK            = 0
	exitError         = 1
	exitUsage         = 2
	exitKeyNotFound   = 3
	exitLeaseNotFound = 4
	exitCASFailed     = 5
	exitUnavailable   = 6
	exitDenied        = 7
	exitInterrupted   = 130
)

// codedError is an error whose exit code the command chose.
type codedError struct {
	code int
	msg  string
	err  error // the cause, if any
}

func (e *codedError) Error() string { return e.msg }
func (e *codedError) Unwrap() error { return e.err }

func usageError(msg string) error { return &codedError{code: exitUsage, msg: msg} }

func keyNotFound(key string, err error) error {
	return &codedError{code: exitKeyNotFound, msg: fmt.Sprintf("key %q not found", key), err: err}
}

func leaseNotFound(id client.LeaseID, err error) error {
	return &codedError{code: exitLeaseNotFound, msg: fmt.Sprintf("lease %s not found", id), err: err}
}

// classify maps an error to its exit code and the message to print.
func (a *app) classify(err error) (int, string) {
	var ce *codedError
	if errors.As(err, &ce) {
		return ce.code, ce.msg
	}
	// Exit code 3 is a key not found, which get and del report
	// themselves (keyNotFound): the server's not_found for a role, token
	// or member that does not exist is any other error.
	msg := message(err)
	if !a.started {
		return exitUsage, msg // cobra refused the flags or arguments
	}
	var cas *client.CASError
	var se *client.StatusError
	var ne net.Error
	var oe *net.OpError
	switch {
	case errors.Is(err, client.ErrUnauthenticated), errors.Is(err, client.ErrPermissionDenied):
		return exitDenied, msg
	case errors.Is(err, client.ErrInvalidArgument), errors.Is(err, client.ErrTooLarge):
		return exitUsage, msg
	case errors.Is(err, client.ErrLeaseNotFound):
		return exitLeaseNotFound, msg
	case errors.As(err, &cas):
		return exitCASFailed, msg
	case errors.Is(err, client.ErrCASFailed):
		return exitCASFailed, msg
	case errors.Is(err, client.ErrNoLeader), errors.Is(err, client.ErrTimeout),
		errors.Is(err, context.DeadlineExceeded):
		return exitUnavailable, msg
	case errors.As(err, &se) && unavailableStatus(se.Status):
		return exitUnavailable, msg
	case errors.Is(err, context.Canceled):
		return exitInterrupted, "interrupted"
	case errors.As(err, &oe), errors.As(err, &ne):
		return exitUnavailable, msg
	}
	return exitError, msg
}

// unavailableStatus: answers that say "not now" rather than "no".
func unavailableStatus(status int) bool {
	switch status {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// message is the text printed after "rosterctl: ": a server's error answer
// gives its message (else its code), other errors their text without the
// client's "roster: " prefixes.
func message(err error) string {
	var se *client.StatusError
	if errors.As(err, &se) && err == error(se) {
		switch {
		case se.Message != "":
			return se.Message
		case se.Code != "":
			return se.Code
		}
	}
	return strings.ReplaceAll(err.Error(), "roster: ", "")
}
