package testutil

import (
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
