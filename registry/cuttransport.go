package registry

import (
	"errors"
	"io"

	"github.com/hashicorp/raft"
)

// cutMode is how a test cuts a member's outgoing raft RPCs (testHooks.cut).
type cutMode int

const (
	cutNone cutMode = iota
	// cutDrop fails every outgoing RPC unsent: the member's entries reach
	// no one, while what others send it still arrives.
	cutDrop
	// cutLoseReplies sends every outgoing RPC and then fails it: the
	// others store the member's entries, but it never learns they did.
	cutLoseReplies
)

var errCut = errors.New("registry: raft link cut by a test")

// cutRPC is the outgoing RPC a cut hook is asked about.
type cutRPC struct {
	to raft.ServerID
	// entries is how many log entries an AppendEntries carries: 0 for a
	// heartbeat, and for the other RPCs.
	entries int
}

// cutTransport is the raft transport of a member whose test cuts its
// outgoing RPCs. Installed only when testHooks.cut is set.
type cutTransport struct {
	*raft.NetworkTransport
	cut func(cutRPC) cutMode
}

// call runs one outgoing RPC as the current mode allows.
func (t cutTransport) call(c cutRPC, rpc func() error) error {
	switch t.cut(c) {
	case cutDrop:
		return errCut
	case cutLoseReplies:
		if err := rpc(); err != nil {
			return err
		}
		return errCut
	}
	return rpc()
}

func (t cutTransport) AppendEntriesPipeline(id raft.ServerID, target raft.ServerAddress) (raft.AppendPipeline, error) {
	return nil, raft.ErrPipelineReplicationNotSupported
}

func (t cutTransport) AppendEntries(id raft.ServerID, target raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	return t.call(cutRPC{to: id, entries: len(args.Entries)}, func() error { return t.NetworkTransport.AppendEntries(id, target, args, resp) })
}

func (t cutTransport) RequestVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestVoteRequest, resp *raft.RequestVoteResponse) error {
	return t.call(cutRPC{to: id}, func() error { return t.NetworkTransport.RequestVote(id, target, args, resp) })
}

func (t cutTransport) RequestPreVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestPreVoteRequest, resp *raft.RequestPreVoteResponse) error {
	return t.call(cutRPC{to: id}, func() error { return t.NetworkTransport.RequestPreVote(id, target, args, resp) })
}

func (t cutTransport) InstallSnapshot(id raft.ServerID, target raft.ServerAddress, args *raft.InstallSnapshotRequest, resp *raft.InstallSnapshotResponse, data io.Reader) error {
	return t.call(cutRPC{to: id}, func() error { return t.NetworkTransport.InstallSnapshot(id, target, args, resp, data) })
}

func (t cutTransport) TimeoutNow(id raft.ServerID, target raft.ServerAddress, args *raft.TimeoutNowRequest, resp *raft.TimeoutNowResponse) error {
	return t.call(cutRPC{to: id}, func() error { return t.NetworkTransport.TimeoutNow(id, target, args, resp) })
}
