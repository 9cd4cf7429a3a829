package resp

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rosterhq/roster/fsm"
	"github.com/rosterhq/roster/registry"
)

// nodeAuth resolves AUTH's token against the node's applied tables, as
// rosterd's does.
type nodeAuth struct{ n *registry.Node }

func (a nodeAuth) Authenticate(_ context.Context, token string) (Identity, error) {
	p, err := a.n.Authenticate(token)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// TestAuthFromStateOnAMemberWithoutAuth: the port of a member started
// without access control (AuthFromState) serves without AUTH while the
// replicated state has no admin token, AUTH answering that no password is
// set, as Redis does; once the member has applied one, a connection needs
// AUTH (-NOAUTH before it, a new connection starting under the limits
// before AUTH), the token's roles are enforced, and a subscriber that
// never authenticated stops receiving.
func TestAuthFromStateOnAMemberWithoutAuth(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// The env's own server has no Auth; serve another, as rosterd without
	// -auth does, in front of the same node.
	srv, err := New(Config{Auth: nodeAuth{e.node}, AuthFromState: true}, e.node, e.srv.log)
	if err != nil {
		t.Fatal(err)
	}
	addr := serveTest(t, srv)
	client := func() *redis.Client {
		c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, PoolSize: 1})
		t.Cleanup(func() { c.Close() })
		return c
	}
	early := client().Conn()
	defer early.Close()
	if err := early.Set(ctx(), "services/a", "1", 0).Err(); err != nil {
		t.Fatalf("SET before access control is on: %v", err)
	}
	wantErr(t, early.Do(ctx(), "AUTH", "anything").Err(), "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?")
	sub := client().Subscribe(ctx(), "__keyspace@0__:services/s")
	defer sub.Close()
	if _, err := sub.Receive(ctx()); err != nil {
		t.Fatalf("SUBSCRIBE before access control is on: %v", err)
	}

	_, admin, err := e.node.CreateToken(ctx(), "admin", []string{fsm.RootRole})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.node.PutRole(ctx(), fsm.Role{Name: "reader", Rules: []fsm.Rule{{Prefix: "/services/", Read: true}}}); err != nil {
		t.Fatal(err)
	}
	_, reader, err := e.node.CreateToken(ctx(), "reader", []string{"reader"})
	if err != nil {
		t.Fatal(err)
	}
	// A one-member node has applied what it committed: in force now, on
	// the connection opened before too.
	wantErr(t, early.Set(ctx(), "services/b", "planted", 0).Err(), "NOAUTH Authentication required.")
	wantErr(t, early.Get(ctx(), "services/a").Err(), "NOAUTH Authentication required.")
	if _, ok := e.value("/services/b"); ok {
		t.Fatal("a refused SET wrote")
	}
	conn := client().Conn()
	defer conn.Close()
	wantErr(t, conn.Ping(ctx()).Err(), "NOAUTH Authentication required.")
	wantErr(t, conn.Do(ctx(), "AUTH", "nope").Err(), "WRONGPASS invalid username-password pair or user is disabled.")
	if err := conn.Do(ctx(), "AUTH", reader).Err(); err != nil {
		t.Fatalf("AUTH with a token: %v", err)
	}
	if v, err := conn.Get(ctx(), "services/a").Result(); err != nil || v != "1" {
		t.Fatalf("GET with a read token: %q %v", v, err)
	}
	wantErr(t, conn.Set(ctx(), "services/a", "2", 0).Err(), "NOPERM this token has no permission to write /services/a")
	if err := conn.Do(ctx(), "AUTH", admin).Err(); err != nil {
		t.Fatal(err)
	}
	if err := conn.Set(ctx(), "services/a", "2", 0).Err(); err != nil {
		t.Fatalf("SET as admin: %v", err)
	}
	// The subscriber that never authenticated hears nothing more.
	if _, err := e.node.Put(ctx(), fsm.Put{Key: "/services/s", Value: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(ctx(), 5*time.Second)
	defer cancel()
	if m, err := sub.ReceiveMessage(rctx); err == nil {
		t.Fatalf("a subscriber without a token received %+v once access control was on", m)
	}
}
