package lease_test

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/rosterhq/roster/lease"
)

func TestNewIDGenRange(t *testing.T) {
	for _, node := range []int64{-1, lease.MaxNode + 1, 1 << 20, -1 << 40} {
		if g, err := lease.NewIDGen(node); err == nil || g != nil {
			t.Errorf("NewIDGen(%d) = %v, %v; want an error", node, g, err)
		}
	}
	for _, node := range []int64{0, 1, 512, lease.MaxNode} {
		if _, err := lease.NewIDGen(node); err != nil {
			t.Errorf("NewIDGen(%d): %v", node, err)
		}
	}
}

func TestIDGenIncreasing(t *testing.T) {
	g, err := lease.NewIDGen(7)
	if err != nil {
		t.Fatal(err)
	}
	prev := int64(0)
	for i := 0; i < 20_000; i++ { // crosses several milliseconds and sequence rollovers
		id, err := g.Next(0)
		if err != nil || id <= prev {
			t.Fatalf("ID %d after %d", id, prev)
		}
		prev = id
	}
}

func TestIDGenDistinctAcrossNodes(t *testing.T) {
	seen := map[int64]int64{}
	var gens []*lease.IDGen
	for _, node := range []int64{0, 1, 2, 3, lease.MaxNode} {
		g, err := lease.NewIDGen(node)
		if err != nil {
			t.Fatal(err)
		}
		gens = append(gens, g)
	}
	nodes := []int64{0, 1, 2, 3, lease.MaxNode}
	// Interleave so that generators share milliseconds.
	for i := 0; i < 5000; i++ {
		for j, g := range gens {
			id, err := g.Next(0)
			if err != nil || id <= 0 {
				t.Fatalf("non-positive ID %d", id)
			}
			if other, dup := seen[id]; dup {
				t.Fatalf("ID %d from node %d and node %d", id, other, nodes[j])
			}
			seen[id] = nodes[j]
		}
	}
}

// A floor above the clock (IDs issued before a wall-clock step back, or by
// a member whose clock runs ahead) is never undercut: the generator goes on
// from the floor instead of from its own, earlier, time.
func TestIDGenStaysAboveFloor(t *testing.T) {
	g, err := lease.NewIDGen(3)
	if err != nil {
		t.Fatal(err)
	}
	now, err := g.Next(0)
	if err != nil {
		t.Fatal(err)
	}
	// An ID minted one hour in the future: snowflake time sits in the top
	// bits, above 22 bits of node and sequence.
	ahead := now + int64(time.Hour/time.Millisecond)<<22
	prev := ahead
	for i := 0; i < 1000; i++ {
		id, err := g.Next(ahead)
		if err != nil || id <= prev {
			t.Fatalf("Next(%d) = %d, %v after %d", ahead, id, err, prev)
		}
		prev = id
	}
	// The floor dropping back (a stale read) does not bring IDs back down.
	if id, err := g.Next(0); err != nil || id <= prev {
		t.Fatalf("Next(0) = %d, %v after %d", id, err, prev)
	}
	if _, err := g.Next(math.MaxInt64); !errors.Is(err, lease.ErrIDsExhausted) {
		t.Fatalf("Next(MaxInt64): %v, want ErrIDsExhausted", err)
	}
}
