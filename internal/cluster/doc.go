// Package cluster starts real rosterd processes for system tests: it builds
// the binary once per test process (Main removes it when the tests end),
// runs members on free 127.0.0.1 ports with data in t.TempDir(), waits on
// conditions with deadlines (never fixed sleeps), kills with SIGKILL, stops
// with SIGTERM, pauses with SIGSTOP, restarts, and prints each member's log
// only when the test failed.
//
// For fault tests it also owns the network between members (Net: a proxy
// in front of each member's Raft and HTTP ports that can cut, black-hole or
// delay each directed link), a Nemesis that injects random kills, pauses
// and partitions, and small tmpfs data directories for full-disk tests.
package cluster
