package httpapi

import (
	"strconv"
	"strings"
	"testing"

	"github.com/rosterhq/roster/registry"
)

// TestErrorAnswersCarryTheRevision: API.md has every KV and watch answer
// carry X-Roster-Revision, errors included; those raised before the route
// read a state (bad input, too large, compacted) carry the member's own.
func TestErrorAnswersCarryTheRevision(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, func(c *registry.Config) { c.WatchHistory = 5; c.MaxValue = 1 << 10 }, nil)
	for i := 0; i < 12; i++ {
		e.doStr("PUT", "/v1/kv/c/k", strconv.Itoa(i)).ok(t, 200, nil)
	}
	for _, tc := range []struct {
		method, path, body string
		status             int
	}{
		{"PUT", "/v1/kv/c/k?cas=x", "v", 400},
		{"PUT", "/v1/kv/c/k", strings.Repeat("v", 2<<10), 413},
		{"GET", "/v1/kv/c/?prefix=true&limit=-1", "", 400},
		{"GET", "/v1/kv/c/k?wait=1s", "", 400},
		{"DELETE", "/v1/kv/c/k?cas=1%ZZ", "", 400},
		{"GET", "/v1/watch/c/k?rev=3", "", 410},
	} {
		r := e.doStr(tc.method, tc.path, tc.body)
		if r.code != tc.status {
			t.Fatalf("%s %s: %d %s, want %d", tc.method, tc.path, r.code, r.body, tc.status)
		}
		if got := r.hdr.Get("X-Roster-Revision"); got != "12" {
			t.Fatalf("%s %s (%d): X-Roster-Revision %q, want 12", tc.method, tc.path, r.code, got)
		}
	}
}
