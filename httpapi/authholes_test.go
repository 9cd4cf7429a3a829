package httpapi

import (
	"strings"
	"testing"

	"github.com/rosterhq/roster/api"
)

// TestAuthPrevNeedsRead: PUT ?prev=true answers the key's previous value,
// which is a read: a token that may write a key but not read it is
// refused, and the refusal changes nothing (etcd's rule for prev_kv).
func TestAuthPrevNeedsRead(t *testing.T) {
	e := newAuthEnv(t)
	e.putRole("dropbox", `{"rules":[{"prefix":"/drop/","write":true}]}`)
	w := e.createToken("writer", "dropbox")
	e.as(rootSecret, "PUT", "/v1/kv/drop/x", "secret").ok(t, 200, nil)

	e.as(w, "GET", "/v1/kv/drop/x", "").fails(t, 403, api.CodePermissionDenied)
	before := snapshotOf(e.node.FSM().State())
	r := e.as(w, "PUT", "/v1/kv/drop/x?prev=true", "mine")
	if strings.Contains(string(r.body), "secret") {
		t.Fatalf("a write-only token read the previous value through prev=true: %d %s", r.code, r.body)
	}
	r.fails(t, 403, api.CodePermissionDenied)
	if after := snapshotOf(e.node.FSM().State()); after != before {
		t.Fatalf("the refused put changed the state:\n%s\n---\n%s", before, after)
	}
	// Without prev the write is allowed.
	e.as(w, "PUT", "/v1/kv/drop/x", "mine").ok(t, 200, nil)
	e.as(w, "PUT", "/v1/kv/drop/x?prev=false", "mine").ok(t, 200, nil)
}
