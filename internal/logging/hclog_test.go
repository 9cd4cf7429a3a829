package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// capture returns an hclog adapter over a JSON logger at level, and a
// function that decodes the records written so far.
func capture(t *testing.T, level slog.Level, name string) (hclog.Logger, func() []map[string]any) {
	t.Helper()
	var buf bytes.Buffer
	var mu sync.Mutex
	l, err := New(lockedWriter{&buf, &mu}, "json", level)
	if err != nil {
		t.Fatal(err)
	}
	return HCLog(l, name), func() []map[string]any {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		var recs []map[string]any
		dec := json.NewDecoder(bytes.NewReader(buf.Bytes()))
		for dec.More() {
			var m map[string]any
			if err := dec.Decode(&m); err != nil {
				t.Fatalf("bad JSON log line: %v\n%s", err, buf.String())
			}
			recs = append(recs, m)
		}
		buf.Reset()
		return recs
	}
}

type lockedWriter struct {
	buf *bytes.Buffer
	mu  *sync.Mutex
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func TestHCLogLevels(t *testing.T) {
	h, recs := capture(t, LevelTrace, "raft")
	h.Trace("t")
	h.Debug("d")
	h.Info("i")
	h.Warn("w")
	h.Error("e")
	h.Log(hclog.Warn, "lw")
	h.Log(hclog.NoLevel, "ln")
	h.Log(hclog.Off, "off")
	want := []struct{ msg, level string }{
		{"t", "TRACE"}, {"d", "DEBUG"}, {"i", "INFO"}, {"w", "WARN"}, {"e", "ERROR"},
		{"lw", "WARN"}, {"ln", "INFO"},
	}
	got := recs()
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d: %v", len(got), len(want), got)
	}
	for i, w := range want {
		if got[i]["msg"] != w.msg || got[i]["level"] != w.level {
			t.Errorf("record %d = %v %v, want %v %v", i, got[i]["msg"], got[i]["level"], w.msg, w.level)
		}
		if got[i][ComponentKey] != "raft" {
			t.Errorf("record %d component = %v, want raft", i, got[i][ComponentKey])
		}
	}
}

func TestHCLogHandlerLevel(t *testing.T) {
	h, recs := capture(t, slog.LevelInfo, "")
	h.Trace("t")
	h.Debug("d")
	h.Info("i")
	if got := recs(); len(got) != 1 || got[0]["msg"] != "i" {
		t.Fatalf("records = %v, want only i", got)
	}
	if h.IsTrace() || h.IsDebug() || !h.IsInfo() || !h.IsWarn() || !h.IsError() {
		t.Errorf("Is* = %v %v %v %v %v, want false false true true true",
			h.IsTrace(), h.IsDebug(), h.IsInfo(), h.IsWarn(), h.IsError())
	}
	if got := h.GetLevel(); got != hclog.Info {
		t.Errorf("GetLevel = %v, want info", got)
	}
}

func TestHCLogSetLevelIsShared(t *testing.T) {
	h, recs := capture(t, LevelTrace, "raft")
	child := h.Named("net").With("peer", "a")
	h.SetLevel(hclog.Warn)
	if got := child.GetLevel(); got != hclog.Warn {
		t.Errorf("child GetLevel = %v, want warn", got)
	}
	if child.IsInfo() || !child.IsWarn() {
		t.Errorf("child IsInfo/IsWarn = %v/%v, want false/true", child.IsInfo(), child.IsWarn())
	}
	child.Info("dropped")
	child.Warn("kept")
	if got := recs(); len(got) != 1 || got[0]["msg"] != "kept" {
		t.Fatalf("records = %v, want only kept", got)
	}

	child.SetLevel(hclog.Off)
	h.Error("dropped")
	if h.IsError() || h.GetLevel() != hclog.Off {
		t.Errorf("after SetLevel(Off): IsError=%v GetLevel=%v", h.IsError(), h.GetLevel())
	}

	h.SetLevel(hclog.NoLevel) // back to the handler's level
	if got := h.GetLevel(); got != hclog.Trace {
		t.Errorf("GetLevel after reset = %v, want trace", got)
	}
	h.Trace("again")
	if got := recs(); len(got) != 1 || got[0]["msg"] != "again" {
		t.Fatalf("records = %v, want only again", got)
	}
}

func TestHCLogNames(t *testing.T) {
	h, recs := capture(t, slog.LevelInfo, "")
	h.Info("unnamed")
	n := h.Named("raft")
	n.Named("net").Info("named")
	n.ResetNamed("snap").Info("reset")
	if h.Name() != "" || n.Name() != "raft" || n.Named("net").Name() != "raft.net" {
		t.Errorf("names = %q %q %q", h.Name(), n.Name(), n.Named("net").Name())
	}
	got := recs()
	if len(got) != 3 {
		t.Fatalf("got %d records: %v", len(got), got)
	}
	if _, ok := got[0][ComponentKey]; ok {
		t.Errorf("unnamed record has a component: %v", got[0])
	}
	if got[1][ComponentKey] != "raft.net" || got[2][ComponentKey] != "snap" {
		t.Errorf("components = %v, %v; want raft.net, snap", got[1][ComponentKey], got[2][ComponentKey])
	}
}

