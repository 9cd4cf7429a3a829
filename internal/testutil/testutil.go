// Package testutil holds what every test package here needs to wait for
// real servers: polling a condition until a deadline (never sleeping a
// fixed time for raft or a network to settle), and a buffer that one
// goroutine writes while the test reads it.
package testutil

import (
	"bytes"
	"net"
	"sync"
	"testing"
	"time"
)

// PollInterval is how often Poll checks its condition.
const PollInterval = 10 * time.Millisecond

// Poll calls cond every PollInterval until it returns true (Poll returns
// true) or d has passed (Poll returns false).
func Poll(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(PollInterval)
	}
	return true
}

// Pace is the back-off of a load generator or retry loop between two
// attempts: it returns true after d, or false as soon as done closes (the
// loop should then end). It is not a way to wait for raft or a network to
// settle; Poll a condition for that.
func Pace(done <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-done:
		return false
	}
}

// Serve accepts connections on ln until the test ends (it closes ln then)
// and runs handle on each in its own goroutine, closing the connection
// after. It returns ln's address: a fake peer for a client under test.
func Serve(t testing.TB, ln net.Listener, handle func(net.Conn)) string {
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
	return ln.Addr().String()
}

// Eventually fails t unless cond holds within d.
func Eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Poll(d, cond) {
		t.Fatalf("timed out after %v waiting for %s", d, what)
	}
}

// Hold is the other half of Eventually: it fails t unless check passes
// at every PollInterval for d, returning at once on the first failure
// (check's error names it). It is for properties that must hold over a
// period (an idle member writes nothing; a member without quorum never
// serves), where the period itself is the point.
func Hold(t testing.TB, d time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		if err := check(); err != nil {
			t.Fatalf("%s stopped holding: %v", what, err)
		}
		if time.Now().After(deadline) {
			return
		}
		time.Sleep(PollInterval)
	}
}

// SyncBuffer is a bytes.Buffer safe for concurrent writers and readers.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
