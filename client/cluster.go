package client

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/rosterhq/roster/api"
)

// Member is one member of the cluster.
type Member = api.Member

// ClusterResponse is the answer to Cluster: the view of the member that
// answered. Leader is nil when that member knows no leader.
type ClusterResponse = api.ClusterResponse

// SnapshotResponse is the answer to Snapshot: the raft index the snapshot
// covers.
type SnapshotResponse = api.SnapshotResponse

// Cluster reads the membership and raft state as one member sees it.
func (c *Client) Cluster(ctx context.Context) (*ClusterResponse, error) {
	res, err := c.do(ctx, &call{method: http.MethodGet, path: "/v1/cluster", class: idempotent})
	if err != nil {
		return nil, err
	}
	var w ClusterResponse
	if err := res.decode(&w); err != nil {
		return nil, err
	}
	if w.Members == nil {
		w.Members = []Member{}
	}
	return &w, nil
}

// MemberAdd adds a member (started with -bootstrap=false) to the cluster
// and returns once it is part of the configuration. m.Voter must be true
// for a voting member (false adds a non-voter); m.Leader is ignored.
func (c *Client) MemberAdd(ctx context.Context, m Member) (*Member, error) {
	req := api.AddMemberRequest{ID: m.ID, RaftAddr: m.RaftAddr, HTTPAddr: m.HTTPAddr, Voter: &m.Voter}
	res, err := c.do(ctx, &call{method: http.MethodPost, path: "/v1/cluster/members", json: req,
		class: mutating})
	if err != nil {
		return nil, err
	}
	var w Member
	if err := res.decode(&w); err != nil {
		return nil, err
	}
	return &w, nil
}

// MemberRemove removes a member from the cluster. An ID that is no
// member's fails with ErrKeyNotFound (404 not_found). Once a member is
// removed, the client drops its idle connections and its leader hint: the
// member removed may be the leader, whose rosterd exits.
func (c *Client) MemberRemove(ctx context.Context, id string) error {
	if id == "" || strings.Contains(id, "/") {
		return fmt.Errorf("%w: member id %q", ErrInvalidArgument, id)
	}
	_, err := c.do(ctx, &call{method: http.MethodDelete, path: "/v1/cluster/members/" + id, class: mutating})
	if err == nil {
		// The member removed may be the leader, which answered: its
		// rosterd now exits, closing the connections held idle to it, and
		// a write sent on one as it closes would have an unknown outcome.
		// Start afresh: no leader hint, no idle connection.
		c.leader.Store(nil)
		c.hc.CloseIdleConnections()
	}
	return err
}

// Snapshot makes the member that answers take a raft snapshot (which
// compacts its log) and returns the index it covers. Taking a snapshot
// twice is harmless, so the call is retried like a read.
func (c *Client) Snapshot(ctx context.Context) (*SnapshotResponse, error) {
	res, err := c.do(ctx, &call{method: http.MethodPost, path: "/v1/cluster/snapshot", class: idempotent})
	if err != nil {
		return nil, err
	}
	var w SnapshotResponse
	if err := res.decode(&w); err != nil {
		return nil, err
	}
	return &w, nil
}
