package httpapi

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/rosterhq/roster/api"
	"github.com/rosterhq/roster/registry"
)

// TestMemberAddressesAreChecked: a member whose raft or HTTP address is not
// a dialable host:port (a port that is not a number 1..65535, no host) is
// refused with 400 and the configuration is unchanged. Such an address was
// accepted, leaving a member raft dialed in vain for ever (and, as a voter,
// one that counted towards the quorum without ever voting).
func TestMemberAddressesAreChecked(t *testing.T) {
	e := newEnv(t)
	bad := []struct{ method, path, body string }{
		{"POST", "/v1/cluster/members", `{"id":"n9","raft_addr":"127.0.0.1:notaport","voter":false}`},
		{"POST", "/v1/cluster/members", `{"id":"n9","raft_addr":"127.0.0.1:70000","voter":false}`},
		{"POST", "/v1/cluster/members", `{"id":"n9","raft_addr":"127.0.0.1:0","voter":false}`},
		{"POST", "/v1/cluster/members", `{"id":"n9","raft_addr":":7371","voter":false}`},
		{"POST", "/v1/cluster/members", `{"id":"n9","raft_addr":"127.0.0.1:7391","http_addr":"javascript:alert(1)","voter":false}`},
		{"POST", "/v1/cluster/members", `{"id":"n9","raft_addr":"127.0.0.1:7391","http_addr":"https://10.0.0.9:x","voter":false}`},
		{"POST", "/join", `{"id":"n9","addr":"10.0.0.9:port"}`},
		{"POST", "/join", `{"id":"n9","raftAddr":"10.0.0.9:7391","httpAddr":"10.0.0.9:-1"}`},
		{"PUT", "/v1/cluster/members/" + e.node.ID(), `{"raft_addr":"127.0.0.1:x"}`},
	}
	for _, tc := range bad {
		e.doStr(tc.method, tc.path, tc.body).fails(t, 400, "invalid_argument")
	}
	var cr api.ClusterResponse
	e.doStr("GET", "/v1/cluster", "").ok(t, 200, &cr)
	if len(cr.Members) != 1 {
		t.Fatalf("after refused requests the configuration is %+v", cr.Members)
	}
	// An HTTP address need not be dialable: rosterd -http :7370 without
	// -advertise-http joins with that (and warns).
	e.doStr("POST", "/v1/cluster/members", `{"id":"n8","raft_addr":"127.0.0.1:7392","http_addr":":7370","voter":false}`).ok(t, 200, nil)
	e.doStr("PUT", "/v1/cluster/members/n8", `{"raft_addr":"127.0.0.1:7392","http_addr":"0.0.0.0:7370"}`).ok(t, 200, nil)
}

// TestMemberIDWithASlashRefused: DELETE /v1/cluster/members/{id} routes on
// one path segment, so a member whose ID holds a "/" could be added but
// never removed again (rosterctl refuses such an ID itself). It is refused
// with 400 when added.
func TestMemberIDWithASlashRefused(t *testing.T) {
	e := newEnv(t)
	e.doStr("POST", "/v1/cluster/members", `{"id":"x/y","raft_addr":"127.0.0.1:7391","voter":false}`).fails(t, 400, "invalid_argument")
	e.doStr("POST", "/join", `{"id":"x/y","addr":"127.0.0.1:7391"}`).fails(t, 400, "invalid_argument")
	var cr api.ClusterResponse
	e.doStr("GET", "/v1/cluster", "").ok(t, 200, &cr)
	if len(cr.Members) != 1 {
		t.Fatalf("after refused requests the configuration is %+v", cr.Members)
	}
}

// TestJoinWithoutHTTPAddressKeepsTheRecordedOne: raftd's POST /join
// {"id","addr"} (and POST /v1/cluster/members without http_addr) for a
// member already in the configuration at that raft address changes
// nothing, so the HTTP address the member recorded stays: it was written
// over with "", and status, the leader hint and forwarding knew no HTTP
// address for the member until its metadata keeper wrote it again.
func TestJoinWithoutHTTPAddressKeepsTheRecordedOne(t *testing.T) {
	e := newEnv(t)
	e.doStr("POST", "/v1/cluster/members", `{"id":"n8","raft_addr":"127.0.0.1:7392","http_addr":"127.0.0.1:7393","voter":false}`).ok(t, 200, nil)
	var m api.Member
	e.doStr("POST", "/v1/cluster/members", `{"id":"n8","raft_addr":"127.0.0.1:7392","voter":false}`).ok(t, 200, &m)
	if m.HTTPAddr != "127.0.0.1:7393" {
		t.Errorf("the answer to a repeated add says http_addr %q, want the recorded 127.0.0.1:7393", m.HTTPAddr)
	}
	var cr api.ClusterResponse
	e.doStr("GET", "/v1/cluster", "").ok(t, 200, &cr)
	for _, m := range cr.Members {
		if m.ID == "n8" && m.HTTPAddr != "127.0.0.1:7393" {
			t.Fatalf("after a repeated add without http_addr, n8's http_addr is %q, want 127.0.0.1:7393", m.HTTPAddr)
		}
	}
}

// TestJoinFromAnotherClusterRefused: GET /v1/cluster shows the cluster
// ID; a join request carrying another cluster's ID is refused with 409
// cluster_mismatch and changes nothing, and the Joiner rosterd uses
// reports it as registry.ErrClusterMismatch, on which a joining member
// stops instead of retrying. A request with this cluster's ID, or
// without one (a fresh member), joins.
func TestJoinFromAnotherClusterRefused(t *testing.T) {
	e := newEnv(t)
	var cr api.ClusterResponse
	e.doStr("GET", "/v1/cluster", "").ok(t, 200, &cr)
	if len(cr.ClusterID) != 32 {
		t.Fatalf("cluster_id %q, want 32 hex digits", cr.ClusterID)
	}
	other := strings.Repeat("ab", 16)
	e.doStr("POST", "/v1/cluster/members", `{"id":"n9","raft_addr":"127.0.0.1:7391","voter":false,"cluster_id":"`+other+`"}`).
		fails(t, 409, api.CodeClusterMismatch)
	e.doStr("POST", "/v1/cluster/members", `{"id":"n9","raft_addr":"127.0.0.1:7391","voter":false,"cluster_id":"xyz"}`).
		fails(t, 400, api.CodeInvalidArgument)
	err := Joiner{Client: e.client}.Join(context.Background(), e.ts.URL,
		registry.JoinRequest{ID: "n9", RaftAddr: "127.0.0.1:7391", ClusterID: other})
	if !errors.Is(err, registry.ErrClusterMismatch) {
		t.Fatalf("the joiner reported %v, want registry.ErrClusterMismatch", err)
	}
	var after api.ClusterResponse
	e.doStr("GET", "/v1/cluster", "").ok(t, 200, &after)
	if len(after.Members) != 1 || after.ClusterID != cr.ClusterID {
		t.Fatalf("after refused joins: members %+v, cluster_id %q", after.Members, after.ClusterID)
	}
	e.doStr("POST", "/v1/cluster/members", `{"id":"n8","raft_addr":"127.0.0.1:7392","voter":false,"cluster_id":"`+cr.ClusterID+`"}`).ok(t, 200, nil)
	e.doStr("POST", "/v1/cluster/members", `{"id":"n7","raft_addr":"127.0.0.1:7393","voter":false}`).ok(t, 200, nil)
}
