package cluster

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// buildDirPrefix names the directories Binary builds into, under
// os.TempDir(): rosterd-build-<pid of the test process>-<random>. The
// sweep touches only names of exactly that shape.
const buildDirPrefix = "rosterd-build-"

var buildOnce struct {
	sync.Once
	dir  string
	path string
	err  error
}

// Binary builds ./cmd/rosterd once per test process and returns its path.
// ROSTERD_BIN overrides it with a prebuilt binary.
//
// The binary lives in a temporary directory that Main removes when the
// test process ends. A process that never reaches that point (killed, or a
// package without Main) leaves its directory behind, so every build first
// removes the build directories of test processes that no longer run.
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("ROSTERD_BIN"); p != "" {
		return p
	}
	buildOnce.Do(func() {
		sweepBuildDirs()
		dir, err := os.MkdirTemp("", buildDirPrefix+strconv.Itoa(os.Getpid())+"-")
		if err != nil {
			buildOnce.err = err
			return
		}
		buildOnce.dir = dir
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

// Main runs the tests of a package that starts clusters and then removes
// the binary Binary built. Call it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(cluster.Main(m)) }
func Main(m *testing.M) int {
	code := m.Run()
	RemoveBinary()
	return code
}

// RemoveBinary removes the directory Binary built into, if any. Members
// still running keep their open executable; none can start after this.
func RemoveBinary() {
	if buildOnce.dir != "" {
		_ = os.RemoveAll(buildOnce.dir)
	}
}

// sweepBuildDirs removes the build directories whose test process is gone.
func sweepBuildDirs() {
	entries, err := os.ReadDir(os.TempDir())
	if err != nil {
		return
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), buildDirPrefix)
		if !ok || !e.IsDir() {
			continue
		}
		pidText, _, ok := strings.Cut(rest, "-")
		if !ok {
			continue
		}
		pid, err := strconv.Atoi(pidText)
		if err != nil || pid <= 0 || processAlive(pid) {
			continue
		}
		_ = os.RemoveAll(filepath.Join(os.TempDir(), e.Name()))
	}
}

// processAlive reports whether a process with this ID exists (signal 0
// checks without sending anything; EPERM means it exists as another user).
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || err == syscall.EPERM
}

// moduleRoot is the repository root, two levels above this file.
func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}
