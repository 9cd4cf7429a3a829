package registry

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rosterhq/roster/fsm"
	"github.com/rosterhq/roster/internal/logging/logtest"
	"github.com/rosterhq/roster/internal/testutil"
)

// Entries of older members keep reading as they did: the nonce alone (16
// bytes) is a nonce without a cluster ID, no Extensions is neither, and a
// layout this build does not know carries neither.
func TestExtensionsOfOlderEntriesDecodeAsBefore(t *testing.T) {
	nonce := bytes.Repeat([]byte{7}, fateNonceLen)
	id := bytes.Repeat([]byte{9}, clusterIDLen)
	if got := extEncode(nonce, nil); !bytes.Equal(got, nonce) {
		t.Fatalf("a proposal without a cluster id is encoded %x, want the nonce alone %x", got, nonce)
	}
	for _, tc := range []struct {
		name      string
		ext       []byte
		nonce, id []byte
	}{
		{"none", nil, nil, nil},
		{"nonce only", nonce, nonce, nil},
		{"nonce and id", extEncode(nonce, id), nonce, id},
		{"unknown version", append([]byte{2}, extEncode(nonce, id)[1:]...), nil, nil},
		{"unknown length", append(bytes.Clone(nonce), 1), nil, nil},
	} {
		gotNonce, gotID := extDecode(tc.ext)
		if !bytes.Equal(gotNonce, tc.nonce) || !bytes.Equal(gotID, tc.id) {
			t.Errorf("%s: extDecode(%x) = %x, %x; want %x, %x", tc.name, tc.ext, gotNonce, gotID, tc.nonce, tc.id)
		}
	}
}

// A join request without a cluster ID is encoded for the member channel
// exactly as before the ID existed (a leader of an older build refuses
// fields it does not know); with one, the ID is one more field after them,
// and decodes back.
func TestJoinPayloadCarriesTheClusterIDOnlyWhenSet(t *testing.T) {
	req := JoinRequest{ID: "n2", RaftAddr: "127.0.0.1:1", HTTPAddr: "127.0.0.1:2", Voter: true}
	old := encodeJoin(req)
	req.ClusterID = "00112233445566778899aabbccddeeff"
	with := encodeJoin(req)
	if len(with) <= len(old) || !bytes.HasPrefix(with, old) {
		t.Fatalf("with a cluster id %x, without %x: want the ID appended as one more field", with, old)
	}
	if got, err := decodeJoin(with); err != nil || got != req {
		t.Fatalf("decodeJoin = %+v, %v; want %+v", got, err, req)
	}
}

