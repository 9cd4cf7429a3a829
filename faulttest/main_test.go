package faulttest

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rosterhq/roster/internal/cluster"
)

func TestMain(m *testing.M) { os.Exit(cluster.Main(m)) }

// profile sizes a run: the short one fits the package in the module's
// test budget; ROSTER_SOAK=<duration> runs every nemesis that long.
type profile struct {
	Soak     bool
	Duration time.Duration // how long the nemesis runs in each test
	Members  int
	Clients  int // linearizability clients over HTTP
	Redis    int // and over the Redis port, on the same keys
	Keys     int // keys they share
	Watchers int
	Keepers  int // leases kept alive
}

func currentProfile(t testing.TB) profile {
	t.Helper()
	p := profile{Duration: 15 * time.Second, Members: 3, Clients: 5, Redis: 2, Keys: 3, Watchers: 3, Keepers: 3}
	if s := os.Getenv("ROSTER_SOAK"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			t.Fatalf("ROSTER_SOAK=%q: want a positive duration such as 10m", s)
		}
		p = profile{Soak: true, Duration: d, Members: 5, Clients: 12, Redis: 5, Keys: 6, Watchers: 6, Keepers: 8}
	}
	return p
}

// seed returns the seed for this test's random choices: ROSTER_SEED when
// set (to replay a failure), else a fresh one. It is logged either way.
func seed(t testing.TB) uint64 {
	t.Helper()
	s := rand.Uint64()
	if v := os.Getenv("ROSTER_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("ROSTER_SEED=%q: %v", v, err)
		}
		s = n
	}
	t.Logf("seed %d (replay the same choices with ROSTER_SEED=%d)", s, s)
	return s
}

// artifactPath names a file that outlives the test (t.TempDir() does
// not): under $ROSTER_ARTIFACTS when set, else the system temp directory.
func artifactPath(t testing.TB, what, ext string) string {
	dir := os.Getenv("ROSTER_ARTIFACTS")
	if dir == "" {
		dir = os.TempDir()
	}
	_ = os.MkdirAll(dir, 0o755)
	name := regexp.MustCompile(`[^A-Za-z0-9_.-]+`).ReplaceAllString(t.Name(), "_")
	pattern := fmt.Sprintf("roster-%s-%s-%s-*.%s", what, name, time.Now().Format("20060102-150405"), ext)
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return filepath.Join(dir, strings.Replace(pattern, "*", strconv.Itoa(os.Getpid()), 1))
	}
	f.Close()
	_ = os.Chmod(f.Name(), 0o644) // a report for whoever reads the CI output
	return f.Name()
}
