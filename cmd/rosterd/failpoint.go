package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/rosterhq/roster/registry"
)

// failpointEnv names the crash points at which rosterd kills itself, for
// crash tests: "name[@n][,name[@n]...]"; @n fires at the n-th pass
// (default: the first). The names are registry.Failpoints(). It is read
// from the environment only: it is no flag an operator should ever set.
const failpointEnv = "ROSTER_FAILPOINT"

// failpoints maps a crash point to the pass at which it fires.
type failpoints map[string]int

func parseFailpoints(spec string) (failpoints, error) {
	known := registry.Failpoints()
	fps := failpoints{}
	for _, item := range strings.Split(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, nth, hasN := strings.Cut(item, "@")
		at := 1
		if hasN {
			n, err := strconv.Atoi(nth)
			if err != nil || n < 1 {
				return nil, fmt.Errorf("%s %q: %q is not a pass number >= 1", failpointEnv, spec, nth)
			}
			at = n
		}
		if !slices.Contains(known, name) {
			return nil, fmt.Errorf("%s %q: unknown crash point %q (known: %s)", failpointEnv, spec, name, strings.Join(known, ", "))
		}
		fps[name] = at
	}
	if len(fps) == 0 {
		return nil, nil
	}
	return fps, nil
}

// hook returns the registry.Config.Failpoint function: at the chosen pass
// of a chosen point it says so on stderr and calls die (in rosterd: a
// SIGKILL to itself, so nothing is flushed or closed, as in a real crash).
// With nothing chosen it returns nil, which costs the node nothing.
func (fps failpoints) hook(stderr io.Writer, die func()) func(string) {
	if len(fps) == 0 {
		return nil
	}
	var mu sync.Mutex
	passes := map[string]int{}
	return func(name string) {
		at, ok := fps[name]
		if !ok {
			return
		}
		mu.Lock()
		passes[name]++
		fire := passes[name] == at
		mu.Unlock()
		if fire {
			fmt.Fprintf(stderr, "rosterd: crash point %s (pass %d): killing the process\n", name, at)
			die()
		}
	}
}

// killSelf ends the process at once, the way kill -9 does.
func killSelf() {
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // the signal is delivered asynchronously: never return
}
