package httpapi

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rosterhq/roster/api"
	"github.com/rosterhq/roster/internal/testutil"
	"github.com/rosterhq/roster/registry"
)

// TestAuthCASFailedWithholdsRevisionFromWriteOnly: a token that may write
// a key but not read it may still compare-and-swap it (a CAS needs write),
// but its 409 cas_failed answer says neither in current_mod_revision nor
// in its message what the key's mod revision is; a token that may read
// the key, and the root token, get it. The same on the leader and on a
// follower, which forwards the write and answers the leader's refusal.
func TestAuthCASFailedWithholdsRevisionFromWriteOnly(t *testing.T) {
	envs := newClusterEnvOpts(t, 2, func(rc *registry.Config) {
		rc.Auth, rc.RootTokenHash = true, registry.HashToken(rootSecret)
	}, func(sc *Config) { sc.Auth = true })
	leader := envs[0]
	testutil.Eventually(t, 10*time.Second, "root token created", func() bool {
		return leader.as(rootSecret, "GET", "/v1/auth/whoami", "").code == 200
	})
	leader.putRole("dropbox", `{"rules":[{"prefix":"/drop/","write":true}]}`)
	leader.putRole("drop-rw", `{"rules":[{"prefix":"/drop/","read":true,"write":true}]}`)
	writer := leader.createToken("writer", "dropbox")
	reader := leader.createToken("reader-writer", "drop-rw")
	mod := leader.as(rootSecret, "PUT", "/v1/kv/drop/x", "secret").revision(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := envs[1].node.Read(ctx, false); err != nil { // it has the tokens
		t.Fatal(err)
	}
	modStr := strconv.FormatInt(mod, 10)
	wrong := strconv.FormatInt(mod+1000, 10)

	for i, e := range envs {
		for _, tc := range []struct{ method, path string }{
			{"PUT", "/v1/kv/drop/x?cas=" + wrong},
			{"PUT", "/v1/kv/drop/x?cas=0"}, // create-only on a key that exists
			{"DELETE", "/v1/kv/drop/x?cas=" + wrong},
		} {
			before := snapshotOf(leader.node.FSM().State())
			r := e.as(writer, tc.method, tc.path, "mine")
			ae := r.fails(t, 409, api.CodeCASFailed)
			if ae.Error.CurrentModRevision != nil || strings.Contains(string(r.body), "current_mod_revision") ||
				strings.Contains(ae.Error.Message, "mod_revision is") || strings.Contains(ae.Error.Message, modStr) {
				t.Errorf("member %d: %s %s with a write-only token revealed the key's mod revision: %s", i, tc.method, tc.path, r.body)
			}
			if after := snapshotOf(leader.node.FSM().State()); after != before {
				t.Fatalf("the failed CAS changed the state:\n%s\n---\n%s", before, after)
			}
			for _, tok := range []string{reader, rootSecret} {
				ae := e.as(tok, tc.method, tc.path, "mine").fails(t, 409, api.CodeCASFailed)
				if ae.Error.CurrentModRevision == nil || *ae.Error.CurrentModRevision != mod {
					t.Errorf("member %d: %s %s with a token that may read the key: current_mod_revision %v, want %d",
						i, tc.method, tc.path, ae.Error.CurrentModRevision, mod)
				}
			}
		}
	}
	// The write-only token's CAS itself works.
	next := envs[1].as(writer, "PUT", "/v1/kv/drop/x?cas="+modStr, "mine").ok(t, 200, nil).revision(t)
	envs[1].as(writer, "DELETE", "/v1/kv/drop/x?cas="+strconv.FormatInt(next, 10), "").ok(t, 200, nil)
	envs[0].as(writer, "PUT", "/v1/kv/drop/y?cas=0", "new").ok(t, 200, nil)
}
