package resp

import (
	"context"

	"github.com/rosterhq/roster/fsm"
	"github.com/rosterhq/roster/registry"
)

// Backend is what the Redis front end needs from a node. *registry.Node
// implements it; the interface lives here, with its only user.
type Backend interface {
	Put(ctx context.Context, p fsm.Put) (fsm.Result, error)
	Delete(ctx context.Context, d fsm.Delete) (fsm.Result, error)
	// Txn applies puts, deletes and grants all or nothing in one entry.
	Txn(ctx context.Context, ops []fsm.Command) (fsm.Result, error)
	// Batch proposes writes in order and waits for all (group commit); on
	// a follower it forwards them to the leader as one request.
	Batch(ctx context.Context, cmds []fsm.Command) []registry.BatchResult
	// Read returns a state to read from: linearizable unless stale.
	Read(ctx context.Context, stale bool) (*fsm.State, error)
	// History is the log of recent events of this member's applied state.
	History() *fsm.History
	Cluster(ctx context.Context) (registry.ClusterInfo, error)
	AddMember(ctx context.Context, req registry.JoinRequest) error
	RemoveMember(ctx context.Context, id string) error
	Snapshot(ctx context.Context) (index uint64, err error)
	ID() string
	MaxValueBytes() int
	// ReadForUnknownToken is a linearizable read (bounded per member)
	// for AUTH with a token this member's replica does not know: once it
	// returns, the replica holds every token whose creation was
	// acknowledged before the call.
	ReadForUnknownToken(ctx context.Context) (*fsm.State, error)
	// MayApply is the rule set of writes (registry.MayApply): what g
	// needs to make the write c, judged against st, when the answer
	// shows a. A connection's writes are checked with it (session.go), as
	// the leader checks a forwarded one.
	MayApply(g registry.Grants, st *fsm.State, c fsm.Command, a registry.Answer) error
}

var _ Backend = (*registry.Node)(nil)

// Authenticator turns the token of AUTH into an Identity. Config.Auth nil
// means access control is off: every command is allowed and AUTH answers
// that no password is configured, as Redis does.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (Identity, error)
}

// Identity is what an authenticated connection may do. Keys and prefixes
// are Roster keys (with the leading /); a prefix is covered by a rule whose
// own prefix is a prefix of it.
type Identity interface {
	CanRead(keyOrPrefix string) bool
	CanWrite(keyOrPrefix string) bool
	Admin() bool
}
