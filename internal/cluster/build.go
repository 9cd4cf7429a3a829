package cluster

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

var buildOnce struct {
	sync.Once
	path string
	err  error
}

// Binary builds ./cmd/rosterd once per test process and returns its path.
// ROSTERD_BIN overrides it with a prebuilt binary.
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("ROSTERD_BIN"); p != "" {
		return p
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "rosterd-bin-")
		if err != nil {
			buildOnce.err = err
			return
		}
		out := filepath.Join(dir, "rosterd")
		cmd := exec.Command("go", "build", "-o", out, "./cmd/rosterd")
		cmd.Dir = moduleRoot()
		if b, err := cmd.CombinedOutput(); err != nil {
			buildOnce.err = fmt.Errorf("go build ./cmd/rosterd: %v\n%s", err, b)
			return
		}
		buildOnce.path = out
	})
	if buildOnce.err != nil {
		t.Fatalf("cluster: %v", buildOnce.err)
	}
	return buildOnce.path
}

// moduleRoot is the repository root, two levels above this file.
func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}
