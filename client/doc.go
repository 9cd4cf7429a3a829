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
// another member. Every write of the registry's state is such a write,
// those that look idempotent included (PutRole: a retry that lands after
// another admin's change would undo it); renewals and Snapshot are not
// writes of that kind and are retried like reads.
//
// A member whose TLS handshake fails on a certificate (the client cannot
// verify the member's: unknown authority, another host name, expired; or
// the member refuses the client's), or that does not speak TLS at all (an
// https:// endpoint serving plain HTTP), is no member that is down: it fails the
// same way until a certificate or the configuration changes. A call leaves
// it for the other members and later calls try it last for a while; when
// no member passes the handshake the call fails at once (a watch ends) with
// an error naming each member, which wraps a *TLSError per member and,
// through it, the x509 or tls error (errors.As works on either).
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
//     the instances under a prefix (its watch, like every watch, leaves a
//     member cut off from the cluster's majority for one of the majority).
//
// Every goroutine has an owner: a watch ends when its context ends or the
// client closes, a KeepAlive stream likewise (the client's one keep-alive
// loop ends with the client), and Resolver.Close returns once the
// resolver's goroutines, its watch's included, have ended. Close of a
// Client or a Resolver may be called more than once.
package client
