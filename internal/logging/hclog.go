package logging

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
)

// ComponentKey is the attribute that carries an hclog logger's name
// ("raft", "raft.net", ...), so raft's lines can be filtered like any other
// subsystem's instead of having the name glued to the message as hclog does.
const ComponentKey = "component"

// HCLog returns an hclog.Logger that forwards to l, named name (may be "").
//
// Levels: Trace → LevelTrace, Debug/Info/Warn/Error → their slog namesakes.
// By default the slog handler alone decides what is emitted; SetLevel adds a
// floor on top of it that is shared by every logger derived (With, Named,
// ResetNamed) from this one, as hclog's own loggers do.
func HCLog(l *slog.Logger, name string) hclog.Logger {
	a := &hclogAdapter{base: l, name: name, level: new(atomic.Int32)}
	a.bind()
	return a
}

// hclogAdapter is immutable after bind except for the shared level, so
// derived loggers can be used from many goroutines, as raft does.
type hclogAdapter struct {
	base    *slog.Logger // as given to HCLog: no name, no implied args
	name    string
	implied []any         // hclog key/value pairs, keys sorted, deduplicated
	level   *atomic.Int32 // hclog.Level floor; hclog.NoLevel: none
	handler slog.Handler  // base's handler with component and implied bound
}

var _ hclog.Logger = (*hclogAdapter)(nil)

// bind precomputes the handler, so the attributes that every record carries
// are formatted once per logger rather than once per line.
func (a *hclogAdapter) bind() {
	var attrs []slog.Attr
	if a.name != "" {
		attrs = append(attrs, slog.String(ComponentKey, a.name))
	}
	attrs = append(attrs, toAttrs(a.implied)...)
	a.handler = a.base.Handler()
	if len(attrs) > 0 {
		a.handler = a.handler.WithAttrs(attrs)
	}
}

func (a *hclogAdapter) derive(name string, implied []any) *hclogAdapter {
	d := &hclogAdapter{base: a.base, name: name, implied: implied, level: a.level}
	d.bind()
	return d
}

// callerPC returns the program counter of the code that called the public
// logging method, so handlers with AddSource point at raft, not at us.
func callerPC() uintptr {
	var pcs [1]uintptr
	// Skip runtime.Callers, callerPC, the public method.
	runtime.Callers(3, pcs[:])
	return pcs[0]
}

func (a *hclogAdapter) emit(pc uintptr, level hclog.Level, msg string, args []any) {
	if !a.enabled(level) {
		return
	}
	sl, _ := toSlogLevel(level)
	r := slog.NewRecord(time.Now(), sl, msg, pc)
	r.AddAttrs(toAttrs(args)...)
	// A handler's write error has nowhere better to go than hclog's, which
	// drops it too.
	_ = a.handler.Handle(context.Background(), r)
}

// Log emits at level; hclog.NoLevel counts as Info, hclog.Off emits nothing.
func (a *hclogAdapter) Log(level hclog.Level, msg string, args ...any) {
	a.emit(callerPC(), level, msg, args)
}

// Trace emits at LevelTrace.
func (a *hclogAdapter) Trace(msg string, args ...any) {
	a.emit(callerPC(), hclog.Trace, msg, args)
}

// Debug emits at slog.LevelDebug.
func (a *hclogAdapter) Debug(msg string, args ...any) {
	a.emit(callerPC(), hclog.Debug, msg, args)
}

// Info emits at slog.LevelInfo.
func (a *hclogAdapter) Info(msg string, args ...any) {
	a.emit(callerPC(), hclog.Info, msg, args)
}

// Warn emits at slog.LevelWarn.
func (a *hclogAdapter) Warn(msg string, args ...any) {
	a.emit(callerPC(), hclog.Warn, msg, args)
}

// Error emits at slog.LevelError.
func (a *hclogAdapter) Error(msg string, args ...any) {
	a.emit(callerPC(), hclog.Error, msg, args)
}

