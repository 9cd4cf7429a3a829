// Package systemtest holds end-to-end tests that run real rosterd processes
// (through internal/cluster) and talk to them over HTTP only.
package systemtest