func TestHCLogWithAndArgs(t *testing.T) {
	h, recs := capture(t, slog.LevelInfo, "raft")
	w := h.With("b", 1, "a", "x").With("b", 2)
	if got, want := w.ImpliedArgs(), []any{"a", "x", "b", 2}; !equalArgs(got, want) {
		t.Errorf("ImpliedArgs = %v, want %v", got, want)
	}
	if len(h.ImpliedArgs()) != 0 {
		t.Errorf("parent gained implied args: %v", h.ImpliedArgs())
	}
	w.Named("sub").Info("msg",
		"err", errors.New("boom"),
		"fmt", hclog.Fmt("%d-%s", 7, "x"),
		"hex", hclog.Hex(255),
		"oct", hclog.Octal(8),
		"bin", hclog.Binary(5),
		"q", hclog.Quote("a b"),
		42, "intkey",
		"dangling")
	got := recs()
	if len(got) != 1 {
		t.Fatalf("got %d records: %v", len(got), got)
	}
	r := got[0]
	want := map[string]any{
		ComponentKey: "raft.sub", "a": "x", "b": float64(2),
		"err": "boom", "fmt": "7-x", "hex": "0xff", "oct": "010", "bin": "0b101",
		"q": "a b", "42": "intkey", hclog.MissingKey: "dangling",
	}
	for k, v := range want {
		if r[k] != v {
			t.Errorf("%s = %#v, want %#v", k, r[k], v)
		}
	}

	// A trailing stack trace gets its own key rather than MissingKey.
	h.Info("st", "k", "v", hclog.CapturedStacktrace("trace..."))
	r = recs()[0]
	if r["stacktrace"] != "trace..." || r["k"] != "v" {
		t.Errorf("stack trace record = %v", r)
	}
	if _, ok := r[hclog.MissingKey]; ok {
		t.Errorf("stack trace reported as missing key: %v", r)
	}

	// An odd argument to With is kept under MissingKey too.
	if got := h.With("k", "v", "odd").ImpliedArgs(); !equalArgs(got, []any{hclog.MissingKey, "odd", "k", "v"}) {
		t.Errorf("ImpliedArgs with odd arg = %v", got)
	}
}

func equalArgs(a, b []any) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestHCLogStandardLogger(t *testing.T) {
	h, recs := capture(t, LevelTrace, "http")
	tests := []struct {
		name      string
		opts      *hclog.StandardLoggerOptions
		line      string
		wantLevel string
		wantMsg   string
	}{
		{"nil opts", nil, "[WARN] plain", "INFO", "[WARN] plain"},
		{"infer", &hclog.StandardLoggerOptions{InferLevels: true}, "[WARN] careful", "WARN", "careful"},
		{"infer err", &hclog.StandardLoggerOptions{InferLevels: true}, "[ERR] bad", "ERROR", "bad"},
		{"infer none", &hclog.StandardLoggerOptions{InferLevels: true}, "no prefix", "INFO", "no prefix"},
		{"infer timestamp", &hclog.StandardLoggerOptions{InferLevels: true, InferLevelsWithTimestamp: true},
			"2024/01/02 15:04:05 [DEBUG] dbg", "DEBUG", "dbg"},
		{"force", &hclog.StandardLoggerOptions{ForceLevel: hclog.Error, InferLevels: true}, "[INFO] forced", "ERROR", "forced"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.StandardLogger(tt.opts).Println(tt.line)
			got := recs()
			if len(got) != 1 {
				t.Fatalf("got %d records: %v", len(got), got)
			}
			if got[0]["level"] != tt.wantLevel || got[0]["msg"] != tt.wantMsg || got[0][ComponentKey] != "http" {
				t.Errorf("record = %v, want level %s msg %q component http", got[0], tt.wantLevel, tt.wantMsg)
			}
		})
	}
}

func TestHCLogSource(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{AddSource: true}))
	HCLog(l, "x").Info("where")
	if !strings.Contains(buf.String(), "hclog_test.go:") {
		t.Errorf("source does not point at the caller: %s", buf.String())
	}
}

func TestHCLogConcurrent(t *testing.T) {
	h, recs := capture(t, slog.LevelInfo, "raft")
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			l := h.Named("w").With("i", i)
			for range 100 {
				l.Info("x")
				_ = l.IsDebug()
				h.SetLevel(hclog.Info)
			}
		})
	}
	wg.Wait()
	if got := len(recs()); got != 800 {
		t.Errorf("got %d records, want 800", got)
	}
}
