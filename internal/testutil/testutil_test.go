package testutil

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestPoll(t *testing.T) {
	var n atomic.Int32
	if !Poll(5*time.Second, func() bool { return n.Add(1) == 3 }) || n.Load() != 3 {
		t.Fatalf("Poll stopped after %d calls", n.Load())
	}
	start := time.Now()
	if Poll(50*time.Millisecond, func() bool { return false }) {
		t.Fatal("Poll of a condition that never holds returned true")
	}
	if el := time.Since(start); el < 50*time.Millisecond {
		t.Fatalf("Poll gave up after %v, before its deadline", el)
	}
}

func TestSyncBuffer(t *testing.T) {
	var b SyncBuffer
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() { defer wg.Done(); b.Write([]byte("ab")) }()
	}
	wg.Wait()
	if got := b.String(); len(got) != 20 {
		t.Fatalf("%q", got)
	}
}

// fatalTB records a Fatalf and ends its goroutine, as testing does.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}
func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// TestHold: Hold checks for the whole period, and fails at the first
// check that does not pass, without waiting out the period.
func TestHold(t *testing.T) {
	var n atomic.Int32
	start := time.Now()
	Hold(t, 50*time.Millisecond, "always", func() error { n.Add(1); return nil })
	if el := time.Since(start); el < 50*time.Millisecond || n.Load() < 2 {
		t.Fatalf("Hold returned after %v and %d checks", el, n.Load())
	}

	f := &fatalTB{}
	done := make(chan struct{})
	start = time.Now()
	go func() {
		defer close(done)
		calls := 0
		Hold(f, time.Minute, "third time", func() error {
			if calls++; calls == 3 {
				return errors.New("broke")
			}
			return nil
		})
	}()
	<-done
	if f.msg == "" || time.Since(start) > 10*time.Second {
		t.Fatalf("Hold of a failing check: message %q after %v", f.msg, time.Since(start))
	}
}
