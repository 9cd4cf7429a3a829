package resp

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/rosterhq/roster/fsm"
	"github.com/rosterhq/roster/internal/logging/logtest"
	"github.com/rosterhq/roster/internal/testutil"
	"github.com/rosterhq/roster/registry"
)

// TestAuthSetGetNeedsRead: SET … GET answers the key's old value, which is
// a read: a token that may write a key but not read it gets NOPERM, and
// the refused SET writes nothing.
func TestAuthSetGetNeedsRead(t *testing.T) {
	t.Parallel()
	auth := &testAuth{tokens: map[string]testIdentity{
		"writer": {write: []string{"/drop/"}},
		"root":   {read: []string{"/"}, write: []string{"/"}, admin: true},
	}}
	e := newEnvWith(t, func(c *Config) { c.Auth = auth })
	conn := e.client().Conn()
	defer conn.Close()
	if err := conn.Do(ctx(), "AUTH", "root").Err(); err != nil {
		t.Fatal(err)
	}
	if err := conn.Set(ctx(), "drop/x", "secret", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := conn.Do(ctx(), "AUTH", "writer").Err(); err != nil {
		t.Fatal(err)
	}
	wantErr(t, conn.Get(ctx(), "drop/x").Err(), "NOPERM this token has no permission to read /drop/x")
	for _, args := range [][]any{
		{"SET", "drop/x", "mine", "GET"},
		{"SET", "drop/x", "mine", "get", "EX", "10"},
		{"SET", "drop/x", "mine", "NX", "GET"},
		{"SET", "drop/x", "mine", "XX", "GET"},
		{"GETSET", "drop/x", "mine"},
		{"GETDEL", "drop/x"},
		{"GETEX", "drop/x", "EX", "10"},
	} {
		v, err := conn.Do(ctx(), args...).Result()
		if err == nil {
			t.Fatalf("%v by a write-only token: %v, want NOPERM", args, v)
		}
		wantErr(t, err, "NOPERM this token has no permission to read /drop/x")
	}
	if v, _ := e.value("/drop/x"); v != "secret" {
		t.Fatalf("a refused SET wrote: %q", v)
	}
	// Without GET the write is allowed.
	if err := conn.Set(ctx(), "drop/x", "mine", 0).Err(); err != nil {
		t.Fatal(err)
	}
}

// TestAuthSubscriberFollowsAccessChanges: a subscriber whose token is
// deleted, or no longer covers what it follows, gets no more messages and
// is disconnected (as Redis disconnects a client whose user loses its
// channel permissions); one whose token still covers it keeps receiving.
func TestAuthSubscriberFollowsAccessChanges(t *testing.T) {
	t.Parallel()
	auth := &testAuth{tokens: map[string]testIdentity{
		"gone":     {read: []string{"/services/"}},
		"narrowed": {read: []string{"/services/"}},
		"kept":     {read: []string{"/services/"}},
	}}
	e := newEnvWith(t, func(c *Config) { c.Auth = auth })
	subscribe := func(token string) (net.Conn, *bufio.Reader) {
		c := e.dial()
		fmt.Fprintf(c, "AUTH %s\r\nPSUBSCRIBE __keyspace@0__:services/*\r\n", token)
		r := bufio.NewReader(c)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if line, err := r.ReadString('\n'); err != nil || line != "+OK\r\n" {
			t.Fatalf("AUTH %s: %q %v", token, line, err)
		}
		for range 6 { // *3, $10, psubscribe, $len, the pattern, :1
			if _, err := r.ReadString('\n'); err != nil {
				t.Fatal(err)
			}
		}
		return c, r
	}
	put := func(key string) {
		if _, err := e.node.Put(ctx(), fsm.Put{Key: key, Value: []byte("x")}); err != nil {
			t.Fatal(err)
		}
	}
	gone, goneR := subscribe("gone")
	narrowed, narrowedR := subscribe("narrowed")
	_, keptR := subscribe("kept")
	put("/services/a")
	for _, r := range []*bufio.Reader{goneR, narrowedR, keptR} {
		if msg := readUntil(t, r, "services/a"); msg == "" {
			t.Fatal("no message for services/a")
		}
	}

	auth.mu.Lock()
	delete(auth.tokens, "gone")
	auth.tokens["narrowed"] = testIdentity{read: []string{"/elsewhere/"}}
	auth.mu.Unlock()
	put("/services/b")
	if msg := readUntil(t, keptR, "services/b"); msg == "" {
		t.Fatal("a subscriber whose token still covers the key got no message")
	}
	for _, sub := range []struct {
		what string
		c    net.Conn
		r    *bufio.Reader
	}{{"deleted", gone, goneR}, {"narrowed", narrowed, narrowedR}} {
		sub.c.SetReadDeadline(time.Now().Add(10 * time.Second))
		rest, err := io.ReadAll(sub.r)
		if strings.Contains(string(rest), "services/b") {
			t.Errorf("the subscriber of a %s token got a message after the change: %q", sub.what, rest)
		}
		if err != nil {
			t.Errorf("the subscriber of a %s token stayed connected: %v; read %q", sub.what, err, rest)
		}
	}
}

// readUntil reads RESP lines until one contains s ("" on error).
func readUntil(t *testing.T, r *bufio.Reader, s string) string {
	t.Helper()
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Logf("reading for %q: %v", s, err)
			return ""
		}
		if strings.Contains(line, s) {
			return line
		}
	}
}

