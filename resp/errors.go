package resp

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/rosterhq/roster/fsm"
	"github.com/rosterhq/roster/registry"
)

// Errors of the Redis front end itself; the rest come from fsm and
// registry. errorText is the one place that turns an error into the text of
// a RESP error reply.
var (
	errSyntax       = errors.New("syntax error")
	errNotInteger   = errors.New("value is not an integer or out of range")
	errDecrOverflow = errors.New("decrement would overflow")
	errExpireTime   = errors.New("invalid expire time")
	errNoAuth       = errors.New("authentication required")
	errAuthDisabled = errors.New("AUTH called without any password configured")
	errWrongPass    = errors.New("invalid token")
	errDBIndex      = errors.New("DB index is out of range")
	errBadCursor    = errors.New("invalid cursor")
	errContended    = errors.New("the key kept changing; try again")
	errClientName   = errors.New("Client names cannot contain spaces, newlines or special characters.")
	errExpireOption = errors.New("Unsupported option")
	errExpireCombo  = errors.New("options at the same time are not compatible")
)

// unknownCommand and wrongArity are reply errors naming the command.
type unknownCommand struct{ name string }

func (e unknownCommand) Error() string { return fmt.Sprintf("unknown command '%s'", e.name) }

// unknownSubcommand is Redis 7's answer to a subcommand it does not know.
type unknownSubcommand struct{ cmd, sub string }

func (e unknownSubcommand) Error() string {
	sub := e.sub
	if len(sub) > 128 {
		sub = sub[:128]
	}
	return fmt.Sprintf("unknown subcommand '%s'. Try %s HELP.", oneLine(sub), strings.ToUpper(e.cmd))
}

type wrongArity struct{ name string }

func (e wrongArity) Error() string {
	return fmt.Sprintf("wrong number of arguments for '%s' command", e.name)
}

// noPerm is a command the connection's identity may not run.
type noPerm struct{ what string }

func (e noPerm) Error() string { return e.what }

// errorText is the RESP error reply for err, without the leading '-'.
func errorText(err error) string {
	var unknown unknownCommand
	var unknownSub unknownSubcommand
	var arity wrongArity
	var perm noPerm
	var rule *registry.AccessError
	var cas *fsm.CASError
	var aborted execAborted
	switch {
	case errors.As(err, &aborted):
		if errors.As(aborted.cause, &arity) {
			// Redis's reason here is the bare message: its arity error
			// has no code of its own (rejectCommandFormat).
			return "EXECABORT Transaction discarded because of: " + arity.Error()
		}
		return "EXECABORT Transaction discarded because of: " + errorText(aborted.cause)
	case errors.As(err, &unknown), errors.As(err, &unknownSub), errors.As(err, &arity):
		return "ERR " + err.Error()
	case errors.As(err, &perm):
		return "NOPERM this token has no permission to " + perm.what
	case errors.As(err, &rule):
		return "NOPERM this token has no permission to " + noPermText(rule)
	case errors.Is(err, errNoAuth), errors.Is(err, registry.ErrUnauthenticated):
		return "NOAUTH Authentication required."
	case errors.Is(err, registry.ErrPermissionDenied):
		// The leader refused a forwarded write (registry.WithCaller).
		return "NOPERM " + oneLine(err.Error())
	case errors.Is(err, errExecAbort):
		return "EXECABORT " + err.Error()
	case errors.Is(err, errNestedMulti), errors.Is(err, errExecNoMulti), errors.Is(err, errDiscardNoMult),
		errors.Is(err, errWatchInMulti), errors.Is(err, errNotInTxn), errors.Is(err, errTxnTooBig):
		return "ERR " + err.Error()
	case errors.Is(err, errAuthDisabled):
		return "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"
	case errors.Is(err, errWrongPass):
		return "WRONGPASS invalid username-password pair or user is disabled."
	case errors.Is(err, errSyntax), errors.Is(err, errNotInteger), errors.Is(err, errExpireTime),
		errors.Is(err, errDBIndex), errors.Is(err, errBadCursor), errors.Is(err, errContended),
		errors.Is(err, errClientName), errors.Is(err, errExpireOption), errors.Is(err, errExpireCombo),
		errors.Is(err, errDecrOverflow):
		return "ERR " + err.Error()
	case errors.As(err, &cas):
		// Every command that compares handles a failed compare itself (a
		// nil reply, 0, another try); should one ever reach the client, it
		// does not say the key's mod revision, which a token that may
		// write the key but not read it must not learn (as over HTTP).
		return "ERR compare-and-swap failed"
	case errors.Is(err, fsm.ErrOverflow):
		return "ERR increment or decrement would overflow"
	case errors.Is(err, fsm.ErrInvalidArgument), errors.Is(err, registry.ErrTooLarge),
		errors.Is(err, fsm.ErrLeaseNotFound), errors.Is(err, fsm.ErrLeaseExists),
		errors.Is(err, fsm.ErrKeyNotFound), errors.Is(err, registry.ErrNotMember):
		return "ERR " + oneLine(err.Error())
	case errors.Is(err, registry.ErrNoLeader), errors.Is(err, registry.ErrClosed):
		// Nothing was proposed: the client may retry.
		return "TRYAGAIN no leader"
	case errors.Is(err, registry.ErrTimeout), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, context.Canceled):
		// The outcome is unknown: the write may still commit.
		return "TIMEOUT " + oneLine(err.Error())
	}
	return "ERR internal error: " + oneLine(err.Error())
}

// noPermText is a refusal by the rules of writes in the words of a
// NOPERM reply: what may not be done and the key, whole, as Redis names
// the key of a refused command.
func noPermText(e *registry.AccessError) string {
	s := e.Op
	if e.Key != "" {
		s += " " + e.Key
	}
	if e.Lease != 0 {
		s += ", attached to lease " + strconv.FormatInt(e.Lease, 10)
	}
	if e.Key == "" && e.Why != "" {
		s += " (" + e.Why + ")"
	}
	return oneLine(s)
}

// oneLine keeps a message on one line: a RESP error ends at CR LF.
func oneLine(s string) string {
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
}
