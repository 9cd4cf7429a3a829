package lease

import (
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/bwmarrin/snowflake"
)

// MaxNode is the largest snowflake node number (10 node bits).
const MaxNode = 1023

// MaxExplicitID is the largest lease ID a client may choose. The IDs
// above it stay for the leader to pick: IDGen never picks one at or below
// the largest ID ever granted, so a single grant of math.MaxInt64 would
// leave none, and every later grant without an ID would fail. 2^48 IDs
// are some 9,000 years of grants at a thousand a second.
const MaxExplicitID = math.MaxInt64 - 1<<48

// ErrIDsExhausted: an ID above the floor would overflow int64 (a lease
// was granted with an explicit ID of math.MaxInt64, before MaxExplicitID).
var ErrIDsExhausted = errors.New("lease: no lease ID above the largest one ever granted")

// IDGen hands out lease IDs: snowflake IDs (time, node number, sequence),
// but never one at or below a floor. The floor is the largest lease ID the
// replicated state has ever seen, so an ID is never issued twice even when
// the wall clock steps back between two leaderships or restarts (the
// snowflake time would then start below IDs already issued). While the
// clock behaves, the snowflake ID is above the floor and is used as is.
type IDGen struct {
	node *snowflake.Node

	mu   sync.Mutex
	last int64
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

// Next returns a new ID above floor and above every ID this generator
// returned before. IDs are positive and increase.
func (g *IDGen) Next(floor int64) (int64, error) {
	id := g.node.Generate().Int64()
	g.mu.Lock()
	defer g.mu.Unlock()
	lo := max(floor, g.last)
	if id <= lo {
		if lo == math.MaxInt64 {
			return 0, ErrIDsExhausted
		}
		id = lo + 1
	}
	g.last = id
	return id, nil
}
