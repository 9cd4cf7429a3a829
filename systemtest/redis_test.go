package systemtest

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rosterhq/roster/internal/cluster"
	"github.com/rosterhq/roster/internal/testutil"
)

// redisClient is a go-redis client of addr, closed at cleanup.
func redisClient(t testing.TB, addr string) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, ReadTimeout: 15 * time.Second})
	t.Cleanup(func() { c.Close() })
	return c
}

// redisOnTheLeader: SET EX through the leader's port is a lease: the key is
// seen over HTTP on every member, vanishes there when the lease expires,
// and a subscriber on another member's port hears "set" then "expired". A
// 500-command pipeline is answered in order.
func redisOnTheLeader(t *testing.T, c *cluster.Cluster, ports map[*cluster.Member]string) {
	ctx := context.Background()
	leader := c.Leader(30 * time.Second)
	f := follower(t, c)
	r := redisClient(t, ports[leader])
	sub := redisClient(t, ports[f]).PSubscribe(ctx, "__keyspace@0__:svc/*")
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	msgs := sub.Channel()

	if err := r.Set(ctx, "svc/a", "10.0.0.1:80", 2*time.Second).Err(); err != nil {
		t.Fatal(err)
	}
	for _, m := range c.Members {
		var kv kvJSON
		code, b := do(t, "GET", m.URL("/v1/kv/svc/a"), nil)
		mustJSON(t, code, b, &kv)
		if kv.Value != "10.0.0.1:80" || kv.Lease == "" {
			t.Fatalf("SET EX seen over HTTP via %s: %s", m.ID, b)
		}
	}
	for _, want := range []string{"set", "expired"} {
		select {
		case m := <-msgs:
			if m.Channel != "__keyspace@0__:svc/a" || m.Payload != want {
				t.Fatalf("notification %+v, want %s", m, want)
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("no %q notification on the follower's port", want)
		}
	}
	if code, b := do(t, "GET", f.URL("/v1/kv/svc/a"), nil); code != 404 {
		t.Fatalf("expired key over HTTP: %d %s", code, b)
	}

	pipe := r.Pipeline()
	var incrs []*redis.IntCmd
	for i := range 500 {
		if i%2 == 0 {
			pipe.Set(ctx, "pipe/"+strconv.Itoa(i), i, 0)
		} else {
			incrs = append(incrs, pipe.Incr(ctx, "pipe/n"))
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	for i, cmd := range incrs {
		if v, err := cmd.Result(); err != nil || v != int64(i+1) {
			t.Fatalf("pipelined INCR %d: %d %v", i, v, err)
		}
	}
	if n, err := redisClient(t, ports[f]).Do(ctx, "READONLY").Result(); err != nil || n != "OK" {
		t.Fatalf("READONLY: %v %v", n, err)
	}
}

// forwardingLanded reports whether a follower forwards writes: until the
// member-to-member forwarding of the cluster workstream (issue 9) is on
// main, the registry answers writes on a follower with "not the leader",
// which the Redis port can only pass on as TRYAGAIN.
func forwardingLanded(t *testing.T, r *redis.Client) bool {
	err := r.Set(context.Background(), "forwarding-probe", "1", 0).Err()
	if err != nil && strings.HasPrefix(err.Error(), "TRYAGAIN") {
		return false
	}
	if err != nil {
		t.Fatalf("probe write on a follower: %v", err)
	}
	return true
}

// redisOnAFollower: a follower's port takes writes and linearizable reads
// (forwarded, never MOVED), and serves READONLY reads from its replica.
func redisOnAFollower(t *testing.T, c *cluster.Cluster, ports map[*cluster.Member]string) {
	ctx := context.Background()
	f := follower(t, c)
	leader := c.Leader(30 * time.Second)
	r := redisClient(t, ports[f])
	// Stale reads need no leader round trip: they work today.
	redisClient(t, ports[leader]).Set(ctx, "fol/seen", "v", 0)
	ro := redisClient(t, ports[f])
	conn := ro.Conn()
	defer conn.Close()
	conn.ReadOnly(ctx)
	testutil.Eventually(t, 10*time.Second, "the follower's replica has fol/seen", func() bool {
		v, err := conn.Get(ctx, "fol/seen").Result()
		return err == nil && v == "v"
	})
	if !forwardingLanded(t, r) {
		t.Skip("writes and linearizable reads on a follower's Redis port need the cluster workstream's forwarding (issue 9), not on main yet")
	}
	for i := range 20 {
		if err := r.Set(ctx, "fol/k", i, 0).Err(); err != nil {
			t.Fatalf("SET via follower: %v", err)
		}
		if v, err := redisClient(t, ports[leader]).Get(ctx, "fol/k").Result(); err != nil || v != strconv.Itoa(i) {
			t.Fatalf("GET via leader after SET %d via follower: %q %v", i, v, err)
		}
	}
	if err := r.MSet(ctx, "fol/a", "1", "fol/b", "2").Err(); err != nil {
		t.Fatal(err)
	}
	// SET … EX grants a lease in its txn: the leader picks its ID.
	if err := r.Set(ctx, "fol/ex", "v", 30*time.Second).Err(); err != nil {
		t.Fatalf("SET EX via follower: %v", err)
	}
	if d, err := r.TTL(ctx, "fol/ex").Result(); err != nil || d <= 0 || d > 30*time.Second {
		t.Fatalf("TTL via follower after SET EX: %v %v", d, err)
	}
	if v, err := r.Incr(ctx, "fol/n").Result(); err != nil || v != 1 {
		t.Fatalf("INCR via follower: %d %v", v, err)
	}
	if ok, err := r.Expire(ctx, "fol/a", 10*time.Second).Result(); err != nil || !ok {
		t.Fatalf("EXPIRE via follower: %v %v", ok, err)
	}
	if n, err := r.Del(ctx, "fol/a", "fol/b").Result(); err != nil || n != 2 {
		t.Fatalf("DEL via follower: %d %v", n, err)
	}
	// A READONLY connection reads its replica, but still sees its own
	// writes: the follower applies a forwarded write after the leader
	// answered it.
	for i := range 20 {
		var get *redis.StringCmd
		if _, err := conn.Pipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, "fol/ro", i, 0)
			get = p.Get(ctx, "fol/ro")
			return nil
		}); err != nil && err != redis.Nil {
			t.Fatalf("READONLY pipeline via follower: %v", err)
		}
		if v, err := conn.Get(ctx, "fol/ro").Result(); err != nil || v != strconv.Itoa(i) || get.Val() != v {
			t.Fatalf("READONLY reads after SET %d via follower: %q in the pipeline, then %q %v", i, get.Val(), v, err)
		}
	}
	// A pipeline sent to a follower commits on the leader as a batch (one
	// group commit), not as 100 forwarded writes one after the other.
	before := batchesOn(t, c, leader)
	pipe := r.Pipeline()
	for i := range 100 {
		pipe.Set(ctx, fmt.Sprintf("fol/p%d", i), i, 0)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatalf("pipeline via follower: %v", err)
	}
	if d := batchesOn(t, c, leader) - before; d < 1 || d > 10 {
		t.Fatalf("a 100-command pipeline via a follower made %d batches on the leader, want 1 to 10 (the reads the server made of it)", d)
	}
	if v, err := redisClient(t, ports[leader]).Get(ctx, "fol/p99").Result(); err != nil || v != "99" {
		t.Fatalf("GET fol/p99 via the leader after the pipeline: %q %v", v, err)
	}
}

