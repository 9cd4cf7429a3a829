package httpapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rosterhq/roster/internal/testutil"
	"github.com/rosterhq/roster/registry"
)

// newClusterEnv starts n in-process members, each with the API in front of
// it: the first bootstraps and adds the others. It returns them with the
// leader first.
func newClusterEnv(t testing.TB, n int) []*env {
	t.Helper()
	return newClusterEnvWith(t, n, nil)
}

// newClusterEnvWith is newClusterEnv with each member's configuration
// adjusted by edit (when not nil).
func newClusterEnvWith(t testing.TB, n int, edit func(*registry.Config)) []*env {
	t.Helper()
	return newClusterEnvOpts(t, n, edit, nil)
}

// newClusterEnvOpts is newClusterEnvWith with each member's API
// configuration adjusted by srvEdit (when not nil).
func newClusterEnvOpts(t testing.TB, n int, edit func(*registry.Config), srvEdit func(*Config)) []*env {
	t.Helper()
	log := testLogger(t)
	var envs []*env
	for i := range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		rc := registry.Config{
			ID: fmt.Sprintf("n%d", i+1), DataDir: t.TempDir(), RaftAddr: "127.0.0.1:0",
			Bootstrap: i == 0, NoSync: true, Tick: testTick, NodeNumber: -1,
			HTTPAdvertise: ln.Addr().String(), CommitTimeout: 10 * time.Millisecond,
		}
		if edit != nil {
			edit(&rc)
		}
		node, err := registry.Open(rc, log.With("node", rc.ID), prometheus.NewRegistry())
		if err != nil {
			t.Fatalf("open node: %v", err)
		}
		t.Cleanup(func() { _ = node.Close() })
		reg := prometheus.NewRegistry()
		sc := Config{Gatherer: reg}
		if srvEdit != nil {
			srvEdit(&sc)
		}
		srv, err := New(sc, node, log, reg)
		if err != nil {
			t.Fatal(err)
		}
		ts := httptest.NewUnstartedServer(srv.Handler())
		ts.Listener.Close()
		ts.Listener = ln
		ts.Start()
		t.Cleanup(ts.Close)
		client := ts.Client()
		client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		envs = append(envs, &env{t: t, node: node, srv: srv, ts: ts, client: client, reg: reg})
		if i == 0 {
			testutil.Eventually(t, 10*time.Second, "first member ready", func() bool { return node.Ready() == nil })
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err = envs[0].node.AddMember(ctx, registry.JoinRequest{ID: rc.ID, RaftAddr: node.RaftAddr(), HTTPAddr: rc.HTTPAdvertise, Voter: true})
		cancel()
		if err != nil {
			t.Fatalf("add %s: %v", rc.ID, err)
		}
	}
	for _, e := range envs {
		testutil.Eventually(t, 20*time.Second, e.node.ID()+" ready", func() bool { return e.node.Ready() == nil })
	}
	for i, e := range envs {
		if e.node.IsLeader() {
			envs[0], envs[i] = envs[i], envs[0]
		}
	}
	return envs
}

// TestFollowerAcceptsWhatTheLeaderAccepts (issue 8, hole 5): every
// compatibility form the leader takes, a follower takes too — among them
// a keep-alive whose form body, URL-encoded, is three times the value
// limit, which the old HTTP forwarding refused with 413 on a follower.
func TestFollowerAcceptsWhatTheLeaderAccepts(t *testing.T) {
	envs := newClusterEnv(t, 2)
	leader, follower := envs[0], envs[1]
	max := leader.node.MaxValueBytes()
	// A value just under the limit whose bytes URL-encode to three
	// characters each ("/" is "%2F") and need no escaping in JSON.
	big := strings.Repeat("/", max-64)
	bigForm := "key=node&data=" + url.QueryEscape(big)
	var mp bytes.Buffer
	mw := multipart.NewWriter(&mp)
	_ = mw.WriteField("key", "node")
	_ = mw.WriteField("data", "multipart")
	_ = mw.Close()

	for _, e := range []*env{leader, follower} {
		who := e.node.ID()
		name := "/compat/" + who
		id := e.compatGrant("30", name)
		check := func(what string, r response) {
			t.Helper()
			if r.code != http.StatusOK {
				t.Fatalf("%s on %s: %d %.200s", what, who, r.code, r.body)
			}
		}
		check("urlencoded keep-alive with a maximal value", e.form("/lease/keepalive/"+id, bigForm))
		st, err := e.node.Read(context.Background(), false)
		if err != nil {
			t.Fatal(err)
		}
		if kv, ok := st.Get(name + "/node"); !ok || len(kv.Value) != len(big) {
			t.Fatalf("the maximal value did not arrive through %s", who)
		}
		check("multipart keep-alive", e.do("POST", "/lease/keepalive/"+id, bytes.NewReader(mp.Bytes()), "Content-Type", mw.FormDataContentType()))
		check("keep-alive with the data in the query", e.doStr("POST", "/lease/keepalive/"+id+"?key=q&data=x", ""))
		check("timetolive", e.doStr("POST", "/lease/timetolive/"+id, ""))
		r := e.form("/lease/kv/node", "prefix="+url.QueryEscape(name))
		check("lease/kv", r)
		if string(r.body) != `["multipart"]` {
			t.Fatalf("lease/kv on %s answered %.100s", who, r.body)
		}
		check("PUT /key", e.do("PUT", "/key/compat-"+who, strings.NewReader("v")))
		r = e.doStr("GET", "/key/compat-"+who, "")
		check("GET /key", r)
		if string(r.body) != "v" {
			t.Fatalf("GET /key on %s: %q", who, r.body)
		}
		check("DELETE /key", e.doStr("DELETE", "/key/compat-"+who, ""))
		check("revoke", e.doStr("POST", "/lease/revoke/"+id, ""))
	}
}

