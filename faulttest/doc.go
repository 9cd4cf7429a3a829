// Package faulttest proves Roster's promises under faults, against real
// rosterd processes (internal/cluster): a nemesis kills (SIGKILL) and
// restarts members, pauses them (SIGSTOP), partitions, black-holes and
// delays the links between them through proxies the test owns, and fills a
// member's disk, while clients check:
//
//   - linearizability of put / get / compare-and-swap / delete / incr over
//     HTTP, and of GET / SET / SET NX / DEL / INCR / MULTI-EXEC over the
//     Redis port on the same keys, at random members, in one history
//     checked with github.com/anishathalye/porcupine;
//   - lease safety: a lease kept alive is never seen gone, a revoked or
//     expired lease's keys never come back, the minority side of a
//     partition expires nothing, remaining TTL carries over leader changes,
//     no lease ID is issued twice;
//   - watch safety: every watcher, resuming across members, sees exactly
//     the committed changes of its prefix, in order, once.
//
// The package has only tests. The short profile runs inside
// `go test -race ./...`; ROSTER_SOAK=10m (any duration) runs the long
// profile: every nemesis for that long, with more clients. On a failed
// linearizability check porcupine's HTML visualisation is written to
// $ROSTER_ARTIFACTS (else the system temporary directory) and named in the
// failure. docs/testing.md describes every check and what it found.
package faulttest