// enabled reports whether a record at level would be emitted: above the
// SetLevel floor, if any, and accepted by the slog handler.
func (a *hclogAdapter) enabled(level hclog.Level) bool {
	sl, ok := toSlogLevel(level)
	if !ok {
		return false
	}
	if level == hclog.NoLevel {
		level = hclog.Info
	}
	if floor := hclog.Level(a.level.Load()); floor != hclog.NoLevel && level < floor {
		return false
	}
	return a.handler.Enabled(context.Background(), sl)
}

func (a *hclogAdapter) IsTrace() bool { return a.enabled(hclog.Trace) }
func (a *hclogAdapter) IsDebug() bool { return a.enabled(hclog.Debug) }
func (a *hclogAdapter) IsInfo() bool  { return a.enabled(hclog.Info) }
func (a *hclogAdapter) IsWarn() bool  { return a.enabled(hclog.Warn) }
func (a *hclogAdapter) IsError() bool { return a.enabled(hclog.Error) }

// ImpliedArgs returns the key/value pairs added with With.
func (a *hclogAdapter) ImpliedArgs() []any {
	return append([]any(nil), a.implied...)
}

// With returns a logger whose records carry args as well. As in hclog, a
// key given again replaces the earlier value, keys come out sorted, and a
// trailing value without a key is kept under hclog.MissingKey.
func (a *hclogAdapter) With(args ...any) hclog.Logger {
	var extra any
	if len(args)%2 != 0 {
		extra = args[len(args)-1]
		args = args[:len(args)-1]
	}
	vals := make(map[string]any, (len(a.implied)+len(args))/2)
	keys := make([]string, 0, (len(a.implied)+len(args))/2)
	add := func(pairs []any) {
		for i := 0; i+1 < len(pairs); i += 2 {
			k := keyString(pairs[i])
			if _, seen := vals[k]; !seen {
				keys = append(keys, k)
			}
			vals[k] = pairs[i+1]
		}
	}
	add(a.implied)
	add(args)
	if extra != nil {
		if _, seen := vals[hclog.MissingKey]; !seen {
			keys = append(keys, hclog.MissingKey)
		}
		vals[hclog.MissingKey] = extra
	}
	sort.Strings(keys)
	implied := make([]any, 0, 2*len(keys))
	for _, k := range keys {
		implied = append(implied, k, vals[k])
	}
	return a.derive(a.name, implied)
}

// Name returns the logger's name, the value of its component attribute.
func (a *hclogAdapter) Name() string { return a.name }

// Named appends name to the current name, dot-separated, as hclog does.
func (a *hclogAdapter) Named(name string) hclog.Logger {
	if a.name != "" {
		name = a.name + "." + name
	}
	return a.derive(name, a.implied)
}

// ResetNamed replaces the current name.
func (a *hclogAdapter) ResetNamed(name string) hclog.Logger {
	return a.derive(name, a.implied)
}

// SetLevel sets a floor below which nothing is emitted, for this logger and
// all loggers related to it; hclog.NoLevel removes the floor. It cannot lower
// the slog handler's own level, which the process configured.
func (a *hclogAdapter) SetLevel(level hclog.Level) {
	a.level.Store(int32(level))
}

// GetLevel returns the SetLevel floor if there is one, else the lowest
// hclog level the slog handler accepts (hclog.Off if none).
func (a *hclogAdapter) GetLevel() hclog.Level {
	if floor := hclog.Level(a.level.Load()); floor != hclog.NoLevel {
		return floor
	}
	for l := hclog.Trace; l <= hclog.Error; l++ {
		if sl, _ := toSlogLevel(l); a.handler.Enabled(context.Background(), sl) {
			return l
		}
	}
	return hclog.Off
}

// StandardLogger returns a *log.Logger whose lines go through this logger.
func (a *hclogAdapter) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(a.StandardWriter(opts), "", 0)
}

// StandardWriter returns an io.Writer that logs each write as one record,
// honouring InferLevels ("[WARN] ..." prefixes), InferLevelsWithTimestamp
// and ForceLevel like hclog's own adapter.
func (a *hclogAdapter) StandardWriter(opts *hclog.StandardLoggerOptions) io.Writer {
	w := &stdWriter{log: a}
	if opts != nil {
		w.opts = *opts
	}
	return w
}