// TestLeaderHeader checks every answer names the leader, so a client can
// send its writes there.
func TestLeaderHeader(t *testing.T) {
	envs := newClusterEnv(t, 2)
	want := envs[0].ts.Listener.Addr().String()
	for _, e := range envs {
		for _, path := range []string{"/v1/kv/none", "/healthz", "/v1/cluster"} {
			r := e.doStr("GET", path, "")
			if got := r.hdr.Get(headerLeader); got != want {
				t.Fatalf("GET %s on %s: %s %q, want %q", path, e.node.ID(), headerLeader, got, want)
			}
		}
	}
}

// TestDebugHandler checks Config.Debug is served under /debug/ (rosterd's
// -pprof) and that nothing is there without it.
func TestDebugHandler(t *testing.T) {
	e := newEnvWith(t, nil, func(c *Config) {
		c.Debug = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte("debug " + r.URL.Path))
		})
	})
	r := e.doStr("GET", "/debug/pprof/heap", "").ok(t, 200, nil)
	if string(r.body) != "debug /debug/pprof/heap" {
		t.Fatalf("debug handler answered %q", r.body)
	}
	newEnv(t).doStr("GET", "/debug/pprof/", "").fails(t, 404, "not_found")
}

// TestFollowerAnswersLargeTxnsLikeTheLeader: a txn (POST /key) over the
// byte limit is 413 through a follower too, and one under the limit
// commits through a follower too, with a value limit large enough that
// the txn is bigger than the old frame limit of the forwarding channel.
// A follower used to send either to the leader in a frame over that
// limit: the leader dropped the connection and the follower answered 504.
func TestFollowerAnswersLargeTxnsLikeTheLeader(t *testing.T) {
	const maxValue = 2 << 20
	envs := newClusterEnvWith(t, 2, func(rc *registry.Config) { rc.MaxValue = maxValue })
	body := func(who string, n, size int) string {
		var b strings.Builder
		b.WriteString("{")
		for i := range n {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `"big/%s/%d":"%s"`, who, i, strings.Repeat("v", size))
		}
		b.WriteString("}")
		return b.String()
	}
	for _, e := range envs {
		who := e.node.ID()
		// 7 × 1.875 MiB: over the txn limit of 4 × 2 MiB, and over the
		// channel's frame limit: a follower must refuse it itself.
		r := e.doStr("POST", "/key", body(who, 7, maxValue*15/16))
		r.fails(t, 413, "too_large")
		// 7 × 1 MiB: under the txn limit, over 2 MiB + the old slack.
		// Entries this large can hold up a loaded two-member cluster's
		// heartbeats until the leader steps down: the txn then ends 504
		// (outcome unknown) or 503, and is sent again (it is idempotent).
		r = e.doStr("POST", "/key", body(who, 7, 1<<20))
		for try := 0; try < 3 && (r.code == 504 || r.code == 503); try++ {
			t.Logf("txn of 7 MiB through %s: %d %.200s; sending it again", who, r.code, r.body)
			r = e.doStr("POST", "/key", body(who, 7, 1<<20))
		}
		if r.code != 200 {
			t.Fatalf("txn of 7 MiB through %s: %d %.200s", who, r.code, r.body)
		}
		r = e.doStr("GET", "/v1/kv/big/"+who+"/?prefix=true&count_only=true", "")
		if !strings.Contains(string(r.body), `"count":7`) {
			t.Fatalf("keys of the txns through %s: %s", who, r.body)
		}
	}
}

