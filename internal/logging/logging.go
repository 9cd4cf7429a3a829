package logging

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// LevelTrace is the slog level hclog's Trace maps to. slog leaves room for
// it by spacing its levels four apart.
const LevelTrace = slog.LevelDebug - 4

// Sentinel errors; callers match them with errors.Is.
var (
	// ErrFormat: a log format other than "text" or "json".
	ErrFormat = errors.New("unknown log format")
	// ErrLevel: a log level name that is not understood.
	ErrLevel = errors.New("unknown log level")
)

// New returns a logger writing to w in the given format ("text" or "json"),
// dropping records below level.
func New(w io.Writer, format string, level slog.Level) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: RenameTrace}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("%w %q (want text or json)", ErrFormat, format)
	}
}

// ParseLevel reads a level name: trace, debug, info, warn or error (any
// case), or slog's own spelling with an offset such as "debug-2".
func ParseLevel(s string) (slog.Level, error) {
	if strings.EqualFold(s, "trace") {
		return LevelTrace, nil
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("%w %q (want trace, debug, info, warn or error)", ErrLevel, s)
	}
	return l, nil
}

// RenameTrace, a slog ReplaceAttr function, prints LevelTrace as "TRACE"
// rather than slog's "DEBUG-4", which is what raft's trace lines were
// called before they reached slog.
func RenameTrace(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.LevelKey {
		if l, ok := a.Value.Any().(slog.Level); ok && l == LevelTrace {
			a.Value = slog.StringValue("TRACE")
		}
	}
	return a
}
