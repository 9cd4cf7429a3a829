// Package registry is one Roster server node: it owns raft (raft-boltdb log
// and stable store, file snapshots, TCP transport) and the state machine,
// bootstraps or restarts the cluster, runs the leader's duties (the lease
// ticker, the keep-alive group-commit batcher, the snowflake ID generator)
// only while leading, and offers the Go API that front ends call: validated
// writes proposed through raft, linearizable reads (leadership confirmed and
// applied index caught up, batched across concurrent readers) and stale
// local reads.
//
// It knows nothing of HTTP. Errors are sentinels (this package's and
// package fsm's) wrapped with %w.
package registry
