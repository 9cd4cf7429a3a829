// Package logging builds the process's structured loggers.
//
// Everything in Roster logs through log/slog. Two adapters bridge the parts
// that do not speak slog natively:
//
//   - HCLog wraps a *slog.Logger as a hashicorp/go-hclog Logger, so that
//     hashicorp/raft (and its transport and snapshot store) write through the
//     same handler, format and level as the rest of the server instead of
//     producing a second, differently formatted stream.
//
// Tests log through logtest.ForTest (package internal/logging/logtest), which
// routes a logger into testing.TB.Log, so a test's log lines show up only for
// failing (or -v) tests, attached to the test that made them.
//
// hclog has one level below Debug (Trace) that slog lacks; it maps to
// LevelTrace (slog.LevelDebug-4), rendered as "TRACE" by loggers from New.
package logging
