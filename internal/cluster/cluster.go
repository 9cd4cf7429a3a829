package cluster

import (
	"encoding/json"
	"fmt"
	"github.com/rosterhq/roster/internal/testutil"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Cluster is a set of rosterd processes started by a test.
type Cluster struct {
	t       testing.TB
	bin     string
	dir     string // the members' data directories are under it
	Members []*Member
	// Args are extra flags for every member (e.g. "-tick", "100ms").
	Args []string
	// Env is extra environment (KEY=value) for every member added after
	// it is set: secrets such as ROSTER_TOKEN, which are never flags.
	Env    []string
	Client *http.Client
	// Net, when set (StartNet, WithNet), is the proxied network between
	// the members: partitions, black holes and delays per directed link.
	Net *Net
	// redis: members added from now on serve the Redis port (WithRedis).
	redis bool
}

// New prepares an empty cluster; members are stopped and, if the test
// failed, their logs printed at cleanup.
func New(t testing.TB, args ...string) *Cluster {
	t.Helper()
	// The directory is made before the cleanup below is registered, so
	// that its removal runs after the members are killed (cleanups run
	// last registered first): a member still writing while its directory
	// is removed fails the test with "directory not empty".
	c := &Cluster{t: t, bin: Binary(t), dir: t.TempDir(), Args: args, Client: &http.Client{Timeout: 15 * time.Second}}
	t.Cleanup(func() {
		for _, m := range c.Members {
			m.Kill()
		}
		if t.Failed() {
			for _, m := range c.Members {
				t.Logf("---- log of member %s (%s) ----\n%s", m.ID, m.HTTP, m.Logs())
			}
		}
	})
	return c
}

// Start starts n members: the first bootstraps, the others join through
// the first; it waits until all are ready voters.
func Start(t testing.TB, n int, args ...string) *Cluster {
	t.Helper()
	return StartWith(t, n, Options{}, args...)
}

// Options are what StartWith adds to Start.
type Options struct {
	// Client is the HTTP client every helper uses (nil: the default): one
	// that trusts a test CA and presents a client certificate, or adds a
	// token (TokenClient), for a secured cluster.
	Client *http.Client
	// Env is extra environment for every member (Cluster.Env).
	Env []string
}

// StartWith is Start with options, for secured clusters.
func StartWith(t testing.TB, n int, o Options, args ...string) *Cluster {
	t.Helper()
	c := New(t, args...)
	if o.Client != nil {
		c.Client = o.Client
	}
	c.Env = o.Env
	c.Launch(n)
	return c
}

// StartNet is Start with every member behind the test's proxies (Net), so
// the test can partition them.
func StartNet(t testing.TB, n int, args ...string) *Cluster {
	t.Helper()
	if err := NetAvailable(); err != nil {
		t.Skipf("%v", err)
	}
	c := New(t, args...).WithNet()
	c.Launch(n)
	return c
}

// WithNet puts the members added from now on behind proxies (c.Net).
func (c *Cluster) WithNet() *Cluster {
	if c.Net == nil {
		c.Net = newNet(c.t)
	}
	return c
}

// WithRedis gives the members added from now on a Redis port of their
// own (-redis on a free port, Member.Redis), kept across restarts.
func (c *Cluster) WithRedis() *Cluster {
	c.redis = true
	return c
}

// Launch adds and starts n members: the first bootstraps, the others join
// through the first; it waits until all are ready voters.
func (c *Cluster) Launch(n int) {
	c.t.Helper()
	ms := make([]*Member, n)
	for i := range ms {
		ms[i] = c.Add()
	}
	c.Boot(ms...)
}

// Boot starts members added (and possibly adjusted: Dir, Env, Args) but
// not started yet: the first bootstraps, the others join through it; it
// waits until all are ready voters.
func (c *Cluster) Boot(ms ...*Member) {
	c.t.Helper()
	first := ms[0]
	first.Start()
	c.WaitReady(30*time.Second, first)
	for _, m := range ms[1:] {
		m.Start("-join", first.HTTP)
	}
	c.WaitReady(60*time.Second, c.Members...)
	c.WaitVoters(60*time.Second, len(ms))
}

// Add allocates a new member (not started) with fresh ports and data dir.
func (c *Cluster) Add() *Member {
	c.t.Helper()
	id := fmt.Sprintf("n%d", len(c.Members)+1)
	m := &Member{
		ID: id, HTTP: freePort(c.t), Raft: freePort(c.t),
		Dir: filepath.Join(c.dir, id), Args: append([]string(nil), c.Args...),
		t: c.t, bin: c.bin, logs: &testutil.SyncBuffer{}, Env: append([]string(nil), c.Env...),
	}
	if c.redis {
		m.Redis = freePort(c.t)
	}
	if c.Net != nil {
		c.Net.attach(m)
	}
	c.Members = append(c.Members, m)
	return m
}

// Running lists the members whose process runs.
func (c *Cluster) Running() []*Member {
	var out []*Member
	for _, m := range c.Members {
		if m.Running() {
			out = append(out, m)
		}
	}
	return out
}

// Endpoints lists the HTTP addresses of the running members.
func (c *Cluster) Endpoints() []string {
	var out []string
	for _, m := range c.Running() {
		out = append(out, m.URL(""))
	}
	return out
}

// Eventually polls cond until it holds or d passes.
func (c *Cluster) Eventually(d time.Duration, what string, cond func() bool) {
	c.t.Helper()
	testutil.Eventually(c.t, d, what, cond)
}

// Ready reports whether m answers /readyz with 200.
func (c *Cluster) Ready(m *Member) bool { return c.answersOK(m, "/readyz") }

// answersOK reports whether m answers GET path with 200.
func (c *Cluster) answersOK(m *Member, path string) bool {
	resp, err := c.Client.Get(m.URL(path))
	if err != nil {
		return false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// WaitServing waits until m answers /healthz with 200: its process is up
// and listening, though it may still wait to be added. Add a voter only
// then: a second voter that is not yet listening leaves a one-member
// cluster without a quorum, and its leader steps down.
func (c *Cluster) WaitServing(d time.Duration, m *Member) {
	c.t.Helper()
	c.Eventually(d, "member "+m.ID+" serving /healthz", func() bool {
		if !m.Running() {
			c.t.Fatalf("cluster: member %s exited while waiting for it to serve", m.ID)
		}
		return c.answersOK(m, "/healthz")
	})
}

// WaitReady waits until every given member answers /readyz with 200.
func (c *Cluster) WaitReady(d time.Duration, ms ...*Member) {
	c.t.Helper()
	for _, m := range ms {
		c.Eventually(d, "member "+m.ID+" ready", func() bool {
			if !m.Running() {
				c.t.Fatalf("cluster: member %s exited while waiting for it to be ready", m.ID)
			}
			return c.Ready(m)
		})
	}
}

// Info is the part of GET /v1/cluster the tests use.
type Info struct {
	Leader *struct {
		ID       string `json:"id"`
		HTTPAddr string `json:"http_addr"`
	} `json:"leader"`
	Members []struct {
		ID       string `json:"id"`
		RaftAddr string `json:"raft_addr"`
		HTTPAddr string `json:"http_addr"`
		Voter    bool   `json:"voter"`
		Leader   bool   `json:"leader"`
	} `json:"members"`
	Term         uint64 `json:"term"`
	CommitIndex  uint64 `json:"commit_index"`
	AppliedIndex uint64 `json:"applied_index"`
}

// ClusterInfo fetches GET /v1/cluster from m.
func (c *Cluster) ClusterInfo(m *Member) (Info, error) {
	var info Info
	resp, err := c.Client.Get(m.URL("/v1/cluster"))
	if err != nil {
		return info, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return info, fmt.Errorf("GET /v1/cluster: %d %s", resp.StatusCode, strings.TrimSpace(string(b)))
	}
	return info, json.NewDecoder(resp.Body).Decode(&info)
}

// Metrics fetches m's /metrics and returns every sample by its name with
// its labels, as the text format writes them: "roster_checkpoints_total",
// `roster_raft_apply_duration_seconds_count{command="batch"}`.
func (c *Cluster) Metrics(m *Member) (map[string]float64, error) {
	resp, err := c.Client.Get(m.URL("/metrics"))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics on %s: %d %s", m.ID, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	out := make(map[string]float64)
	for line := range strings.SplitSeq(string(body), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			return nil, fmt.Errorf("metrics of %s: malformed line %q", m.ID, line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			return nil, fmt.Errorf("metrics of %s: line %q: %v", m.ID, line, err)
		}
		out[line[:i]] = v
	}
	return out, nil
}

// WaitVoters waits until a running member reports n voters and a leader.
func (c *Cluster) WaitVoters(d time.Duration, n int) {
	c.t.Helper()
	c.Eventually(d, fmt.Sprintf("%d voters", n), func() bool {
		for _, m := range c.Running() {
			info, err := c.ClusterInfo(m)
			if err != nil || info.Leader == nil {
				continue
			}
			v := 0
			for _, mm := range info.Members {
				if mm.Voter {
					v++
				}
			}
			return v == n
		}
		return false
	})
}

// Leader waits until the running members agree on a leader that is ready
// and returns it.
func (c *Cluster) Leader(d time.Duration) *Member {
	c.t.Helper()
	var leader *Member
	c.Eventually(d, "a ready leader", func() bool {
		leader = nil
		for _, m := range c.Running() {
			info, err := c.ClusterInfo(m)
			if err != nil || info.Leader == nil {
				return false
			}
			for _, mm := range c.Members {
				if mm.ID == info.Leader.ID {
					if leader != nil && leader != mm {
						return false
					}
					leader = mm
				}
			}
		}
		return leader != nil && leader.Running() && c.Ready(leader)
	})
	return leader
}

// Followers lists the running members other than leader.
func (c *Cluster) Followers(leader *Member) []*Member {
	var out []*Member
	for _, m := range c.Running() {
		if m != leader {
			out = append(out, m)
		}
	}
	return out
}

// TokenClient returns a copy of hc (nil: a new client) that sends token as
// a bearer token with every request.
func TokenClient(hc *http.Client, token string) *http.Client {
	c := &http.Client{Timeout: 15 * time.Second}
	if hc != nil {
		*c = *hc
	}
	base := c.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	c.Transport = tokenTransport{base, token}
	return c
}

type tokenTransport struct {
	base  http.RoundTripper
	token string
}

func (t tokenTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+t.token)
	return t.base.RoundTrip(r)
}
