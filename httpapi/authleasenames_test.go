package httpapi

import (
	"strings"
	"testing"

	"github.com/rosterhq/roster/api"
)

// TestAuthLeaseRefusalsNameNoUnreadableKey: a route naming a lease the
// token may not renew is 403, and the refusal names the key of the lease
// the token may not write only when the token may read it. Lease IDs are
// close to guessable, so before the fix a token could list, lease by
// lease, the keys of every other registrant through the refusals of
// GET /v1/leases/{id} (or any other lease route), keys it may not list.
func TestAuthLeaseRefusalsNameNoUnreadableKey(t *testing.T) {
	e := newAuthEnv(t)
	e.putRole("api", `{"rules":[{"prefix":"/services/api/","read":true,"write":true}]}`)
	e.putRole("peek", `{"rules":[{"prefix":"/services/api/","read":true,"write":true},{"prefix":"/services/pay/","read":true}]}`)
	api1 := e.createToken("api", "api")
	peek := e.createToken("peek", "peek")
	var l api.GrantResponse
	e.as(rootSecret, "POST", "/v1/leases", `{"ttl":60,"name":"/services/pay"}`).ok(t, 201, &l)
	L := l.ID.String()
	e.as(rootSecret, "PUT", "/v1/kv/services/pay/10.0.0.7:8443?lease="+L, "x").ok(t, 200, nil)
	for _, tc := range []struct{ method, path, body string }{
		{"GET", "/v1/leases/" + L, ""},
		{"POST", "/v1/leases/" + L + "/keepalive", ""},
		{"POST", "/v1/leases/keepalive", `{"ids":["` + L + `"]}`},
		{"DELETE", "/v1/leases/" + L, ""},
		{"POST", "/lease/timetolive/" + L, ""},
		{"PUT", "/v1/kv/services/api/a?lease=" + L, "v"},
	} {
		err := e.as(api1, tc.method, tc.path, tc.body).fails(t, 403, api.CodePermissionDenied)
		if strings.Contains(err.Error.Message, "10.0.0.7") || !strings.Contains(err.Error.Message, "every key attached to lease "+L) {
			t.Errorf("%s %s by a token that may not read the lease's key: %q", tc.method, tc.path, err.Error.Message)
		}
		err = e.as(peek, tc.method, tc.path, tc.body).fails(t, 403, api.CodePermissionDenied)
		if !strings.Contains(err.Error.Message, `may not write "/services/pay/10.0.0.7:8443", attached to lease `+L) {
			t.Errorf("%s %s by a token that may read the lease's key: %q, want it named", tc.method, tc.path, err.Error.Message)
		}
	}
}