// revokingBackend is a real node whose next linearizable read first runs
// hook: a change that applies while the read waits for its read index, as
// it does on a member that had not applied it when the command arrived.
type revokingBackend struct {
	*registry.Node
	hook atomic.Pointer[func()]
}

func (b *revokingBackend) Read(ctx context.Context, stale bool) (*fsm.State, error) {
	if h := b.hook.Swap(nil); h != nil && !stale {
		(*h)()
	}
	return b.Node.Read(ctx, stale)
}

// TestAuthReadsCheckedAfterTheReadIndex: a token deleted, or narrowed,
// while a pipeline's linearizable read waited is refused for that read,
// which answers from a state where the change is in force.
func TestAuthReadsCheckedAfterTheReadIndex(t *testing.T) {
	t.Parallel()
	auth := &testAuth{tokens: map[string]testIdentity{
		"gone":     {read: []string{"/"}},
		"narrowed": {read: []string{"/"}},
	}}
	log := logtest.ForTest(t)
	node := openTestNode(t, log, prometheus.NewRegistry())
	b := &revokingBackend{Node: node}
	srv, err := New(Config{Auth: auth}, b, log)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, node: node, srv: srv, addr: serveTest(t, srv)}
	if _, err := node.Put(ctx(), fsm.Put{Key: "/services/a", Value: []byte("secret")}); err != nil {
		t.Fatal(err)
	}
	for token, change := range map[string]testIdentity{"gone": {}, "narrowed": {read: []string{"/elsewhere/"}}} {
		conn := e.client().Conn()
		if err := conn.Do(ctx(), "AUTH", token).Err(); err != nil {
			t.Fatal(err)
		}
		hook := func() {
			auth.mu.Lock()
			defer auth.mu.Unlock()
			if change.read == nil {
				delete(auth.tokens, token)
			} else {
				auth.tokens[token] = change
			}
		}
		b.hook.Store(&hook)
		v, err := conn.Get(ctx(), "services/a").Result()
		if err == nil || v == "secret" {
			t.Errorf("GET by a %s token, changed while the read waited: %q %v", token, v, err)
		}
		conn.Close()
	}
}

// pinnedTokens resolves AUTH's token against a state the test pinned: the
// replica of a member that has applied nothing after it.
type pinnedTokens struct{ st atomic.Pointer[fsm.State] }

