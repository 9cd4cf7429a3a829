// Package api holds the JSON wire types of Roster's HTTP API: the shapes
// that the server (httpapi) writes and reads and that the Go client
// (client) reads and writes. Both sides use these types, so the two can
// only disagree about the contract in one place.
//
// The package is deliberately small and plain: structs with JSON tags, the
// error codes, the lease ID's JSON form and the value encoding of a kv. It
// imports nothing of the server, so a client that links it links neither
// raft, bbolt nor gin. New wire types (for new routes) belong here too.
//
// Conventions of the contract that these types encode:
//
//   - Lease IDs are 64-bit and travel as decimal strings (LeaseID), so that
//     JavaScript clients keep every digit.
//   - A kv's value is "value" when it is valid UTF-8, else "value_base64"
//     (KV.SetValue, KV.Bytes); neither with keys_only, nor in a delete event.
//   - Lists are JSON arrays, never null: the server makes them non-nil.
//   - Every 4xx/5xx answer is an ErrorResponse with one of the Code
//     constants.
package api
