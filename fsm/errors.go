package fsm

import (
	"errors"
	"fmt"
)

// Sentinel errors. Commands that are valid but fail on the current state
// return one of these inside their Result, having changed nothing.
var (
	ErrInvalidArgument = errors.New("invalid argument")
	ErrLeaseNotFound   = errors.New("lease not found")
	ErrLeaseExists     = errors.New("lease already exists")
	ErrCASFailed       = errors.New("compare-and-swap failed")
	ErrKeyNotFound     = errors.New("key not found")
	// ErrFailed means the state machine stopped after a fatal error (an
	// undecodable entry or a storage failure); the node must stop too.
	ErrFailed = errors.New("fsm: state machine stopped")
	// ErrOverflow is an increment of an integer whose result leaves int64
	// (the Redis port answers it as Redis 7 does, apart from a value that
	// is no integer). It is an ErrInvalidArgument too, so front ends that
	// do not tell the two apart answer both as before. A forwarding member
	// recognises it by its message (DecodeResult), which is why the text
	// must not change: the result codec has no code of its own for it, so
	// that members of an older version still decode the answer.
	ErrOverflow = fmt.Errorf("%w: increment would overflow int64", ErrInvalidArgument)
)

// CASError is a failed compare-and-swap; errors.Is(err, ErrCASFailed) holds.
type CASError struct {
	// Current is the key's mod revision, 0 when the key is absent.
	Current int64
}

func (e *CASError) Error() string {
	return fmt.Sprintf("compare-and-swap failed: current mod_revision is %d", e.Current)
}

// Is makes errors.Is(err, ErrCASFailed) true.
func (e *CASError) Is(target error) bool { return target == ErrCASFailed }

func invalid(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidArgument, fmt.Sprintf(format, a...))
}
