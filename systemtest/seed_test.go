package systemtest

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rosterhq/roster/internal/cluster"
)

// TestSeedFrontEnds runs the seed projects' ways in (their JSON routes and
// the Redis port) against a real three-member cluster, each member serving
// RESP too. One cluster serves every subtest.
func TestSeedFrontEnds(t *testing.T) {
	c := cluster.New(t, "-tick", "100ms")
	ports := map[*cluster.Member]string{}
	for i := range 3 {
		m := c.Add()
		ports[m] = freeAddr(t)
		if i == 0 {
			m.Start("-redis", ports[m])
			c.WaitReady(30*time.Second, m)
			continue
		}
		m.Start("-redis", ports[m], "-join", c.Members[0].HTTP)
	}
	c.WaitReady(60*time.Second, c.Members...)
	c.WaitVoters(60*time.Second, 3)
	t.Run("SeedRoutesThroughFollower", func(t *testing.T) { seedRoutesThroughFollower(t, c) })
	t.Run("RedisOnTheLeader", func(t *testing.T) { redisOnTheLeader(t, c, ports) })
	t.Run("RedisOnAFollower", func(t *testing.T) { redisOnAFollower(t, c, ports) })
	t.Run("RedisCLIAndBenchmark", func(t *testing.T) { redisTools(t, c, ports) })
}

// freeAddr is a free loopback address for a member's Redis port.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// follower returns a running member that is not the leader.
func follower(t testing.TB, c *cluster.Cluster) *cluster.Member {
	t.Helper()
	leader := c.Leader(30 * time.Second)
	for _, m := range c.Running() {
		if m != leader {
			return m
		}
	}
	t.Fatal("no follower")
	return nil
}

// storeView is a member's linearizable listing of every key: what a "bad
// request changed nothing" check compares.
func storeView(t testing.TB, m *cluster.Member) string {
	t.Helper()
	code, b := do(t, "GET", m.URL("/v1/kv/?prefix=true"), nil)
	if code != 200 {
		t.Fatalf("list via %s: %d %s", m.ID, code, b)
	}
	return string(b)
}

// seedRoutesThroughFollower runs the seed projects' JSON routes (hraftd's
// POST /key, the gin + raft demo's /put, /get, /inc, /delete) against a
// follower, checks what they stored through another member, and checks
// that bad bodies sent to the follower change nothing.
func seedRoutesThroughFollower(t *testing.T, c *cluster.Cluster) {
	f := follower(t, c)
	other := c.Leader(30 * time.Second)

	if code, b := do(t, "POST", f.URL("/key"), []byte(`{"hr/b":"2","hr/a":"1"}`)); code != 200 || len(b) != 0 {
		t.Fatalf("POST /key via follower: %d %q", code, b)
	}
	var list listJSON
	code, b := do(t, "GET", other.URL("/v1/kv/hr/?prefix=true"), nil)
	mustJSON(t, code, b, &list)
	if len(list.KVs) != 2 || list.KVs[0].Value != "1" || list.KVs[1].ModRevision != list.KVs[0].ModRevision+1 {
		t.Fatalf("POST /key stored %s", b)
	}
	for _, step := range []struct{ path, body, want string }{
		{"/put", `{"key":"demo/x","value":"hello"}`, `{"value":"hello"}`},
		{"/get", `{"key":"demo/x"}`, `{"value":"hello"}`},
		{"/inc", `{"key":"demo/n","value":3}`, `{"value":3}`},
		{"/inc", `{"key":"demo/n","value":-1}`, `{"value":2}`},
		{"/get", `{"key":"demo/n"}`, `{"value":2}`},
		{"/delete", `{"key":"demo/x"}`, `{"value":null}`},
	} {
		code, b := do(t, "POST", f.URL(step.path), []byte(step.body))
		if code != 200 || string(b) != step.want {
			t.Fatalf("POST %s %s via follower: %d %s, want %s", step.path, step.body, code, b, step.want)
		}
	}
	if code, b := do(t, "GET", other.URL("/key/demo/n"), nil); code != 200 || string(b) != "2" {
		t.Fatalf("/inc result via another member: %d %q", code, b)
	}
	// The demo's /get is linearizable on a follower: it sees a write made
	// through another member the moment that write was answered.
	for i := range 20 {
		v := strings.Repeat("v", i+1)
		if code, b := do(t, "PUT", other.URL("/key/demo/lin"), []byte(v)); code != 200 {
			t.Fatalf("put: %d %s", code, b)
		}
		if code, b := do(t, "POST", f.URL("/get"), []byte(`{"key":"demo/lin"}`)); code != 200 || string(b) != `{"value":"`+v+`"}` {
			t.Fatalf("follower /get after write %d: %d %s", i, code, b)
		}
	}

	before := storeView(t, other)
	for _, bad := range []struct{ path, body string }{
		{"/key", `{"hr/a":"x","hr/c":3}`},
		{"/key", `{}`},
		{"/put", `{"key":"demo/y"}`},
		{"/put", `{"key":"demo/y","value":1.5}`},
		{"/inc", `{"key":"demo/n","value":"1"}`},
		{"/inc", `{"key":"demo/x2","value":[1]}`},
		{"/get", `[]`},
		{"/delete", `{"key":"demo/n","extra":true}`},
	} {
		code, b := do(t, "POST", f.URL(bad.path), []byte(bad.body))
		if code != 400 {
			t.Fatalf("POST %s %s via follower: %d %s, want 400", bad.path, bad.body, code, b)
		}
	}
	if after := storeView(t, other); after != before {
		t.Fatalf("refused requests via a follower changed the store:\n before %s\n after  %s", before, after)
	}
}
