package registry

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rosterhq/roster/fsm"
	"github.com/rosterhq/roster/internal/logging/logtest"
	"github.com/rosterhq/roster/internal/testutil"
)

// startHeldAuthCluster starts three access-controlled members (root
// token rootSecret; "": three members started without access control,
// and no token) whose state machines a test can hold: hold(id) stops
// member id applying entries (its replica lags, as a follower's may)
// until the test ends; the cleanup lets it go before the nodes close.
func startHeldAuthCluster(t *testing.T, rootSecret string) (*testCluster, func(id string)) {
	var held atomic.Value // the ID of the member whose state machine is held
	held.Store("")
	release := make(chan struct{})
	tc := startCluster(t, 3, clusterOpts{
		cfg: func(i int, c *Config) {
			if rootSecret != "" {
				c.Auth, c.RootTokenHash = true, HashToken(rootSecret)
			}
		},
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
	t.Cleanup(func() { releaseOnce.Do(func() { held.Store(""); close(release) }) })
	return tc, func(id string) { held.Store(id) }
}

// TestDeletedTokenRefusedByTheLeader: a follower whose state machine has
// not applied a token's deletion, or a narrowing of its role, still takes
// the token as it was (its replica has it), but the leader, which applied
// the change, refuses the writes the follower forwards for it: 401 for the
// deleted token, 403 for each write the narrowed role no longer allows,
// changing nothing; writes the role still allows go through.
func TestDeletedTokenRefusedByTheLeader(t *testing.T) {
	const rootSecret = "root-secret-of-the-caller-test"
	tc, hold := startHeldAuthCluster(t, rootSecret)
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

	hold(f.ID())
	if err := leader.DeleteToken(ctx, gone.ID); err != nil {
		t.Fatal(err)
	}
	if err := leader.PutRole(ctx, fsm.Role{Name: "api", Rules: []fsm.Rule{{Prefix: "/services/ok/", Read: true, Write: true}}}); err != nil {
		t.Fatal(err)
	}
	if p, err := f.Authenticate(goneSecret); err != nil || !p.CanWrite("/services/planted") {
		t.Fatalf("the held follower applied the changes: %v", err)
	}

	_, err = f.Put(WithCaller(ctx, goneP), fsm.Put{Key: "/services/ok/planted", Value: []byte("x")})
	if !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("put through a follower behind the token's deletion: %v, want ErrUnauthenticated", err)
	}
	res := f.Batch(WithCaller(ctx, goneP), []fsm.Command{
		fsm.Put{Key: "/services/ok/planted-in-a-batch", Value: []byte("x")},
		fsm.Delete{Key: "/services/ok/kept"},
	})
	for i, r := range res {
		if !errors.Is(r.Err, ErrUnauthenticated) {
			t.Errorf("batch write %d through a follower behind the token's deletion: %v, want ErrUnauthenticated", i, r.Err)
		}
	}
	for _, c := range []fsm.Command{
		fsm.Put{Key: "/services/planted", Value: []byte("x")},
		fsm.Delete{Key: "/services/", Prefix: true},
		fsm.Incr{Key: "/services/n", By: 1},
		fsm.Txn{Ops: []fsm.Command{fsm.Put{Key: "/services/ok/a", Value: []byte("x")}, fsm.Put{Key: "/services/b", Value: []byte("x")}}},
		fsm.PutRole{Role: fsm.Role{Name: "mine", Admin: true}},
	} {
		var err error
		switch c := c.(type) {
		case fsm.Put:
			_, err = f.Put(WithCaller(ctx, keptP), c)
		case fsm.Delete:
			_, err = f.Delete(WithCaller(ctx, keptP), c)
		case fsm.Incr:
			_, err = f.Incr(WithCaller(ctx, keptP), c.Key, c.By)
		case fsm.Txn:
			_, err = f.Txn(WithCaller(ctx, keptP), c.Ops)
		case fsm.PutRole:
			err = f.PutRole(WithCaller(ctx, keptP), c.Role)
		}
		if !errors.Is(err, ErrPermissionDenied) {
			t.Errorf("%T through a follower behind the narrowing of the token's role: %v, want ErrPermissionDenied", c, err)
		}
	}
	res = f.Batch(WithCaller(ctx, keptP), []fsm.Command{
		fsm.Put{Key: "/services/planted-in-a-batch", Value: []byte("x")},
		fsm.Put{Key: "/services/ok/kept", Value: []byte("y")},
	})
	if !errors.Is(res[0].Err, ErrPermissionDenied) || res[1].Err != nil {
		t.Errorf("batch through a follower behind the narrowing: %v, %v; want ErrPermissionDenied, nil", res[0].Err, res[1].Err)
	}
	if _, err := f.Put(WithCaller(ctx, keptP), fsm.Put{Key: "/services/ok/kept2", Value: []byte("y")}); err != nil {
		t.Fatalf("put the narrowed role still allows, through the held follower: %v", err)
	}
	lst := leader.fsm.State()
	for _, k := range []string{"/services/ok/planted", "/services/ok/planted-in-a-batch", "/services/planted", "/services/n", "/services/ok/a", "/services/b", "/services/planted-in-a-batch"} {
		if _, ok := lst.Get(k); ok {
			t.Errorf("%s written by a refused write", k)
		}
	}
	if _, ok := lst.Role("mine"); ok {
		t.Errorf("role written by a token no longer admin")
	}
	for _, k := range []string{"/services/ok/kept", "/services/ok/kept2"} {
		if _, ok := lst.Get(k); !ok {
			t.Errorf("%s, allowed, did not apply on the leader", k)
		}
	}
}

// TestForwardingToALeaderOfAnOlderVersion: during a rolling upgrade a
// leader that does not know the kinds of writes made for a token, or for
// no caller (kindOpen), answers that it does not know the kind, having
// done nothing; the follower then sends the plain request, as before. Any
// other refusal, even one whose text quotes those words (a key may), is
// final.
func TestForwardingToALeaderOfAnOlderVersion(t *testing.T) {
	log := logtest.ForTest(t)
	var mu sync.Mutex
	var kinds []byte
	answer := func(kind byte) []byte { // what the fake leader answers to kind
		switch kind {
		case kindPropose:
			return append([]byte{statusOK}, fsm.EncodeResult(fsm.Result{Revision: 7})...)
		case kindProposeAs:
			return append([]byte{statusErr}, encodeError(nil, fmt.Errorf("%s %d (a newer member?)", unknownKind, kind))...)
		}
		return append([]byte{statusErr}, encodeError(nil, fmt.Errorf("%w: token %q may not write %q", ErrPermissionDenied, "t", "/"+unknownKind))...)
	}
	serve := func(kindAs byte) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		return testutil.Serve(t, ln, func(c net.Conn) {
			b := make([]byte, 8)
			if _, err := io.ReadFull(c, b); err != nil || !bytes.Equal(b, peerPreamble[:]) {
				return
			}
			_, _ = c.Write(peerPreamble[:])
			r := bufio.NewReader(c)
			for {
				f, err := readFrame(r, 1<<20)
				if err != nil {
					return
				}
				req, err := parseRequest(f)
				if err != nil {
					return
				}
				mu.Lock()
				kinds = append(kinds, req.kind)
				mu.Unlock()
				k := req.kind
				if k == kindProposeAs || k == kindOpen {
					k = kindAs
				}
				a := answer(k)
				_, _ = c.Write(appendResponse(nil, a[0], req.id, a[1:]))
			}
		})
	}
	p := newPeerClient(&streamLayer{log: log}, log, 1<<20)
	defer p.close()
	ctx := ctxT(t, 20*time.Second)
	put := fsm.Encode(fsm.Put{Key: "/a", Value: []byte("v")})
	as := encodeCaller(3, "0123456789abcdef", put)

	old := serve(kindProposeAs) // answers kindProposeAs as unknown
	resp, _, err := callOrPlain(ctx, p, old, kindProposeAs, as, kindPropose, put)
	if err != nil {
		t.Fatalf("a write for a token through a leader of an older version: %v", err)
	}
	if r, err := fsm.DecodeResult(resp); err != nil || r.Revision != 7 {
		t.Fatalf("answer %+v, %v; want revision 7", r, err)
	}
	mu.Lock()
	if !bytes.Equal(kinds, []byte{kindProposeAs, kindPropose}) {
		t.Errorf("kinds sent: %v, want the one made for the token, then the plain one", kinds)
	}
	kinds = nil
	mu.Unlock()

	// A write made for no caller goes as kindOpen, then plain.
	kind, open := (&Node{}).withCaller(ctx, kindPropose, put)
	if kind != kindOpen || !bytes.Equal(open, append([]byte{kindPropose}, put...)) {
		t.Fatalf("a write for no caller goes as kind %d %x", kind, open)
	}
	if resp, _, err = callOrPlain(ctx, p, old, kind, open, kindPropose, put); err != nil {
		t.Fatalf("a write for no caller through a leader of an older version: %v", err)
	}
	if r, err := fsm.DecodeResult(resp); err != nil || r.Revision != 7 {
		t.Fatalf("answer %+v, %v; want revision 7", r, err)
	}
	mu.Lock()
	if !bytes.Equal(kinds, []byte{kindOpen, kindPropose}) {
		t.Errorf("kinds sent: %v, want the open one, then the plain one", kinds)
	}
	kinds = nil
	mu.Unlock()

	denying := serve(0) // answers kindProposeAs with a refusal quoting the words
	if _, _, err := callOrPlain(ctx, p, denying, kindProposeAs, as, kindPropose, put); !errors.Is(err, ErrPermissionDenied) {
		t.Fatalf("a refusal quoting %q: %v, want ErrPermissionDenied", unknownKind, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !bytes.Equal(kinds, []byte{kindProposeAs}) {
		t.Errorf("kinds sent: %v, want only the one made for the token", kinds)
	}
}

// TestMayWriteTxnCompares: on the leader, a forwarded Txn's compare-only
// operation (fsm.Check: the Redis port's EXEC compares the keys a
// transaction read, watched or wrote without changing so) needs read or
// write on its key; every other operation needs write, the shapes an
// older member's EXEC
// compared with (a put of the key's own value with IfChanged, a delete
// compared on absence) included, whatever the state.
func TestMayWriteTxnCompares(t *testing.T) {
	tc := startCluster(t, 1, clusterOpts{})
	n := tc.leader()
	ctx := ctxT(t, 30*time.Second)
	r, err := n.Put(ctx, fsm.Put{Key: "/cfg/a", Value: []byte("1")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Put(ctx, fsm.Put{Key: "/cfg/a", Value: []byte("2")}); err != nil {
		t.Fatal(err)
	}
	st := n.fsm.State()
	old, rev := r.Revision, st.Revision()
	reader := &Principal{Name: "reader", rules: []fsm.Rule{{Prefix: "/cfg/", Read: true}, {Prefix: "/svc/", Read: true, Write: true}}}
	writer := &Principal{Name: "writer", rules: []fsm.Rule{{Prefix: "/cfg/", Write: true}, {Prefix: "/svc/", Read: true, Write: true}}}
	blind := &Principal{Name: "blind", rules: []fsm.Rule{{Prefix: "/svc/", Read: true, Write: true}}}
	write := fsm.Put{Key: "/svc/x", Value: []byte("x")}
	for _, tt := range []struct {
		op      fsm.Command
		compare bool
	}{
		{fsm.Check{Key: "/cfg/a", ModRevision: rev}, true},
		{fsm.Check{Key: "/cfg/a", ModRevision: old}, true},
		{fsm.Check{Key: "/cfg/b"}, true},
		{fsm.Put{Key: "/cfg/a", Value: []byte("2"), HasCAS: true, CAS: rev, IfChanged: true}, false},
		{fsm.Put{Key: "/cfg/a", Value: []byte("3"), HasCAS: true, CAS: old}, false},
		{fsm.Put{Key: "/cfg/a", Value: []byte("3"), HasCAS: true}, false},
		{fsm.Delete{Key: "/cfg/b", HasCAS: true}, false},
		{fsm.Delete{Key: "/cfg/a", HasCAS: true, CAS: old}, false},
		{fsm.Delete{Key: "/cfg/", Prefix: true, HasCAS: true}, false},
		{fsm.Incr{Key: "/cfg/a", By: 1}, false},
	} {
		err := n.mayWrite(reader, fsm.Txn{Ops: []fsm.Command{write, tt.op}})
		if tt.compare && err != nil {
			t.Errorf("%+v only compares: refused for a token that may read the key: %v", tt.op, err)
		}
		if !tt.compare && (!errors.Is(err, ErrPermissionDenied) || !strings.Contains(err.Error(), "may not write") && !strings.Contains(err.Error(), "may not delete")) {
			t.Errorf("%+v: %v for a token that may only read the key, want ErrPermissionDenied (write)", tt.op, err)
		}
		// A token that may write the key may compare it (the Redis port
		// compares so a key its EXEC wrote without changing it).
		err = n.mayWrite(writer, fsm.Txn{Ops: []fsm.Command{write, tt.op}})
		if _, incr := tt.op.(fsm.Incr); incr != (err != nil) {
			t.Errorf("%+v for a token that may write but not read the key: %v", tt.op, err)
		}
		if err := n.mayWrite(blind, fsm.Txn{Ops: []fsm.Command{write, tt.op}}); !errors.Is(err, ErrPermissionDenied) {
			t.Errorf("%+v for a token that may not read the key: %v, want ErrPermissionDenied", tt.op, err)
		}
	}
}
