package api

// Member is one member of the cluster as GET /v1/cluster shows it.
type Member struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	HTTPAddr string `json:"http_addr"`
	Voter    bool   `json:"voter"`
	Leader   bool   `json:"leader"`
}

// ClusterResponse answers GET /v1/cluster: the view of the member that
// answered. Leader is null when that member knows no leader.
type ClusterResponse struct {
	Leader       *Member  `json:"leader"`
	Members      []Member `json:"members"`
	Term         uint64   `json:"term"`
	CommitIndex  uint64   `json:"commit_index"`
	AppliedIndex uint64   `json:"applied_index"`
}

// AddMemberRequest is the body of POST /v1/cluster/members. Voter absent
// means true.
type AddMemberRequest struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	HTTPAddr string `json:"http_addr,omitempty"`
	Voter    *bool  `json:"voter,omitempty"`
}

// RemovedResponse answers DELETE /v1/cluster/members/{id}.
type RemovedResponse struct {
	Removed string `json:"removed"`
}

// SnapshotResponse answers POST /v1/cluster/snapshot.
type SnapshotResponse struct {
	Index uint64 `json:"index"` // the raft index the snapshot covers
}

// StatusResponse answers /healthz and /readyz when all is well.
type StatusResponse struct {
	Status string `json:"status"`
}