// batchesOn reads how many batches (Redis pipelines) member m proposed,
// from its /metrics.
func batchesOn(t *testing.T, c *cluster.Cluster, m *cluster.Member) int {
	t.Helper()
	ms, err := c.Metrics(m)
	if err != nil {
		t.Fatal(err)
	}
	return int(ms[`roster_raft_apply_duration_seconds_count{command="batch"}`]) // 0 before the first batch
}

// redisTools runs Debian's redis-cli and redis-benchmark against the
// cluster (installed by .ci/run; skipped when absent).
func redisTools(t *testing.T, c *cluster.Cluster, ports map[*cluster.Member]string) {
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Skip("redis-cli is not installed (Debian's redis-tools; .ci/run installs it with apt-get)")
	}
	bench, err := exec.LookPath("redis-benchmark")
	if err != nil {
		t.Skip("redis-benchmark is not installed (Debian's redis-tools; .ci/run installs it with apt-get)")
	}
	leader := c.Leader(30 * time.Second)
	host, port, _ := strings.Cut(ports[leader], ":")
	run := func(name string, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, name, append([]string{"-h", host, "-p", port}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %q: %v\n%s", name, args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	for _, step := range []struct {
		args []string
		want string
	}{
		{[]string{"SET", "cli/a", "hello world"}, "OK"},
		{[]string{"GET", "cli/a"}, "hello world"},
		{[]string{"SET", "cli/b", "x", "EX", "30"}, "OK"},
		{[]string{"TTL", "cli/b"}, "30"},
		{[]string{"INCRBY", "cli/n", "5"}, "5"},
		{[]string{"MSET", "cli/c", "1", "cli/d", "2"}, "OK"},
		{[]string{"DBSIZE"}, ""},
		{[]string{"--scan", "--pattern", "cli/*"}, "cli/a\ncli/b\ncli/c\ncli/d\ncli/n"},
		{[]string{"NOSUCH"}, "ERR unknown command 'NOSUCH'"},
	} {
		got := run(cli, step.args...)
		if step.want != "" && got != step.want {
			t.Fatalf("redis-cli %q: %q, want %q", step.args, got, step.want)
		}
	}
	if code, b := do(t, "GET", leader.URL("/key/cli/a"), nil); code != 200 || string(b) != "hello world" {
		t.Fatalf("redis-cli's key over HTTP: %d %q", code, b)
	}
	// A short run: the measurement is scripts/redisbench.sh's.
	for _, p := range []string{"1", "16"} {
		out := run(bench, "-t", "set,get", "-n", "2000", "-c", "10", "-P", p, "-q")
		for _, want := range []string{"SET: ", "GET: "} {
			if !strings.Contains(out, want) || strings.Contains(out, "ERR") {
				t.Fatalf("redis-benchmark -P %s: %s", p, out)
			}
		}
	}
	// Its SETs stored their 3-byte values under its fixed key.
	if v := run(cli, "GET", "key:__rand_int__"); len(v) != 3 {
		t.Fatalf("redis-benchmark's key: %q", v)
	}
}
