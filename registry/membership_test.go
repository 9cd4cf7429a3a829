package registry_test

import (
	"context"
	"errors"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rosterhq/roster/fsm"
	"github.com/rosterhq/roster/internal/logging/logtest"
	"github.com/rosterhq/roster/internal/testutil"
	"github.com/rosterhq/roster/registry"
)

// startTrio starts an in-process three-member cluster on 127.0.0.1: n1
// bootstraps and adds the other two. It returns the members, n1 first.
func startTrio(t *testing.T) []*registry.Node {
	nodes, _ := startTrioConfigs(t)
	return nodes
}

// startTrioConfigs is startTrio that also returns each member's Config.
func startTrioConfigs(t *testing.T) ([]*registry.Node, []registry.Config) {
	t.Helper()
	var nodes []*registry.Node
	var cfgs []registry.Config
	for i, id := range []string{"n1", "n2", "n3"} {
		cfg := registry.Config{
			ID: id, DataDir: t.TempDir(), RaftAddr: "127.0.0.1:0", Bootstrap: i == 0, NodeNumber: -1,
			HTTPAdvertise: "127.0.0.1:1" + id[1:],
		}
		n, err := registry.Open(cfg, logtest.ForTest(t), prometheus.NewRegistry())
		if err != nil {
			t.Fatalf("open %s: %v", id, err)
		}
		t.Cleanup(func() { n.Close() })
		nodes = append(nodes, n)
		cfgs = append(cfgs, cfg)
	}
	testutil.Eventually(t, 10*time.Second, "n1 ready", func() bool { return nodes[0].Ready() == nil })
	ctx := context.Background()
	for _, n := range nodes[1:] {
		req := registry.JoinRequest{ID: n.ID(), RaftAddr: n.RaftAddr(), HTTPAddr: "127.0.0.1:1" + n.ID()[1:], Voter: true}
		if err := nodes[0].AddMember(ctx, req); err != nil {
			t.Fatalf("add %s: %v", n.ID(), err)
		}
	}
	for _, n := range nodes {
		testutil.Eventually(t, 10*time.Second, n.ID()+" ready", func() bool { return n.Ready() == nil })
	}
	return nodes, cfgs
}

