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

// heldCluster is three access-controlled members one of which a test can
// hold behind (its state machine applies nothing) and release.
type heldCluster struct {
	*testCluster
	held    atomic.Value // the ID of the member whose state machine is held
	mu      sync.Mutex
	release chan struct{}
}

// startReleasableAuthCluster is startHeldAuthCluster with a release:
// hold(id) stops member id applying entries until release; edit adjusts
// each member's configuration (nil: none).
func startReleasableAuthCluster(t *testing.T, rootSecret string, edit func(*Config)) *heldCluster {
	hc := &heldCluster{release: make(chan struct{})}
	hc.held.Store("")
	hc.testCluster = startCluster(t, 3, clusterOpts{
		cfg: func(i int, c *Config) {
			c.Auth, c.RootTokenHash = true, HashToken(rootSecret)
			if edit != nil {
				edit(c)
			}
		},
		hooks: func(i int) *testHooks {
			id := fmt.Sprintf("n%d", i+1)
			return &testHooks{apply: func() {
				if hc.held.Load() == id {
					hc.mu.Lock()
					ch := hc.release
					hc.mu.Unlock()
					<-ch
				}
			}}
		},
	})
	t.Cleanup(hc.releaseHold)
	return hc
}

func (hc *heldCluster) hold(id string) { hc.held.Store(id) }

// releaseHold lets the held member apply again (idempotent).
func (hc *heldCluster) releaseHold() {
	hc.mu.Lock()
	defer hc.mu.Unlock()
	hc.held.Store("")
	select {
	case <-hc.release:
	default:
		close(hc.release)
	}
}

// tokenOnHeldFollower starts a held cluster, creates a role, holds a
// follower, and creates a token through the leader that the held
// follower has not applied.
func tokenOnHeldFollower(t *testing.T, edit func(*Config)) (hc *heldCluster, leader, f *Node, tok fsm.Token, secret string) {
	hc = startReleasableAuthCluster(t, heldRootSecret, edit)
	ctx := ctxT(t, 60*time.Second)
	leader = hc.leader()
	f = hc.followers(leader)[0]
	if err := leader.PutRole(ctx, fsm.Role{Name: "api", Rules: []fsm.Rule{{Prefix: "/services/", Read: true, Write: true}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Read(ctx, false); err != nil { // f has the role and the root token
		t.Fatal(err)
	}
	hc.hold(f.ID())
	tok, secret, err := leader.CreateToken(ctx, "fresh", []string{"api"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Authenticate(secret); !errors.Is(err, ErrUnknownToken) {
		t.Fatalf("the held follower knows the new token already: %v", err)
	}
	return hc, leader, f, tok, secret
}

type authResult struct {
	st  *fsm.State
	p   *Principal
	err error
}

// TestNewTokenWorksOnAHeldFollower: a token created through the leader,
// used at once on a follower that has not applied it, is not refused: the
// follower waits until it has applied what the leader had committed, and
// answers then, not before.
func TestNewTokenWorksOnAHeldFollower(t *testing.T) {
	hc, _, f, tok, secret := tokenOnHeldFollower(t, nil)
	ctx := ctxT(t, 60*time.Second)
	done := make(chan authResult, 1)
	go func() {
		st, p, err := f.AuthenticateLatest(ctx, f.fsm.State(), secret)
		done <- authResult{st, p, err}
	}()
	testutil.Eventually(t, 10*time.Second, "the request waits for the token", func() bool { return f.tokenWaits.Load() == 1 })
	select {
	case r := <-done:
		t.Fatalf("answered while the follower had not applied the token: %+v", r)
	default:
	}
	hc.releaseHold()
	r := <-done
	if r.err != nil {
		t.Fatalf("the new token on the follower: %v", r.err)
	}
	if r.p.TokenID != tok.ID || !r.p.CanWrite("/services/x") {
		t.Fatalf("resolved to %+v, want the new token with role api", r.p)
	}
	if _, ok := r.st.TokenByHash(HashToken(secret)); !ok {
		t.Fatal("the state returned does not have the token")
	}
	if _, err := f.Authenticate(secret); err != nil {
		t.Fatalf("answered before the follower applied the token: %v", err)
	}
	if n := f.tokenWaits.Load(); n != 0 {
		t.Fatalf("%d waits left counted", n)
	}
}

// TestUnknownTokenStillRefusedOnAFollower: a token no one created is
// refused on a follower, after its read, as unknown (401), and on the
// leader.
func TestUnknownTokenStillRefusedOnAFollower(t *testing.T) {
	hc, leader, f, _, _ := tokenOnHeldFollower(t, nil)
	hc.releaseHold()
	ctx := ctxT(t, 30*time.Second)
	for _, n := range []*Node{f, leader} {
		_, _, err := n.AuthenticateLatest(ctx, n.fsm.State(), "roster_no-such-token")
		if !errors.Is(err, ErrUnknownToken) {
			t.Errorf("unknown token on %s: %v, want ErrUnknownToken", n.ID(), err)
		}
		// No token at all needs no read: refused as before.
		_, _, err = n.AuthenticateLatest(ctx, n.fsm.State(), "")
		if !errors.Is(err, ErrUnauthenticated) || errors.Is(err, ErrUnknownToken) {
			t.Errorf("no token on %s: %v", n.ID(), err)
		}
	}
}

// TestTokenWaitsBounded: beyond MaxTokenWaits requests waiting on a
// member for tokens it does not know, the next is refused as unknown at
// once; the waiting one still succeeds once the member catches up.
func TestTokenWaitsBounded(t *testing.T) {
	hc, _, f, _, secret := tokenOnHeldFollower(t, func(c *Config) { c.MaxTokenWaits = 1 })
	ctx := ctxT(t, 60*time.Second)
	done := make(chan authResult, 1)
	go func() {
		st, p, err := f.AuthenticateLatest(ctx, f.fsm.State(), secret)
		done <- authResult{st, p, err}
	}()
	testutil.Eventually(t, 10*time.Second, "the first request waits", func() bool { return f.tokenWaits.Load() == 1 })
	if _, _, err := f.AuthenticateLatest(ctx, f.fsm.State(), secret); !errors.Is(err, ErrUnknownToken) {
		t.Fatalf("a second wait beyond the bound: %v, want ErrUnknownToken at once", err)
	}
	hc.releaseHold()
	if r := <-done; r.err != nil {
		t.Fatalf("the waiting request: %v", r.err)
	}
}

// TestTokenUnknownWithoutLeader: a follower cut off from the others
// cannot learn whether a token it does not know exists: it answers that
// there is no leader (503, retryable), not that the token is unknown.
func TestTokenUnknownWithoutLeader(t *testing.T) {
	hc, _, f, _, _ := tokenOnHeldFollower(t, nil)
	for _, n := range hc.nodes {
		if n != f {
			n.Close()
		}
	}
	hc.releaseHold()
	ctx := ctxT(t, 60*time.Second)
	// f applies what it had received, which may include the token: the
	// question is only asked of a token it still does not know.
	_, _, err := f.AuthenticateLatest(ctx, f.fsm.State(), "roster_no-such-token")
	if !errors.Is(err, ErrNoLeader) || errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("an unknown token on a member without a leader: %v, want ErrNoLeader", err)
	}
}
