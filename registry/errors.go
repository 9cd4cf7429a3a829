package registry

import (
	"errors"
	"fmt"
)

// Sentinel errors of the node. State errors (lease not found, CAS failed,
// invalid argument) come from package fsm and pass through unchanged.
var (
	// ErrNoLeader: no leader is known, or this node is not the leader and
	// cannot forward. Nothing was proposed.
	ErrNoLeader = errors.New("no leader")
	// ErrTimeout: the command may have been proposed and may still commit.
	ErrTimeout = errors.New("timed out waiting for commit")
	// ErrNotReady: the member is not ready to serve (readyz).
	ErrNotReady = errors.New("not ready")
	// ErrClosed: the node is shutting down.
	ErrClosed = errors.New("node is closed")
	// ErrTooLarge: a value over the configured limit.
	ErrTooLarge = errors.New("too large")
	// ErrNotMember: the member is not part of the raft configuration (at
	// the address given).
	ErrNotMember = errors.New("not a member of the cluster")
)

// NotLeaderError is returned when an operation that must run on the leader
// reaches a follower; Leader is the leader's advertised HTTP address ("" when
// unknown). errors.Is(err, ErrNoLeader) holds so callers that cannot forward
// treat it as no leader.
type NotLeaderError struct {
	LeaderID   string
	LeaderHTTP string
}

func (e *NotLeaderError) Error() string {
	if e.LeaderHTTP == "" {
		return "not the leader, and no leader is known"
	}
	return fmt.Sprintf("not the leader; the leader is %s at %s", e.LeaderID, e.LeaderHTTP)
}

// Is makes errors.Is(err, ErrNoLeader) true.
func (e *NotLeaderError) Is(target error) bool { return target == ErrNoLeader }
