package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

func TestNew(t *testing.T) {
	var buf bytes.Buffer
	l, err := New(&buf, "json", slog.LevelDebug)
	if err != nil {
		t.Fatal(err)
	}
	l.Debug("d", "k", 1)
	l.Log(t.Context(), LevelTrace, "below level")
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatalf("not one JSON record: %v: %s", err, buf.String())
	}
	if m["msg"] != "d" || m["level"] != "DEBUG" || m["k"] != float64(1) {
		t.Errorf("record = %v", m)
	}

	buf.Reset()
	l, err = New(&buf, "text", LevelTrace)
	if err != nil {
		t.Fatal(err)
	}
	l.Log(t.Context(), LevelTrace, "deep")
	if !strings.Contains(buf.String(), "level=TRACE") || !strings.Contains(buf.String(), "msg=deep") {
		t.Errorf("text record = %q", buf.String())
	}

	if _, err := New(&buf, "xml", slog.LevelInfo); !errors.Is(err, ErrFormat) {
		t.Errorf("New(xml) error = %v, want ErrFormat", err)
	}
}

func TestParseLevel(t *testing.T) {
	for in, want := range map[string]slog.Level{
		"trace": LevelTrace, "TRACE": LevelTrace, "debug": slog.LevelDebug,
		"info": slog.LevelInfo, "Warn": slog.LevelWarn, "error": slog.LevelError,
		"debug-2": slog.LevelDebug - 2,
	} {
		got, err := ParseLevel(in)
		if err != nil || got != want {
			t.Errorf("ParseLevel(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "verbose", "info+x"} {
		if _, err := ParseLevel(in); !errors.Is(err, ErrLevel) {
			t.Errorf("ParseLevel(%q) error = %v, want ErrLevel", in, err)
		}
	}
}
