// Command rosterctl is the operator command line of Roster, the lease-based
// service-discovery registry. It reads and writes keys, follows them, manages
// leases and cluster membership, and reports the cluster's health, all
// through the Go client package (github.com/rosterhq/roster/client): it
// speaks only the registry's HTTP API and links no server code.
//
// Usage:
//
//	rosterctl [--endpoints host:port,...] [-o table|json] [--timeout 5s] COMMAND [ARGS]
//
// Commands: put, get, del, watch, lease (grant, keepalive, revoke, ttl,
// list), member (list, add, remove), snapshot, status, register,
// completion, version. "rosterctl help COMMAND" describes each.
//
// The endpoints default to $ROSTER_ENDPOINTS, else 127.0.0.1:7370. The
// default output is aligned text tables; -o json prints the API's field
// names, one JSON document per command (one object per line for the
// streaming commands watch, lease keepalive and register).
//
// Exit codes, for scripts:
//
//	0  success
//	1  any other error
//	2  bad input: a usage error (bad flags, arguments or key), or a request the server refused as invalid
//	3  not found: a key (get; del of a single absent key), or the member, role or token a command names
//	4  lease not found
//	5  compare-and-swap failed (the message ends with the key's current mod revision)
//	6  unavailable: no leader, timeout, or no member reachable
//	7  access denied: no token, an unknown token, or one whose roles do not allow the request
//	130 interrupted (Ctrl-C) before a one-shot command finished
//
// Errors go to standard error as "rosterctl: <message>".
//
// The code is organised for testing: run (run.go) takes the arguments,
// standard streams and environment and returns the exit code; main only
// wires in os and signals. Each command family lives in a file of its own.
package main
