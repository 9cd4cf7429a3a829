package lease

import (
	"fmt"

	"github.com/bwmarrin/snowflake"
)

// MaxNode is the largest snowflake node number (10 node bits).
const MaxNode = 1023

// IDGen hands out snowflake lease IDs. Each member of a cluster has its own
// node number, so IDs chosen by successive leaders never collide.
type IDGen struct {
	node *snowflake.Node
}

// NewIDGen returns a generator for node number node (0..MaxNode).
func NewIDGen(node int64) (*IDGen, error) {
	if node < 0 || node > MaxNode {
		return nil, fmt.Errorf("lease: snowflake node %d out of range 0..%d", node, MaxNode)
	}
	n, err := snowflake.NewNode(node)
	if err != nil {
		return nil, fmt.Errorf("lease: snowflake node %d: %w", node, err)
	}
	return &IDGen{node: n}, nil
}

// Next returns a new ID. IDs are positive and increase over time.
func (g *IDGen) Next() int64 { return g.node.Generate().Int64() }