func (a *pinnedTokens) Authenticate(_ context.Context, token string) (Identity, error) {
	p, err := registry.Authenticate(a.st.Load(), token)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// TestAuthDeletedTokenWritesRefusedByTheLeader: a follower whose replica
// has not applied a token's deletion takes AUTH with it, but the writes it
// forwards for the token, alone or pipelined, are refused by the leader,
// which has applied the deletion, and change nothing.
func TestAuthDeletedTokenWritesRefusedByTheLeader(t *testing.T) {
	t.Parallel()
	log := logtest.ForTest(t)
	const root = "root-token-of-the-resp-test"
	var nodes []*registry.Node
	for i := range 2 {
		n, err := registry.Open(registry.Config{
			ID: fmt.Sprintf("n%d", i+1), DataDir: t.TempDir(), RaftAddr: "127.0.0.1:0", Bootstrap: i == 0,
			NoSync: true, Tick: testTick, HTTPAdvertise: fmt.Sprintf("127.0.0.1:%d", i+1), NodeNumber: -1,
			CommitTimeout: 10 * time.Millisecond, Auth: true, RootTokenHash: registry.HashToken(root),
		}, log.With("node", i+1), prometheus.NewRegistry())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = n.Close() })
		nodes = append(nodes, n)
	}
	leader, follower := nodes[0], nodes[1]
	testutil.Eventually(t, 10*time.Second, "leader ready", func() bool { return leader.Ready() == nil })
	if err := leader.AddMember(ctx(), registry.JoinRequest{ID: "n2", RaftAddr: follower.RaftAddr(), HTTPAddr: "127.0.0.1:2", Voter: true}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 20*time.Second, "follower ready", func() bool { return follower.Ready() == nil })
	testutil.Eventually(t, 10*time.Second, "root token created", func() bool { return leader.FSM().State().TokenCount() > 0 })
	if err := leader.PutRole(ctx(), fsm.Role{Name: "api", Rules: []fsm.Rule{{Prefix: "/services/", Read: true, Write: true}}}); err != nil {
		t.Fatal(err)
	}
	tok, secret, err := leader.CreateToken(ctx(), "api-registrar", []string{"api"})
	if err != nil {
		t.Fatal(err)
	}
	if err := leader.PutRole(ctx(), fsm.Role{Name: "narrowed", Rules: []fsm.Rule{{Prefix: "/services/", Read: true, Write: true}}}); err != nil {
		t.Fatal(err)
	}
	_, narrowed, err := leader.CreateToken(ctx(), "narrowed", []string{"narrowed"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leader.Put(ctx(), fsm.Put{Key: "/services/a", Value: []byte("1")}); err != nil {
		t.Fatal(err)
	}
	st, err := follower.Read(ctx(), false) // it has the token
	if err != nil {
		t.Fatal(err)
	}
	auth := &pinnedTokens{}
	auth.st.Store(st)
	srv, err := New(Config{Auth: auth}, follower, log)
	if err != nil {
		t.Fatal(err)
	}
	addr := serveTest(t, srv)
	if err := leader.DeleteToken(ctx(), tok.ID); err != nil {
		t.Fatal(err)
	}
	if err := leader.PutRole(ctx(), fsm.Role{Name: "narrowed", Rules: []fsm.Rule{{Prefix: "/services/ok/", Read: true, Write: true}}}); err != nil {
		t.Fatal(err)
	}
	before := leader.FSM().State().Revision()

	conn := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1}).Conn()
	defer conn.Close()
	if err := conn.Do(ctx(), "AUTH", secret).Err(); err != nil {
		t.Fatalf("AUTH on the lagging member: %v", err)
	}
	wantErr(t, conn.Set(ctx(), "services/b", "planted", 0).Err(), "NOAUTH Authentication required.")
	wantErr(t, conn.Incr(ctx(), "services/n").Err(), "NOAUTH Authentication required.")
	cmds, _ := conn.Pipelined(ctx(), func(p redis.Pipeliner) error {
		p.Set(ctx(), "services/c", "planted", 0)
		p.Del(ctx(), "services/a")
		p.Set(ctx(), "services/d", "planted", time.Minute)
		return nil
	})
	for _, c := range cmds {
		wantErr(t, c.Err(), "NOAUTH Authentication required.")
	}
	if after := leader.FSM().State().Revision(); after != before {
		t.Fatalf("writes of a deleted token moved the revision from %d to %d", before, after)
	}

	// A token whose role the leader narrowed: NOPERM for what it no
	// longer allows, the rest goes through.
	if err := conn.Do(ctx(), "AUTH", narrowed).Err(); err != nil {
		t.Fatal(err)
	}
	if err := conn.Set(ctx(), "services/b", "planted", 0).Err(); err == nil || !strings.HasPrefix(err.Error(), "NOPERM ") {
		t.Errorf("SET by a token whose role the leader narrowed: %v, want NOPERM", err)
	}
	if after := leader.FSM().State().Revision(); after != before {
		t.Fatalf("a write of a narrowed token moved the revision from %d to %d", before, after)
	}
	if err := conn.Set(ctx(), "services/ok/b", "fine", 0).Err(); err != nil {
		t.Errorf("SET the narrowed role allows: %v", err)
	}
}

// TestAuthIncrNeedsRead: INCR, INCRBY, DECR and DECRBY answer the key's
// new value, from which its old one follows (INCRBY k 0 is a GET): a
// token that may write a counter but not read it gets NOPERM, as Redis's
// ACLs refuse them without read (their key spec is RW), and the refused
// command changes nothing.
func TestAuthIncrNeedsRead(t *testing.T) {
	t.Parallel()
	auth := &testAuth{tokens: map[string]testIdentity{
		"writer": {write: []string{"/drop/"}},
		"both":   {read: []string{"/drop/"}, write: []string{"/drop/"}},
		"root":   {read: []string{"/"}, write: []string{"/"}, admin: true},
	}}
	e := newEnvWith(t, func(c *Config) { c.Auth = auth })
	conn := e.client().Conn()
	defer conn.Close()
	if err := conn.Do(ctx(), "AUTH", "root").Err(); err != nil {
		t.Fatal(err)
	}
	if err := conn.Set(ctx(), "drop/n", "41", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := conn.Do(ctx(), "AUTH", "writer").Err(); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]any{
		{"INCRBY", "drop/n", "0"},
		{"INCR", "drop/n"},
		{"DECR", "drop/n"},
		{"DECRBY", "drop/n", "1"},
	} {
		v, err := conn.Do(ctx(), args...).Result()
		if err == nil {
			t.Errorf("%v by a write-only token: %v, want NOPERM", args, v)
			continue
		}
		wantErr(t, err, "NOPERM this token has no permission to read /drop/n")
	}
	if v, _ := e.value("/drop/n"); v != "41" {
		t.Fatalf("a refused INCR wrote: %q", v)
	}
	if err := conn.Do(ctx(), "AUTH", "both").Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := conn.Incr(ctx(), "drop/n").Result(); err != nil || n != 42 {
		t.Fatalf("INCR by a token with read and write: %d %v", n, err)
	}
}
