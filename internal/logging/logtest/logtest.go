// Package logtest routes a test's log lines through testing.TB.Log. It is
// apart from package logging so that the servers, which import logging,
// do not link package testing into their binaries.
package logtest

import (
	"bytes"
	"log/slog"
	"sync"
	"testing"

	"github.com/rosterhq/roster/internal/logging"
)

// ForTest returns a logger that writes each record, in text format and at
// every level down to logging.LevelTrace, through t.Log, so the lines appear with the
// test that produced them and only when it fails or runs with -v.
//
// Servers under test often log from goroutines that outlive the test by a
// moment (a raft heartbeat, a shutdown message); t.Log panics then, so once
// t's cleanups run every further record is dropped.
func ForTest(t testing.TB) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(w.stop)
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{
		Level:       logging.LevelTrace,
		ReplaceAttr: logging.RenameTrace,
	}))
}

// testWriter receives exactly one Write per record from slog.TextHandler.
type testWriter struct {
	t    testing.TB
	mu   sync.Mutex // held across t.Log so stop cannot slip in between
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(string(bytes.TrimRight(p, "\n")))
	}
	return len(p), nil
}

func (w *testWriter) stop() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}