type stdWriter struct {
	log  *hclogAdapter
	opts hclog.StandardLoggerOptions
}

func (w *stdWriter) Write(p []byte) (int, error) {
	line := string(bytes.TrimRight(p, " \t\n"))
	level := hclog.Info
	switch {
	case w.opts.ForceLevel != hclog.NoLevel:
		// The prefix is stripped even though the forced level wins.
		_, line = pickLevel(line)
		level = w.opts.ForceLevel
	case w.opts.InferLevels:
		if w.opts.InferLevelsWithTimestamp {
			line = strings.TrimLeft(line, "0123456789 \t:/.+-TZ")
		}
		level, line = pickLevel(line)
	}
	// No caller PC: it would point into package log, which helps nobody.
	w.log.emit(0, level, line, nil)
	return len(p), nil
}

// pickLevel reads the level prefixes that hclog's standard adapter knows.
func pickLevel(s string) (hclog.Level, string) {
	for _, p := range []struct {
		prefix string
		level  hclog.Level
	}{
		{"[TRACE]", hclog.Trace},
		{"[DEBUG]", hclog.Debug},
		{"[INFO]", hclog.Info},
		{"[WARN]", hclog.Warn},
		{"[ERROR]", hclog.Error},
		{"[ERR]", hclog.Error},
	} {
		if rest, ok := strings.CutPrefix(s, p.prefix); ok {
			return p.level, strings.TrimSpace(rest)
		}
	}
	return hclog.Info, s
}

// toSlogLevel maps an hclog level; ok is false for hclog.Off.
func toSlogLevel(l hclog.Level) (slog.Level, bool) {
	switch l {
	case hclog.Trace:
		return LevelTrace, true
	case hclog.Debug:
		return slog.LevelDebug, true
	case hclog.NoLevel, hclog.Info:
		return slog.LevelInfo, true
	case hclog.Warn:
		return slog.LevelWarn, true
	case hclog.Error:
		return slog.LevelError, true
	default:
		return 0, false
	}
}

// toAttrs turns hclog's alternating key/value arguments into attributes,
// rendering hclog's formatting wrappers the way hclog would.
func toAttrs(args []any) []slog.Attr {
	if len(args) == 0 {
		return nil
	}
	var stack *slog.Attr
	if len(args)%2 != 0 {
		last := args[len(args)-1]
		args = args[:len(args)-1]
		if st, ok := last.(hclog.CapturedStacktrace); ok {
			a := slog.String("stacktrace", string(st))
			stack = &a
		} else {
			// Copy rather than append into the caller's backing array.
			args = append(args[:len(args):len(args)], hclog.MissingKey, last)
		}
	}
	attrs := make([]slog.Attr, 0, len(args)/2+1)
	for i := 0; i < len(args); i += 2 {
		attrs = append(attrs, toAttr(keyString(args[i]), args[i+1]))
	}
	if stack != nil {
		attrs = append(attrs, *stack)
	}
	return attrs
}

func toAttr(key string, v any) slog.Attr {
	switch v := v.(type) {
	case hclog.Format:
		return slog.String(key, formatValue(v))
	case hclog.Hex:
		return slog.String(key, "0x"+strconv.FormatUint(uint64(v), 16))
	case hclog.Octal:
		return slog.String(key, "0"+strconv.FormatUint(uint64(v), 8))
	case hclog.Binary:
		return slog.String(key, "0b"+strconv.FormatUint(uint64(v), 2))
	case hclog.Quote:
		// The slog handler quotes as its format requires.
		return slog.String(key, string(v))
	case hclog.CapturedStacktrace:
		return slog.String(key, string(v))
	default:
		return slog.Any(key, v)
	}
}

func formatValue(f hclog.Format) string {
	if len(f) > 0 {
		if format, ok := f[0].(string); ok {
			return fmt.Sprintf(format, f[1:]...)
		}
	}
	return fmt.Sprint(f...)
}

func keyString(k any) string {
	if s, ok := k.(string); ok {
		return s
	}
	return fmt.Sprint(k)
}
