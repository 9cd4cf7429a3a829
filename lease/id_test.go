package lease_test

import (
	"testing"

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
		id := g.Next()
		if id <= prev {
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
			id := g.Next()
			if id <= 0 {
				t.Fatalf("non-positive ID %d", id)
			}
			if other, dup := seen[id]; dup {
				t.Fatalf("ID %d from node %d and node %d", id, other, nodes[j])
			}
			seen[id] = nodes[j]
		}
	}
}