// TestFollowerAnswersErrorsLikeTheLeader: a write the leader refuses is
// refused through a follower with the same status and error code (the
// refusal crosses the forwarding channel): among them the role, token and
// member lookups, which a follower answered 500 internal.
func TestFollowerAnswersErrorsLikeTheLeader(t *testing.T) {
	envs := newClusterEnv(t, 2)
	leader := envs[0]
	leader.doStr("PUT", "/v1/kv/cas", "v").ok(t, 200, nil)
	leader.doStr("PUT", "/v1/kv/text", "v").ok(t, 200, nil)
	leader.doStr("POST", "/v1/leases", `{"ttl":10,"id":"77"}`).ok(t, 201, nil)
	cases := []struct {
		method, path, body string
		status             int
		code               string
	}{
		{"PUT", "/v1/kv/cas?cas=99", "x", 409, "cas_failed"},
		{"DELETE", "/v1/kv/cas?cas=99", "", 409, "cas_failed"},
		{"PUT", "/v1/kv/k?lease=12345", "x", 404, "lease_not_found"},
		{"DELETE", "/v1/leases/12345", "", 404, "lease_not_found"},
		{"POST", "/v1/leases/12345/keepalive", "", 404, "lease_not_found"},
		{"POST", "/v1/leases", `{"ttl":10,"id":"77"}`, 409, "already_exists"},
		{"POST", "/v1/kv/text/incr", "", 400, "invalid_argument"},
		{"POST", "/v1/auth/tokens", `{"name":"t","roles":["none"]}`, 400, "invalid_argument"},
		{"DELETE", "/v1/auth/roles/none", "", 404, "not_found"},
		{"DELETE", "/v1/auth/tokens/none", "", 404, "not_found"},
		{"PUT", "/v1/cluster/members/none", `{"raft_addr":"127.0.0.1:1"}`, 404, "not_found"},
		{"DELETE", "/v1/cluster/members/none", "", 404, "not_found"},
	}
	for _, e := range envs {
		for _, tc := range cases {
			r := e.doStr(tc.method, tc.path, tc.body)
			if r.code != tc.status {
				t.Errorf("%s %s on %s: %d %s, want %d %s", tc.method, tc.path, e.node.ID(), r.code, r.body, tc.status, tc.code)
				continue
			}
			ae := r.fails(t, tc.status, tc.code)
			if tc.code == "cas_failed" && (ae.Error.CurrentModRevision == nil || *ae.Error.CurrentModRevision != 1) {
				t.Errorf("%s %s on %s: %s, want current_mod_revision 1", tc.method, tc.path, e.node.ID(), r.body)
			}
		}
	}
}

// A member removed from the cluster applies nothing more: its watch
// streams end (the client resumes them on another member) and it refuses
// new ones with 503 no_leader, rather than stream heartbeats and never
// another event; it refuses blocking reads likewise, which waited their
// whole wait (up to 5 minutes) for a change that could not come.
func TestRemovedMemberEndsItsWatches(t *testing.T) {
	envs := newClusterEnvOpts(t, 3, nil, func(c *Config) { c.heartbeat = 200 * time.Millisecond })
	victim := envs[2]
	conn, br, res := openRawWatch(t, victim.ts.Listener.Addr().String(), "/v1/watch/rm/?prefix=true")
	if res.StatusCode != 200 {
		t.Fatalf("watch on %s: %d", victim.node.ID(), res.StatusCode)
	}
	if err := envs[0].node.RemoveMember(context.Background(), victim.node.ID()); err != nil {
		t.Fatalf("remove: %v", err)
	}
	// From raft's one best-effort send of the configuration without it,
	// or else from the leader when it asks (registry/removal.go).
	testutil.Eventually(t, 20*time.Second, "the removed member knows it", victim.node.Removed)
	envs[0].doStr("PUT", "/v1/kv/rm/a", "1").ok(t, 200, nil)
	_ = conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatal("the removed member's watch stream is still open")
			}
			break // ended
		}
		if strings.HasPrefix(line, "data:") {
			t.Logf("event before the removal took effect: %s", line)
		}
	}
	victim.do("GET", "/v1/watch/rm/?prefix=true", nil).fails(t, 503, "no_leader")
	// Nor does a blocking read wait for a change that will not come (and
	// then answer the frozen state, when stale).
	for _, stale := range []string{"true", "false"} {
		victim.doStr("GET", "/v1/kv/rm/?prefix=true&index=1000&wait=20s&stale="+stale, "").fails(t, 503, "no_leader")
	}
}
