package logtest

import (
	"strings"
	"sync"
	"testing"

	"github.com/rosterhq/roster/internal/logging"
)

// fakeTB records Log calls and runs cleanups on demand.
type fakeTB struct {
	testing.TB
	mu       sync.Mutex
	logs     []string
	cleanups []func()
}

func (f *fakeTB) Log(args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, a := range args {
		f.logs = append(f.logs, a.(string))
	}
}

func (f *fakeTB) Cleanup(fn func()) { f.cleanups = append(f.cleanups, fn) }

func TestForTestWritesThroughLog(t *testing.T) {
	f := &fakeTB{TB: t}
	l := ForTest(f)
	l.Info("hello", "k", "v")
	l.Log(t.Context(), logging.LevelTrace, "deep")
	if len(f.logs) != 2 {
		t.Fatalf("logs = %q, want two lines", f.logs)
	}
	if !strings.Contains(f.logs[0], "msg=hello k=v") || strings.HasSuffix(f.logs[0], "\n") {
		t.Errorf("first line = %q", f.logs[0])
	}
	if !strings.Contains(f.logs[1], "level=TRACE") {
		t.Errorf("second line = %q", f.logs[1])
	}

	for _, fn := range f.cleanups {
		fn()
	}
	l.Info("after cleanup")
	l.With("a", 1).Error("after cleanup")
	if len(f.logs) != 2 {
		t.Errorf("records after cleanup were logged: %q", f.logs[2:])
	}
}

// TestForTestAfterSubtestEnds uses a real subtest: logging once it has
// finished must neither panic nor attribute lines to it.
func TestForTestAfterSubtestEnds(t *testing.T) {
	var l interface{ Info(string, ...any) }
	t.Run("sub", func(t *testing.T) {
		lg := ForTest(t)
		lg.Info("during")
		l = lg
	})
	var wg sync.WaitGroup
	wg.Go(func() { l.Info("after, from another goroutine") })
	wg.Wait()
	l.Info("after")
}

func TestForTestHCLog(t *testing.T) {
	f := &fakeTB{TB: t}
	logging.HCLog(ForTest(f), "raft").Trace("entering follower state")
	if len(f.logs) != 1 || !strings.Contains(f.logs[0], "component=raft") || !strings.Contains(f.logs[0], "level=TRACE") {
		t.Errorf("logs = %q", f.logs)
	}
}