// The guard on a real state machine and raft store: a member adopts the
// first ID it applies, persisted, applies an entry of its own cluster and
// of no cluster, refuses the first entry of another and everything after
// it, in that batch and in later ones.
func TestGuardRefusesAnotherClustersEntries(t *testing.T) {
	dir := t.TempDir()
	sm, err := fsm.Open(fsm.Config{Path: filepath.Join(dir, "state.db"), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer sm.Close()
	store, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft.db"), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	g, err := openIdentity(store, nil, nil, logtest.ForTest(t))
	if err != nil {
		t.Fatal(err)
	}
	if g.ID() != nil {
		t.Fatalf("a fresh store has cluster id %x", g.ID())
	}
	ours, theirs := bytes.Repeat([]byte{1}, clusterIDLen), bytes.Repeat([]byte{2}, clusterIDLen)
	nonce := bytes.Repeat([]byte{3}, fateNonceLen)
	put := func(idx uint64, key string, id []byte) *raft.Log {
		return &raft.Log{Index: idx, Term: 2, Type: raft.LogCommand, Data: fsm.Encode(fsm.Put{Key: key, Value: []byte("v")}), Extensions: extEncode(nonce, id)}
	}
	s := idFSM{BatchingFSM: sm, g: g}
	res := s.ApplyBatch([]*raft.Log{put(1, "a", nil), put(2, "b", ours), put(3, "c", nil)})
	for i, r := range res {
		if r.(fsm.Result).Err != nil {
			t.Fatalf("entry %d: %v", i+1, r.(fsm.Result).Err)
		}
	}
	if !bytes.Equal(g.ID(), ours) {
		t.Fatalf("adopted %x, want %x", g.ID(), ours)
	}
	if again, err := openIdentity(store, nil, nil, logtest.ForTest(t)); err != nil || !bytes.Equal(again.ID(), ours) {
		t.Fatalf("persisted id %x (%v), want %x", again.ID(), err, ours)
	}
	res = s.ApplyBatch([]*raft.Log{put(4, "d", ours), put(5, "e", theirs), put(6, "f", ours)})
	if err := res[0].(fsm.Result).Err; err != nil {
		t.Fatalf("entry 4 of the member's own cluster: %v", err)
	}
	for i, r := range res[1:] {
		if err := r.(fsm.Result).Err; !errors.Is(err, ErrClusterMismatch) {
			t.Fatalf("entry %d after another cluster's: %v, want ErrClusterMismatch", i+5, err)
		}
	}
	res = s.ApplyBatch([]*raft.Log{put(7, "g", ours)})
	if err := res[0].(fsm.Result).Err; !errors.Is(err, ErrClusterMismatch) {
		t.Fatalf("an entry after the refusal: %v, want ErrClusterMismatch", err)
	}
	st := sm.State()
	if st.AppliedIndex() != 4 {
		t.Fatalf("applied index %d, want 4", st.AppliedIndex())
	}
	for _, k := range []string{"a", "b", "c", "d"} {
		if _, ok := st.Get(k); !ok {
			t.Errorf("key %s of the member's own cluster is missing", k)
		}
	}
	for _, k := range []string{"e", "f", "g"} {
		if _, ok := st.Get(k); ok {
			t.Errorf("key %s was applied after another cluster's entry", k)
		}
	}
	select {
	case <-g.tripped:
	default:
		t.Fatal("the guard did not signal its refusal")
	}
}

// nodeJoiner delivers a member's requests straight to another node, as
// the HTTP front end would to that node's address.
type nodeJoiner struct{ to *Node }

func (j nodeJoiner) Join(ctx context.Context, _ string, req JoinRequest) error {
	return j.to.AddMember(ctx, req)
}

func (j nodeJoiner) UpdateMember(ctx context.Context, _ string, req JoinRequest) error {
	return j.to.UpdateMember(ctx, req)
}

func (j nodeJoiner) AskClusterID(context.Context, string) (string, error) {
	return j.to.ClusterID(), nil
}

// waitClusterID waits until every node has the same non-empty cluster ID
// and returns it.
func waitClusterID(t *testing.T, nodes ...*Node) string {
	t.Helper()
	var id string
	testutil.Eventually(t, 20*time.Second, "every member has the same cluster id", func() bool {
		id = nodes[0].ClusterID()
		for _, n := range nodes {
			if n.ClusterID() == "" || n.ClusterID() != id {
				return false
			}
		}
		return true
	})
	return id
}

// reopen restarts a stopped member on its data directory with cfg
// adjusted.
func reopen(t *testing.T, cfg Config, hooks *testHooks) *Node {
	t.Helper()
	n, err := open(cfg, logtest.ForTest(t).With("node", cfg.ID+"'"), prometheus.NewRegistry(), hooks)
	if err != nil {
		t.Fatalf("reopen %s: %v", cfg.ID, err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// stopInPlace closes n and returns its configuration pinned to the raft
// address it had, where the other members dial it: reopen it with that.
func stopInPlace(t *testing.T, n *Node) Config {
	t.Helper()
	cfg := n.cfg
	cfg.RaftAddr = n.RaftAddr()
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// configOf is the raft configuration as n sees it, "id@addr" each.
func configOf(t *testing.T, n *Node) []string {
	t.Helper()
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range f.Configuration().Servers {
		out = append(out, string(s.ID)+"@"+string(s.Address))
	}
	return out
}

// A member of cluster X restarted on its data directory (on a new raft
// address, so it asks to join) and pointed at cluster Y is refused before
// raft talks at all: Y is unchanged (its own n2 keeps its address) and
// the stray member stops with ErrClusterMismatch instead of retrying.
func TestJoinFromAnotherClusterRefused(t *testing.T) {
	x := startCluster(t, 2, clusterOpts{})
	y := startCluster(t, 2, clusterOpts{})
	xid, yid := waitClusterID(t, x.nodes...), waitClusterID(t, y.nodes...)
	if xid == yid {
		t.Fatalf("two clusters share the id %s", xid)
	}
	yl := y.leader()
	before := configOf(t, yl)

	stray := x.nodes[1]
	cfg := stray.cfg
	if err := stray.Close(); err != nil {
		t.Fatal(err)
	}
	cfg.RaftAddr, cfg.Join = "127.0.0.1:0", []string{"y"}
	again := reopen(t, cfg, nil)
	if again.ClusterID() != xid {
		t.Fatalf("restarted with cluster id %q, want X's %s", again.ClusterID(), xid)
	}
	again.StartJoin(nodeJoiner{to: y.followers(yl)[0]}) // a follower of Y checks it
	select {
	case <-again.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("the member of X kept trying to join Y")
	}
	if err := again.Err(); !errors.Is(err, ErrClusterMismatch) {
		t.Fatalf("the member of X stopped with %v, want ErrClusterMismatch", err)
	}
	// Straight to Y's leader too, and with a malformed ID.
	req := JoinRequest{ID: "n2", RaftAddr: "127.0.0.1:1", Voter: true, ClusterID: xid}
	if err := yl.AddMember(ctxT(t, 10*time.Second), req); !errors.Is(err, ErrClusterMismatch) {
		t.Fatalf("Y's leader answered a join from X with %v, want ErrClusterMismatch", err)
	}
	req.ClusterID = "zz"
	if err := yl.AddMember(ctxT(t, 10*time.Second), req); !errors.Is(err, fsm.ErrInvalidArgument) {
		t.Fatalf("a malformed cluster id was answered %v, want ErrInvalidArgument", err)
	}
	if after := configOf(t, yl); !equalStrings(before, after) {
		t.Fatalf("Y's configuration changed from %v to %v", before, after)
	}
	for _, n := range y.nodes {
		testutil.Eventually(t, 10*time.Second, n.ID()+" of Y ready", func() bool { return n.Ready() == nil })
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// A member restarted on its data directory at its recorded raft address
// sends no join request, -join or not; -join naming another cluster's
// member is still caught: the member asks it for its cluster ID and stops
// with ErrClusterMismatch. Naming a member of its own cluster, or one
// without an ID, it goes on.
func TestRestartWithJoinToAnotherClusterStops(t *testing.T) {
	x := startCluster(t, 2, clusterOpts{})
	y := startCluster(t, 1, clusterOpts{})
	waitClusterID(t, x.nodes...)
	old := func(int) *testHooks { return &testHooks{noClusterID: true} }
	z := startCluster(t, 1, clusterOpts{hooks: old}) // a cluster without an ID

	stray := x.nodes[1]
	cfg := stray.cfg
	cfg.RaftAddr, cfg.Join = stray.RaftAddr(), []string{"elsewhere"}
	if err := stray.Close(); err != nil {
		t.Fatal(err)
	}
	again := reopen(t, cfg, nil)
	if again.needJoin {
		t.Fatal("a restart at the recorded address asks to join")
	}
	for _, to := range []*Node{x.nodes[0], z.nodes[0]} {
		again.checkJoinTargets(nodeJoiner{to: to})
		if err := again.Err(); err != nil {
			t.Fatalf("-join naming %s (cluster id %q): stopped with %v", to.ID(), to.ClusterID(), err)
		}
	}
	again.checkJoinTargets(nodeJoiner{to: y.nodes[0]})
	select {
	case <-again.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("-join naming a member of another cluster: the member did not stop")
	}
	if err := again.Err(); !errors.Is(err, ErrClusterMismatch) {
		t.Fatalf("stopped with %v, want ErrClusterMismatch", err)
	}
}
