package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rosterhq/roster/fsm"
	"github.com/rosterhq/roster/registry"
)

func TestErrorStatus(t *testing.T) {
	t.Parallel()
	cases := []struct {
		err    error
		status int
		code   string
	}{
		{fmt.Errorf("wrapped: %w", fsm.ErrInvalidArgument), 400, "invalid_argument"},
		{fsm.ErrLeaseNotFound, 404, "lease_not_found"},
		{keyNotFound("/a"), 404, "not_found"},
		{errRouteNotFound, 404, "not_found"},
		{errMethodNotAllowed, 405, "method_not_allowed"},
		{fsm.ErrLeaseExists, 409, "already_exists"},
		{&fsm.CASError{Current: 7}, 409, "cas_failed"},
		{registry.ErrTooLarge, 413, "too_large"},
		{&http.MaxBytesError{Limit: 1}, 413, "too_large"},
		{registry.ErrNoLeader, 503, "no_leader"},
		{&registry.NotLeaderError{LeaderID: "n2", LeaderHTTP: "h:1"}, 503, "no_leader"},
		{fmt.Errorf("x: %w", registry.ErrClosed), 503, "no_leader"},
		{registry.ErrNotReady, 503, "not_ready"},
		{registry.ErrTimeout, 504, "timeout"},
		{context.DeadlineExceeded, 504, "timeout"},
		{fsm.ErrFailed, 500, "internal"},
		{errors.New("something else"), 500, "internal"},
	}
	for _, c := range cases {
		status, d := errorStatus(c.err)
		if status != c.status || d.Code != c.code || d.Message == "" {
			t.Errorf("%v: got %d %q %q, want %d %q", c.err, status, d.Code, d.Message, c.status, c.code)
		}
		if (d.CurrentModRevision != nil) != (c.code == "cas_failed") {
			t.Errorf("%v: current_mod_revision %v", c.err, d.CurrentModRevision)
		}
	}
	if _, d := errorStatus(fmt.Errorf("put: %w", &fsm.CASError{Current: 7})); *d.CurrentModRevision != 7 {
		t.Errorf("current_mod_revision %d, want 7", *d.CurrentModRevision)
	}
}

func TestUnknownRouteAndMethod(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.doStr("GET", "/nope", "").fails(t, 404, "not_found")
	e.doStr("GET", "/v1", "").fails(t, 404, "not_found")
	// Trailing slashes are not redirected (do fails the test on a 3xx).
	e.doStr("GET", "/v1/leases/", "").fails(t, 404, "not_found")
	e.doStr("GET", "/v1/cluster/", "").fails(t, 404, "not_found")
	e.doStr("GET", "/v1/kv", "").fails(t, 404, "not_found")
	e.doStr("GET", "/V1/cluster", "").fails(t, 404, "not_found")

	r := e.doStr("DELETE", "/v1/cluster", "")
	r.fails(t, 405, "method_not_allowed")
	if r.hdr.Get("Allow") != "GET" {
		t.Errorf("Allow %q", r.hdr.Get("Allow"))
	}
	e.doStr("PATCH", "/v1/kv/a", "x").fails(t, 405, "method_not_allowed")
	e.doStr("PUT", "/v1/leases", "{}").fails(t, 405, "method_not_allowed")
	e.doStr("GET", "/lease/grant?ttl=10", "").fails(t, 405, "method_not_allowed")
	// POST under /v1/kv is only …/incr.
	r = e.doStr("POST", "/v1/kv/a/b", "")
	r.fails(t, 405, "method_not_allowed")
	if !strings.Contains(r.hdr.Get("Allow"), "PUT") {
		t.Errorf("Allow %q", r.hdr.Get("Allow"))
	}
}

