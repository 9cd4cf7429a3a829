package registry

// Member is one member of the raft configuration as the API shows it.
type Member struct {
	ID       string
	RaftAddr string
	HTTPAddr string
	Voter    bool
	Leader   bool
}

// ClusterInfo is the node's view of the cluster.
type ClusterInfo struct {
	Leader       *Member
	Members      []Member
	Term         uint64
	CommitIndex  uint64
	AppliedIndex uint64
	// ClusterID is the cluster ID in hex, "" while this member has none.
	ClusterID string
}
