// Package cluster starts real rosterd processes for system tests: it builds
// the binary once per test process, runs members on free 127.0.0.1 ports
// with data in t.TempDir(), waits on conditions with deadlines (never fixed
// sleeps), kills with SIGKILL, stops with SIGTERM, restarts, and prints each
// member's log only when the test failed.
package cluster
