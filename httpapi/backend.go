package httpapi

import (
	"context"

	"github.com/rosterhq/roster/fsm"
	"github.com/rosterhq/roster/registry"
)

// Backend is what the HTTP layer needs from a node. *registry.Node
// implements it; the interface lives here, with its only user.
type Backend interface {
	Grant(ctx context.Context, ttl int64, name string, id int64) (fsm.LeaseStatus, error)
	Revoke(ctx context.Context, id int64) (revision int64, err error)
	// KeepAlive renews leases (duplicates count once): renewed in request
	// order, and the IDs that were not found.
	KeepAlive(ctx context.Context, ids []int64) (renewed []fsm.LeaseStatus, notFound []int64, err error)
	Put(ctx context.Context, p fsm.Put) (fsm.Result, error)
	Delete(ctx context.Context, d fsm.Delete) (fsm.Result, error)
	Incr(ctx context.Context, key string, by int64) (fsm.Result, error)
	// Txn applies puts, deletes and grants all or nothing in one entry.
	Txn(ctx context.Context, ops []fsm.Command) (fsm.Result, error)
	// Read returns a state to read from: linearizable unless stale.
	Read(ctx context.Context, stale bool) (*fsm.State, error)
	Cluster(ctx context.Context) (registry.ClusterInfo, error)
	Snapshot(ctx context.Context) (index uint64, err error)
	// Ready is nil when the member may serve (readyz).
	Ready() error
	MaxValueBytes() int

	// History is the log of recent events of this member's applied state,
	// which watches and blocking reads follow.
	History() *fsm.History

	// ID is this member's ID.
	ID() string
	// LeaderAddr is the leader's advertised HTTP address, "" when unknown.
	LeaderAddr() string
	// HasLeader reports whether this member knows a leader now (itself
	// included): one cut off from the majority knows none.
	HasLeader() bool
	// Removed reports that this member is out of the cluster: it knows no
	// leader and is not in its own configuration, so its state no longer
	// changes.
	Removed() bool
	AddMember(ctx context.Context, req registry.JoinRequest) error
	RemoveMember(ctx context.Context, id string) error
	// UpdateMember re-records a configured member's HTTP address; it never
	// adds a member (registry.ErrNotMember when it is not one).
	UpdateMember(ctx context.Context, req registry.JoinRequest) error

	// AuthenticateLatest resolves a token against st, a state from
	// Read, and, when st does not know it, against a state that has
	// applied every write acknowledged before the call (a linearizable
	// read, bounded per member); it returns the state it used.
	AuthenticateLatest(ctx context.Context, st *fsm.State, token string) (*fsm.State, *registry.Principal, error)

	// Access control: these change the replicated tables (a token is
	// resolved against a state from Read, with registry.Authenticate).
	PutRole(ctx context.Context, r fsm.Role) error
	DeleteRole(ctx context.Context, name string) error
	// CreateToken returns the new token's record and its secret.
	CreateToken(ctx context.Context, name string, roles []string) (fsm.Token, string, error)
	DeleteToken(ctx context.Context, id string) error
	// MayApply is the rule set of writes (registry.MayApply): what g
	// needs to make the write c, judged against st, when the answer
	// shows a. The routes that write check the command they propose with
	// it (authwrite.go), as the leader checks a forwarded one.
	MayApply(g registry.Grants, st *fsm.State, c fsm.Command, a registry.Answer) error
}

var _ Backend = (*registry.Node)(nil)
