package client

import (
	"testing"
	"time"

	"github.com/rosterhq/roster/internal/cluster"
	"github.com/rosterhq/roster/internal/testcerts"
)

// TestNewTokenWorksThroughAnotherMemberAtOnce: a token created through the
// leader works at once through a follower that has not applied it yet
// (every byte from the leader to it is late): the follower asks the
// leader before refusing a token it does not know. Before, the follower
// answered 401 and the client, rightly, did not retry it elsewhere.
func TestNewTokenWorksThroughAnotherMemberAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three rosterd processes")
	}
	if err := cluster.NetAvailable(); err != nil {
		t.Skipf("%v", err)
	}
	const root = "root-token-of-the-token-lag-test"
	file := testcerts.New(t).TokenFile(t, root)
	cl := cluster.New(t, "-auth", "-root-token-file", file, "-tick", "100ms")
	cl.Client = cluster.TokenClient(nil, root)
	cl.Env = []string{"ROSTER_TOKEN=" + root} // the joining members' token
	cl.WithNet()
	cl.Launch(3)
	leader := cl.Leader(30 * time.Second)
	f := cl.Followers(leader)[0]
	newClient := func(endpoint, token string) *Client {
		c, err := New(Config{Endpoints: []string{endpoint}, Token: token, RequestTimeout: 20 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	ctx := ctxT(t, 60*time.Second)
	admin := newClient(leader.URL(""), root)
	if _, err := admin.PutRole(ctx, "api", []Rule{{Prefix: "/services/", Read: true, Write: true}}, false); err != nil {
		t.Fatal(err)
	}
	// The follower learns of the token a while after the leader
	// acknowledged it (less than an election timeout late, so that it
	// keeps its leader).
	cl.Net.SetLink(leader, f, cluster.Link{Delay: 400 * time.Millisecond})
	tok, err := admin.CreateToken(ctx, "fresh", []string{"api"})
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(f.URL(""), tok.Token)
	w, err := c.WhoAmI(ctx)
	if err != nil || w.ID != tok.ID {
		t.Fatalf("whoami with a token created a moment ago, through another member: %+v %v", w, err)
	}
	if _, err := c.Put(ctx, "/services/a", []byte("1")); err != nil {
		t.Fatalf("put with the new token through the follower: %v", err)
	}
	cl.Net.Heal()
}
