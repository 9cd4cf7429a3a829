// Package client is the Go client of Roster, a lease-based service-discovery
// registry. It speaks the registry's HTTP API and nothing else: it imports
// no server package, only the wire types of package api that the server
// shares, so an application that discovers services does not link raft,
// bbolt or gin.
//
// The shape follows etcd's client/v3: every call takes a context first,
// options are functional (WithPrefix, WithLease, ...), and errors are typed
// so that errors.Is(err, ErrKeyNotFound) and errors.As(err, &casErr) work.
//
// A Client holds a list of member endpoints. Any member answers anything (the
// server forwards writes to the leader), so the client spreads requests
// round-robin and fails over to another member when one is unreachable or
// answers 503 no_leader. It retries only what is safe to retry: reads and
// keep-alives always; writes only when the request provably changed nothing
// (the connection was never made, or the server answered no_leader or
// rate_limited). A 504 timeout on a write means the outcome is unknown and
// is returned as ErrTimeout, never retried; a read answered 504 is asked of
// another member.
//
// On top of the plain calls sit three long-lived helpers:
//
//   - KeepAlive keeps leases alive. All leases of one Client share one
//     batched request per renewal interval, so a process holding 500 leases
//     sends one request, not 500.
//   - Watch follows a key or prefix as a stream of events and resumes,
//     without losing an event, across member failures.
//   - Registrar registers a service instance (lease + key) and keeps it
//     registered through lease loss; Resolver keeps an always-current view of
//     the instances under a prefix.
package client
