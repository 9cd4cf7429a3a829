// Package httpapi serves Roster's HTTP API (documented in docs/api.md) on
// top of a Backend, normally a *registry.Node.
//
// The package owns the wire: the gin router, JSON shapes, query parsing and
// the mapping from errors to status codes (errors.go, the only place that
// decides a status for an error). Handlers are thin: they parse and validate
// every input before calling the Backend, so that a request answered with a
// 4xx never reaches the raft log, and they translate the result into the
// documented envelope.
//
// Two families of routes are served:
//
//   - /v1/...: the versioned API with its JSON envelopes (leases, keys,
//     cluster) plus /healthz, /readyz and /metrics;
//   - the compatibility routes (/lease/..., /key/...), which answer in the
//     shapes that scripts written for the raftd/hraftd family expect, so
//     those scripts run unchanged against Roster.
//
// No route ever answers with a redirect: gin's trailing-slash and fixed-path
// redirects are off, since a key may legitimately end in a slash.
package httpapi
