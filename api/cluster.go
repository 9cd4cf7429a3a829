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
	// ClusterID is the cluster's ID (32 hex digits) as the answering
	// member knows it; "" while it knows none (a member of a cluster
	// created before the ID existed, until its leader proposes one).
	ClusterID string `json:"cluster_id"`
}

// AddMemberRequest is the body of POST /v1/cluster/members. Voter absent
// means true.
type AddMemberRequest struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	HTTPAddr string `json:"http_addr,omitempty"`
	Voter    *bool  `json:"voter,omitempty"`
	// ClusterID is the joining member's cluster ID, when its data
	// directory has one: a member of another cluster is refused with 409
	// cluster_mismatch.
	ClusterID string `json:"cluster_id,omitempty"`
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

// CodeUnreachable is the error code of a member that did not answer the
// probe of GET /v1/cluster/status (never an HTTP status of its own).
const CodeUnreachable = "unreachable"

// MemberStatus is one member in GET /v1/cluster/status: the member as the
// answering member's configuration has it, then what the member reports
// about itself (absent when it did not answer).
type MemberStatus struct {
	Member
	// Reachable is false when the member did not answer the probe.
	Reachable bool `json:"reachable"`
	// Ready is what the member's /readyz would say; Error says why not
	// (no_leader, not_ready, unreachable, or the member's refusal).
	Ready        bool         `json:"ready"`
	Error        *ErrorDetail `json:"error,omitempty"`
	LeaderID     string       `json:"leader_id,omitempty"` // the leader this member knows
	Term         *uint64      `json:"term,omitempty"`
	CommitIndex  *uint64      `json:"commit_index,omitempty"`
	AppliedIndex *uint64      `json:"applied_index,omitempty"`
	Version      string       `json:"version,omitempty"` // of its rosterd build
	// RTTMillis is the probe's round trip, absent for the answering member.
	RTTMillis *float64 `json:"rtt_ms,omitempty"`
}

// ClusterStatusResponse answers GET /v1/cluster/status: every member of
// the configuration, and the answering member last (without a raft
// address) when it is not in it (with ?local=true: the answering member
// only).
type ClusterStatusResponse struct {
	Member  string         `json:"member"` // the member that answered
	Members []MemberStatus `json:"members"`
}