func configIDs(t *testing.T, n *registry.Node) []string {
	t.Helper()
	info, err := n.Cluster(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range info.Members {
		ids = append(ids, m.ID)
	}
	return ids
}

// A removed member cannot bring itself back: what its metadata keeper asks
// for (UpdateMember) only re-records a member that is in the
// configuration, and the removal takes the configuration first, the record
// after.
func TestRemovedMemberCannotComeBack(t *testing.T) {
	nodes := startTrio(t)
	leader, victim := nodes[0], nodes[2]
	ctx := context.Background()
	if err := leader.RemoveMember(ctx, victim.ID()); err != nil {
		t.Fatalf("remove: %v", err)
	}
	if ids := configIDs(t, leader); slices.Contains(ids, victim.ID()) {
		t.Fatalf("configuration after removal: %v", ids)
	}
	if _, ok := leader.FSM().State().Member(victim.ID()); ok {
		t.Fatalf("the removed member's record is still there")
	}
	req := registry.JoinRequest{ID: victim.ID(), RaftAddr: victim.RaftAddr(), HTTPAddr: "127.0.0.1:9", Voter: true}
	if err := leader.UpdateMember(ctx, req); !errors.Is(err, registry.ErrNotMember) {
		t.Fatalf("UpdateMember of a removed member: %v, want ErrNotMember", err)
	}
	if err := nodes[1].UpdateMember(ctx, req); !errors.Is(err, registry.ErrNotMember) {
		t.Fatalf("UpdateMember of a removed member, through a follower: %v, want ErrNotMember", err)
	}
	if ids := configIDs(t, leader); slices.Contains(ids, victim.ID()) {
		t.Fatalf("configuration after the removed member asked to be re-recorded: %v", ids)
	}
	if _, ok := leader.FSM().State().Member(victim.ID()); ok {
		t.Fatalf("the removed member got its record back")
	}
	// A member in the configuration gets its HTTP address re-recorded, at
	// its own raft address only.
	other := nodes[1]
	wrong := registry.JoinRequest{ID: other.ID(), RaftAddr: "127.0.0.1:1", HTTPAddr: "127.0.0.1:7", Voter: true}
	if err := leader.UpdateMember(ctx, wrong); !errors.Is(err, registry.ErrNotMember) {
		t.Fatalf("UpdateMember at another raft address: %v, want ErrNotMember", err)
	}
	ok := registry.JoinRequest{ID: other.ID(), RaftAddr: other.RaftAddr(), HTTPAddr: "127.0.0.1:7", Voter: true}
	if err := leader.UpdateMember(ctx, ok); err != nil {
		t.Fatalf("UpdateMember: %v", err)
	}
	if m, _ := leader.FSM().State().Member(other.ID()); m.HTTPAddr != "127.0.0.1:7" {
		t.Fatalf("record after update: %+v", m)
	}
}

// A leader that removes itself cannot propose the record's deletion; the
// next leader forgets it. The removed leader stops.
func TestLeaderRemovingItselfIsForgottenByTheNext(t *testing.T) {
	nodes := startTrio(t)
	old := nodes[0]
	if err := old.RemoveMember(context.Background(), old.ID()); err != nil && !errors.Is(err, registry.ErrTimeout) {
		t.Fatalf("remove self: %v", err)
	}
	var next *registry.Node
	testutil.Eventually(t, 15*time.Second, "a new leader forgets n1's record", func() bool {
		for _, n := range nodes[1:] {
			if n.IsLeader() && n.Ready() == nil {
				next = n
			}
		}
		if next == nil {
			return false
		}
		_, has := next.FSM().State().Member(old.ID())
		return !has
	})
	if f := next.FSM().State(); len(f.Members()) != 2 {
		t.Fatalf("records left: %+v", f.Members())
	}
	// Raft shut itself down on the removed leader: the node stops too,
	// rather than answer every request after waiting for a leader that
	// never comes.
	select {
	case <-old.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the removed leader's node is still open with its raft shut down")
	}
	if err := old.Err(); !errors.Is(err, registry.ErrNotMember) {
		t.Fatalf("the removed leader stopped with %v, want ErrNotMember", err)
	}
}

// directJoiner delivers a member's requests straight to another node, as
// the HTTP front end would to that node's address.
type directJoiner struct{ to *registry.Node }

func (j directJoiner) Join(ctx context.Context, _ string, req registry.JoinRequest) error {
	return j.to.AddMember(ctx, req)
}

func (j directJoiner) UpdateMember(ctx context.Context, _ string, req registry.JoinRequest) error {
	return j.to.UpdateMember(ctx, req)
}

// A non-voter added without its HTTP address (rosterctl member add ID
// RAFT_ADDR --nonvoter) has it recorded, as a voter does: reads and
// watches are served there, and status and the console list members by
// that address.
func TestNonVoterGetsItsHTTPAddressRecorded(t *testing.T) {
	var nodes []*registry.Node
	for i, id := range []string{"n1", "nv"} {
		n, err := registry.Open(registry.Config{
			ID: id, DataDir: t.TempDir(), RaftAddr: "127.0.0.1:0", Bootstrap: i == 0, NodeNumber: -1,
			HTTPAdvertise: "127.0.0.1:1" + strconv.Itoa(i),
		}, logtest.ForTest(t), prometheus.NewRegistry())
		if err != nil {
			t.Fatalf("open %s: %v", id, err)
		}
		t.Cleanup(func() { n.Close() })
		nodes = append(nodes, n)
	}
	leader, nv := nodes[0], nodes[1]
	testutil.Eventually(t, 10*time.Second, "n1 ready", func() bool { return leader.Ready() == nil })
	req := registry.JoinRequest{ID: nv.ID(), RaftAddr: nv.RaftAddr()}
	if err := leader.AddMember(context.Background(), req); err != nil {
		t.Fatalf("add the non-voter: %v", err)
	}
	nv.StartJoin(directJoiner{to: leader})
	testutil.Eventually(t, 10*time.Second, "the non-voter's HTTP address recorded", func() bool {
		m, ok := leader.FSM().State().Member(nv.ID())
		return ok && m.HTTPAddr == "127.0.0.1:11"
	})
}

// Adding a voter again as a non-voter cannot make it one (raft keeps it a
// voter): it is refused, rather than answered as done.
func TestAddMemberDoesNotPretendToDemote(t *testing.T) {
	nodes := startTrio(t)
	leader, other := nodes[0], nodes[1]
	req := registry.JoinRequest{ID: other.ID(), RaftAddr: other.RaftAddr(), HTTPAddr: "127.0.0.1:1" + other.ID()[1:]}
	for _, via := range []*registry.Node{leader, nodes[2]} {
		if err := via.AddMember(context.Background(), req); !errors.Is(err, fsm.ErrInvalidArgument) {
			t.Fatalf("adding voter %s as a non-voter through %s: %v, want ErrInvalidArgument", other.ID(), via.ID(), err)
		}
	}
	info, err := leader.Cluster(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range info.Members {
		if !m.Voter {
			t.Fatalf("members after the refused requests: %+v", info.Members)
		}
	}
	// Adding it again as it is stays a harmless no-op.
	req.Voter = true
	if err := nodes[2].AddMember(context.Background(), req); err != nil {
		t.Fatalf("adding voter %s again: %v", other.ID(), err)
	}
}

// Adding a member at the leader's own raft address under another ID is a
// mistake (the leader is there): refused, where the rule for a member that
// was renamed or replaced at its address used to remove the leader.
func TestAddMemberAtTheLeadersAddressRefused(t *testing.T) {
	nodes := startTrio(t)
	leader := nodes[0]
	req := registry.JoinRequest{ID: "n9", RaftAddr: leader.RaftAddr(), HTTPAddr: "127.0.0.1:19", Voter: true}
	for _, via := range []*registry.Node{leader, nodes[1]} {
		if err := via.AddMember(context.Background(), req); !errors.Is(err, fsm.ErrInvalidArgument) {
			t.Fatalf("adding n9 at the leader's raft address through %s: %v, want ErrInvalidArgument", via.ID(), err)
		}
	}
	info, err := leader.Cluster(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Members) != 3 || !leader.IsLeader() {
		t.Fatalf("after the refused requests: leader %v, members %+v", leader.IsLeader(), info.Members)
	}
}

// A removed follower knows no leader any more, and none will come to it:
// it refuses writes and linearizable reads at once (no_leader, so clients
// go elsewhere) instead of making each wait for a leader in vain.
func TestRemovedFollowerRefusesAtOnce(t *testing.T) {
	nodes := startTrio(t)
	leader, victim := nodes[0], nodes[2]
	if err := leader.RemoveMember(context.Background(), victim.ID()); err != nil {
		t.Fatalf("remove: %v", err)
	}
	// From raft's one best-effort send of the configuration without it,
	// or else from the leader when it asks (removal.go).
	testutil.Eventually(t, 20*time.Second, "the removed member knows it", victim.Removed)
	// Shorter than the member's LeaderWait (3 s): the call must not be
	// ended by it.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := victim.Put(ctx, fsm.Put{Key: "/after-removal", Value: []byte("v")}); !errors.Is(err, registry.ErrNoLeader) || ctx.Err() != nil {
		t.Fatalf("put on the removed member: %v (context: %v), want ErrNoLeader at once", err, ctx.Err())
	}
	if _, err := victim.Read(ctx, false); !errors.Is(err, registry.ErrNoLeader) || ctx.Err() != nil {
		t.Fatalf("read on the removed member: %v (context: %v), want ErrNoLeader at once", err, ctx.Err())
	}
}

// A voter that does not answer must not be added: on a one-member
// cluster it would make a quorum of two out of a member that cannot vote,
// and the leader would step down for good, with no way to remove it
// again (etcd refuses such a change too: strict reconfiguration check).
func TestAddingAVoterThatDoesNotAnswerIsRefused(t *testing.T) {
	n, err := registry.Open(registry.Config{
		ID: "n1", DataDir: t.TempDir(), RaftAddr: "127.0.0.1:0", Bootstrap: true, NodeNumber: -1,
	}, logtest.ForTest(t), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	testutil.Eventually(t, 10*time.Second, "n1 ready", func() bool { return n.Ready() == nil })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close() // nothing listens there now
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = n.AddMember(ctx, registry.JoinRequest{ID: "n2", RaftAddr: dead, Voter: true})
	if !errors.Is(err, fsm.ErrInvalidArgument) {
		t.Fatalf("adding a voter nobody answers for: %v, want ErrInvalidArgument", err)
	}
	t.Logf("refused: %v", err)
	if _, err := n.Put(ctx, fsm.Put{Key: "/after", Value: []byte("v")}); err != nil {
		t.Fatalf("put after the refused add: %v", err)
	}
	// A non-voter does not count for the quorum: it may be added first
	// and started after.
	if err := n.AddMember(ctx, registry.JoinRequest{ID: "n3", RaftAddr: dead, Voter: false}); err != nil {
		t.Fatalf("adding a non-voter that is not up yet: %v", err)
	}
	if _, err := n.Put(ctx, fsm.Put{Key: "/after2", Value: []byte("v")}); err != nil {
		t.Fatalf("put after adding a non-voter: %v", err)
	}
}

// Removing the leader works from any member and answers what happened, as
// etcd's MemberRemove does: the removal commits (the others elect a new
// leader, the old one stops), so the answer is success, not an unknown
// outcome. Asked of a follower, the request travels to the leader, which
// shuts its raft down right after committing its own removal.
func TestRemovingTheLeaderAnswersSuccess(t *testing.T) {
	for _, through := range []string{"follower", "leader"} {
		t.Run(through, func(t *testing.T) {
			nodes := startTrio(t)
			old := nodes[0]
			asked := old
			if through == "follower" {
				asked = nodes[1]
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := asked.RemoveMember(ctx, old.ID()); err != nil {
				t.Fatalf("removing the leader through the %s: %v, want success", through, err)
			}
			testutil.Eventually(t, 15*time.Second, "a new leader without n1", func() bool {
				for _, n := range nodes[1:] {
					if n.IsLeader() && n.Ready() == nil {
						return !slices.Contains(configIDs(t, n), old.ID())
					}
				}
				return false
			})
		})
	}
}

// Removing the last voter is refused as a request that changed nothing
// (400), not answered as a timeout (504, outcome unknown): raft refuses
// the change, and the member goes on leading.
func TestRemovingTheLastVoterRefused(t *testing.T) {
	n, err := registry.Open(registry.Config{
		ID: "n1", DataDir: t.TempDir(), RaftAddr: "127.0.0.1:0", Bootstrap: true, NodeNumber: -1,
	}, logtest.ForTest(t), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	testutil.Eventually(t, 10*time.Second, "n1 ready", func() bool { return n.Ready() == nil })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := n.RemoveMember(ctx, "n1"); !errors.Is(err, fsm.ErrInvalidArgument) || errors.Is(err, registry.ErrTimeout) {
		t.Fatalf("removing the last voter: %v, want ErrInvalidArgument", err)
	}
	if ids := configIDs(t, n); !slices.Equal(ids, []string{"n1"}) {
		t.Fatalf("configuration after the refusal: %v", ids)
	}
	if _, err := n.Put(ctx, fsm.Put{Key: "/after", Value: []byte("v")}); err != nil {
		t.Fatalf("put after the refused removal: %v", err)
	}
}

// A leader that removes itself shuts its raft down as soon as the change
// commits. When its state machine was still applying earlier entries at
// that moment, raft may never answer the change's future (it hands the
// entry to the state machine goroutine, which can stop without applying
// it): the removal, which did commit, must still be answered, not wait
// for ever (and hold the member's Close with it when it came over the
// channel). The test holds the leader's state machine in an earlier batch
// while the removal commits; raft then drops the answer in about half the
// runs, so it tries six times.
func TestLeaderRemovingItselfWhileApplyingIsAnswered(t *testing.T) {
	for round := range 6 {
		nodes := startTrio(t)
		old := nodes[0]
		var hold atomic.Bool
		release := make(chan struct{})
		var releaseOnce sync.Once
		unhold := func() { hold.Store(false); releaseOnce.Do(func() { close(release) }) }
		// Before the nodes close (cleanups run last first): a failure
		// below must not leave the state machine held, or Close waits on
		// raft's shutdown for ever.
		t.Cleanup(unhold)
		held := make(chan struct{}, 1)
		old.FSM().SetObserver(func(*fsm.State, []fsm.Event) {
			if hold.Load() {
				select {
				case held <- struct{}{}:
				default:
				}
				<-release
			}
		})
		hold.Store(true)
		go old.Put(context.Background(), fsm.Put{Key: "/before-removal", Value: []byte("v")})
		select {
		case <-held:
		case <-time.After(10 * time.Second):
			t.Fatal("the put never reached the state machine")
		}
		errc := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			errc <- old.RemoveMember(ctx, old.ID())
		}()
		testutil.Eventually(t, 30*time.Second, "the leader's raft shut down on its removal", func() bool {
			return errors.Is(old.Err(), registry.ErrNotMember)
		})
		unhold()
		select {
		case err := <-errc:
			if err != nil {
				t.Fatalf("round %d: the leader's removal of itself: %v, want success", round, err)
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("round %d: the leader's removal of itself is still unanswered 15 s after it committed", round)
		}
		select {
		case <-old.Done():
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: the removed leader never stopped", round)
		}
	}
}
