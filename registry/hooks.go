package registry

import (
	"github.com/hashicorp/raft"
	"github.com/rosterhq/roster/fsm"
)

// testHooks lets tests in this package hold the node at chosen points.
type testHooks struct {
	// leadership runs in the leadership watcher before it acts on a change.
	leadership func(leading bool)
	// apply runs before the state machine applies each batch of entries.
	apply func()
	// proposing runs in propose after its checks, just before the entry
	// (of the command named) is handed to raft; and in batchHere, named
	// "batch", before its entries are.
	proposing func(name string)
	// cut, when set, is asked before each outgoing raft RPC how to cut it
	// (cuttransport.go).
	cut func(cutRPC) cutMode
	// noClusterID makes the node behave as a build before the cluster ID
	// did (clusterid.go): it bootstraps without one, proposes entries with
	// the nonce alone, and applies every entry without looking at its ID
	// (no guard, no adoption).
	noClusterID bool
}

// hookedFSM is the state machine as raft sees it when testHooks.apply is
// set.
type hookedFSM struct {
	*fsm.FSM
	apply func()
}

func (f hookedFSM) ApplyBatch(logs []*raft.Log) []interface{} {
	f.apply()
	return f.FSM.ApplyBatch(logs)
}

func (f hookedFSM) Apply(l *raft.Log) interface{} { return f.ApplyBatch([]*raft.Log{l})[0] }