func TestHealthReadyCluster(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.doStr("GET", "/healthz", "").ok(t, 200, nil)
	e.doStr("HEAD", "/healthz", "").ok(t, 200, nil)
	e.doStr("GET", "/readyz", "").ok(t, 200, nil)

	var c struct {
		Leader *struct {
			ID       string `json:"id"`
			RaftAddr string `json:"raft_addr"`
			Leader   bool   `json:"leader"`
			Voter    bool   `json:"voter"`
		} `json:"leader"`
		Members      []map[string]any `json:"members"`
		Term         json.Number      `json:"term"`
		CommitIndex  json.Number      `json:"commit_index"`
		AppliedIndex json.Number      `json:"applied_index"`
	}
	e.doStr("GET", "/v1/cluster", "").ok(t, 200, &c)
	if c.Leader == nil || c.Leader.ID != "n1" || !c.Leader.Leader || !c.Leader.Voter || c.Leader.RaftAddr == "" {
		t.Fatalf("leader %+v", c.Leader)
	}
	if len(c.Members) != 1 || c.Term.String() == "0" || c.CommitIndex.String() == "0" || c.AppliedIndex == "" {
		t.Fatalf("cluster %+v", c)
	}
	for _, f := range []string{"id", "raft_addr", "http_addr", "voter", "leader"} {
		if _, ok := c.Members[0][f]; !ok {
			t.Errorf("member lacks %q: %v", f, c.Members[0])
		}
	}

	e.doStr("PUT", "/v1/kv/snap", "x").ok(t, 200, nil)
	var s struct {
		Index uint64 `json:"index"`
	}
	e.doStr("POST", "/v1/cluster/snapshot", "").ok(t, 200, &s)
	if s.Index == 0 {
		t.Fatalf("snapshot index 0")
	}
}

// A closed node is what a member without a leader looks like from here:
// readiness fails with the error JSON, and writes answer 503 no_leader
// having changed nothing.
func TestClosedNode(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.doStr("PUT", "/v1/kv/a", "1").ok(t, 200, nil)
	if err := e.node.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	r := e.doStr("GET", "/readyz", "")
	if r.code != 503 {
		t.Fatalf("readyz %d %s", r.code, r.body)
	}
	var ae apiErr
	if err := json.Unmarshal(r.body, &ae); err != nil || (ae.Error.Code != "no_leader" && ae.Error.Code != "not_ready") {
		t.Fatalf("readyz body %s", r.body)
	}
	e.doStr("PUT", "/v1/kv/a", "2").fails(t, 503, "no_leader")
	e.doStr("GET", "/v1/kv/a", "").fails(t, 503, "no_leader")
	e.doStr("POST", "/v1/leases", `{"ttl":10}`).fails(t, 503, "no_leader")
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.doStr("GET", "/v1/kv/m", "").fails(t, 404, "not_found")
	e.doStr("GET", "/nowhere", "").fails(t, 404, "not_found")
	r := e.doStr("GET", "/metrics", "").ok(t, 200, nil)
	body := string(r.body)
	for _, want := range []string{
		`roster_http_requests_total{code="404",method="GET",route="/v1/kv/*key"} 1`,
		`roster_http_requests_total{code="404",method="GET",route="unmatched"} 1`,
		`roster_http_request_duration_seconds_bucket{method="GET",route="/v1/kv/*key",le="+Inf"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}

	// Without a Gatherer, /metrics is not there; a second server on the
	// same registry cannot register the same metrics twice.
	s2, err := New(Config{}, e.node, testLogger(t), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s2.Handler())
	defer ts.Close()
	res, err := http.Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 404 {
		t.Fatalf("metrics without gatherer: %d", res.StatusCode)
	}
	if _, err := New(Config{}, e.node, testLogger(t), e.reg); err == nil {
		t.Fatalf("registering the metrics twice succeeded")
	}
}

func TestRecoverPanic(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	g := gin.New()
	g.Use(e.srv.recoverPanic)
	g.GET("/boom", func(*gin.Context) { panic("boom") })
	ts := httptest.NewServer(g)
	defer ts.Close()
	res, err := http.Get(ts.URL + "/boom")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var ae apiErr
	if err := json.NewDecoder(res.Body).Decode(&ae); err != nil || res.StatusCode != 500 || ae.Error.Code != "internal" {
		t.Fatalf("panic answer %d %+v %v", res.StatusCode, ae, err)
	}
}

func TestServeAndShutdown(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- e.srv.Serve(ln) }()
	res, err := http.Get("http://" + ln.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("healthz %d", res.StatusCode)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.srv.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if err := e.srv.Shutdown(ctx); err != nil {
		t.Fatalf("second shutdown: %v", err)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("serve returned %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("serve did not return after shutdown")
	}
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.srv.Serve(ln2); err != nil {
		t.Fatalf("serve after shutdown: %v", err)
	}
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	if _, err := New(Config{}, nil, nil, nil); !errors.Is(err, fsm.ErrInvalidArgument) {
		t.Fatalf("nil backend: %v", err)
	}
}
