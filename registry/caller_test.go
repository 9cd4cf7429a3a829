package registry

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rosterhq/roster/fsm"
	"github.com/rosterhq/roster/internal/testutil"
)

// TestDeletedTokenRefusedByTheLeader: a follower whose state machine has
// not applied a token's deletion still takes the token (its replica has
// it), but a write it forwards for that token is refused by the leader,
// which applied the deletion, and changes nothing; a token the leader
// still has writes through the same lagging follower.
func TestDeletedTokenRefusedByTheLeader(t *testing.T) {
	var held atomic.Value // the ID of the member whose state machine is held
	held.Store("")
	release := make(chan struct{})
	const rootSecret = "root-secret-of-the-caller-test"
	tc := startCluster(t, 3, clusterOpts{
		cfg: func(i int, c *Config) { c.Auth, c.RootTokenHash = true, HashToken(rootSecret) },
		hooks: func(i int) *testHooks {
			id := fmt.Sprintf("n%d", i+1)
			return &testHooks{apply: func() {
				if held.Load() == id {
					<-release
				}
			}}
		},
	})
	var releaseOnce sync.Once
	unhold := func() { releaseOnce.Do(func() { held.Store(""); close(release) }) }
	t.Cleanup(unhold) // before the nodes close
	ctx := ctxT(t, 60*time.Second)
	leader := tc.leader()
	f := tc.followers(leader)[0]
	testutil.Eventually(t, 10*time.Second, "root token created", func() bool {
		return leader.fsm.State().TokenCount() > 0
	})
	if err := leader.PutRole(ctx, fsm.Role{Name: "api", Rules: []fsm.Rule{{Prefix: "/services/", Read: true, Write: true}}}); err != nil {
		t.Fatal(err)
	}
	gone, goneSecret, err := leader.CreateToken(ctx, "gone", []string{"api"})
	if err != nil {
		t.Fatal(err)
	}
	_, keptSecret, err := leader.CreateToken(ctx, "kept", []string{"api"})
	if err != nil {
		t.Fatal(err)
	}
	st, err := f.Read(ctx, false) // f has applied both tokens
	if err != nil {
		t.Fatal(err)
	}
	goneP, err := Authenticate(st, goneSecret)
	if err != nil {
		t.Fatal(err)
	}
	keptP, err := Authenticate(st, keptSecret)
	if err != nil {
		t.Fatal(err)
	}

	held.Store(f.ID())
	if err := leader.DeleteToken(ctx, gone.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Authenticate(goneSecret); err != nil {
		t.Fatalf("the held follower applied the deletion: %v", err)
	}

	_, err = f.Put(WithCaller(ctx, goneP), fsm.Put{Key: "/services/planted", Value: []byte("x")})
	if !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("put through a follower behind the token's deletion: %v, want ErrUnauthenticated", err)
	}
	res := f.Batch(WithCaller(ctx, goneP), []fsm.Command{
		fsm.Put{Key: "/services/planted-in-a-batch", Value: []byte("x")},
		fsm.Delete{Key: "/services/kept"},
	})
	for i, r := range res {
		if !errors.Is(r.Err, ErrUnauthenticated) {
			t.Errorf("batch write %d through a follower behind the token's deletion: %v, want ErrUnauthenticated", i, r.Err)
		}
	}
	if _, err := f.Put(WithCaller(ctx, keptP), fsm.Put{Key: "/services/kept", Value: []byte("y")}); err != nil {
		t.Fatalf("put for a token that exists, through the held follower: %v", err)
	}
	for _, k := range []string{"/services/planted", "/services/planted-in-a-batch"} {
		if _, ok := leader.fsm.State().Get(k); ok {
			t.Errorf("%s written for a deleted token", k)
		}
	}
	if _, ok := leader.fsm.State().Get("/services/kept"); !ok {
		t.Errorf("the kept token's put did not apply on the leader")
	}
}
