// Package registry is one Roster server node: it owns raft (raft-boltdb log
// and stable store, file snapshots, a network transport) and the state
// machine, bootstraps or restarts the cluster, runs the leader's duties (the
// lease ticker, the keep-alive group-commit batcher, the snowflake ID
// generator) only while leading, and offers the Go API that front ends
// call.
//
// Every member serves the whole API:
//
//   - Writes are validated, then proposed through raft on the leader. A
//     follower sends them to the leader over the forwarding channel: one
//     persistent connection per follower, multiplexed on the raft port by
//     the stream layer (peerlisten.go), carrying length-prefixed binary
//     frames (peerwire.go) — fsm-encoded commands one way, fsm-encoded
//     results the other — with everything pending in one write
//     (peerclient.go, peerserver.go). The leader fills in what only it
//     knows (a new lease's ID, the lease clock slack) and renewals join its
//     group commit.
//   - Linearizable reads get a read index — the leader's commit index,
//     confirmed by a quorum in one round shared by concurrent reads, in a
//     term in which the leader has committed an entry — and are served from
//     the member's own replica once it has applied that index (reads.go).
//     Stale reads skip the read index.
//   - Tokens are checked against the member's own replica; one it does not
//     know is checked again after a linearizable read, so a token works on
//     every member as soon as its creation is acknowledged (tokenwait.go).
//   - Errors keep the contract: a refusal before anything was proposed is
//     ErrNoLeader (retried once on the next leader), a request that may
//     have reached the leader is ErrTimeout (outcome unknown). A leader
//     that loses leadership with entries in flight learns their fate as a
//     follower, within each request's deadline (fate.go): committed, the
//     real result; replaced by the next leader, a refusal (ErrNoLeader:
//     nothing changed, which is also what the follower that forwarded it
//     retries once); not learned in time, ErrTimeout. A follower keeps its
//     channel to a former leader open until what it sent there is
//     answered (peerclient.go).
//
// Config.PeerTLS secures the raft port (raft and the channel) with mutual
// TLS. It knows nothing of HTTP. Errors are sentinels (this package's and
// package fsm's) wrapped with %w.
package registry
