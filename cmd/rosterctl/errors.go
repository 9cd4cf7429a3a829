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
	exitNotFound      = 3 // a key, member, role or token
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
	return &codedError{code: exitNotFound, msg: fmt.Sprintf("key %q not found", key), err: err}
}

// namedNotFound gives exit code 3 to the server's 404 not_found for the
// member, role or token a command names, with the server's message (which
// names it). Only commands that name one call it: other routes answer
// not_found for other reasons (a member removed from the cluster answers
// everything so, see registry.ErrNotMember), which stay "any other error".
func namedNotFound(err error) error {
	if errors.Is(err, client.ErrKeyNotFound) {
		return &codedError{code: exitNotFound, msg: message(err), err: err}
	}
	return err
}

func leaseNotFound(id client.LeaseID, err error) error {
	return &codedError{code: exitLeaseNotFound, msg: fmt.Sprintf("lease %s not found", id), err: err}
}

// classify maps an error to its exit code and the message to print, and
// says whether the "Run … --help" hint goes with it: only for a mistake on
// the command line, found by cobra, by rosterctl or by the client before
// anything was sent. A request the server refused as invalid (400
// invalid_argument, 413 too_large) is exit code 2 too, "bad input", but
// the hint would send the user to the flags for what is the cluster's
// answer (the last voter, say): the message names the server's status and
// code instead.
func (a *app) classify(err error) (code int, msg string, hint bool) {
	var ce *codedError
	if errors.As(err, &ce) {
		return ce.code, ce.msg, ce.code == exitUsage
	}
	// Exit code 3: get and del report a key not found themselves
	// (keyNotFound), the commands that name a member, role or token
	// theirs (namedNotFound).
	msg = message(err)
	if !a.started {
		return exitUsage, msg, true // cobra refused the flags or arguments
	}
	var cas *client.CASError
	var se *client.StatusError
	var ne net.Error
	var oe *net.OpError
	switch {
	case errors.Is(err, client.ErrUnauthenticated), errors.Is(err, client.ErrPermissionDenied):
		return exitDenied, msg, false
	case errors.Is(err, client.ErrInvalidArgument), errors.Is(err, client.ErrTooLarge):
		if errors.As(err, &se) {
			return exitUsage, refused(err, se), false
		}
		return exitUsage, msg, true
	case errors.Is(err, client.ErrLeaseNotFound):
		return exitLeaseNotFound, msg, false
	case errors.As(err, &cas):
		return exitCASFailed, msg, false
	case errors.Is(err, client.ErrCASFailed):
		return exitCASFailed, msg, false
	case errors.Is(err, client.ErrNoLeader), errors.Is(err, client.ErrTimeout),
		errors.Is(err, context.DeadlineExceeded):
		return exitUnavailable, msg, false
	case errors.As(err, &se) && unavailableStatus(se.Status):
		return exitUnavailable, msg, false
	case errors.Is(err, context.Canceled):
		return exitInterrupted, "interrupted", false
	case errors.As(err, &oe), errors.As(err, &ne):
		return exitUnavailable, msg, false
	}
	return exitError, msg, false
}

// refused is the message of a request the server refused (se, inside
// err): its message, then its status and code. A wrapped answer's text
// (the client's StatusError.Error) already holds both.
func refused(err error, se *client.StatusError) string {
	if err != error(se) {
		return message(err)
	}
	return fmt.Sprintf("%s (refused by the server: %d %s)", message(err), se.Status, se.Code)
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
