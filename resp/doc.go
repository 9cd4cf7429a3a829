// Package resp serves Roster over the Redis protocol (RESP2), so that any
// Redis client (redis-cli, redis-benchmark, go-redis, the leto family's
// clients) reads and writes the registry unchanged.
//
// The RESP key K is the Roster key /K: SET services/api/n1 x writes the
// same key as PUT /v1/kv/services/api/n1. TTLs are leases: SET … EX and
// EXPIRE attach the key to a new lease of that TTL (in one Txn entry), and
// the key vanishes when the lease expires, exactly as over HTTP.
//
// The package talks to a narrow Backend (a *registry.Node in rosterd): the
// same node methods the HTTP front end uses plus Txn and Batch. It never
// touches raft or the state machine's structures beyond the shared result
// and error types and the read-only *fsm.State a read returns.
//
// Each connection is served by github.com/tidwall/redcon. Commands that
// arrive pipelined on a connection are taken together (redcon's
// ReadPipeline): consecutive writes are proposed as one Batch (in order,
// committing together) and consecutive reads share one linearizable read;
// the answers go back in order.
//
// MULTI queues commands; EXEC plays them on the state machine itself,
// previewing each write on one linearizable state without proposing it
// (dryrun.go, fsm.State.Preview), and proposes their writes as one Txn
// compared on every key the transaction read, watched, or wrote in a way
// that depends on what the key held (txn.go); a write whose answer depends
// on a key no other command touches (INCR, DEL, SET … NX|XX|GET, …) goes
// into the Txn as an operation evaluated as it applies instead, answered
// from its result, and its key is not compared (txnlate.go).
//
// Every byte a client sends passes a framing guard (guard.go) before redcon
// parses it: a malformed frame, or a bulk string, array, command or inline
// line over the limits, is answered with -ERR Protocol error and the
// connection is closed, after the commands before it were answered and
// without any part of the bad command being executed. Errors map to RESP
// error replies in one place, errors.go.
package resp
