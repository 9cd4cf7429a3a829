package api

// GrantRequest is the body of POST /v1/leases: ttl in seconds, an optional
// name and an optional ID of the caller's choosing.
type GrantRequest struct {
	TTL  int64   `json:"ttl"`
	Name string  `json:"name,omitempty"`
	ID   LeaseID `json:"id,omitzero"`
}

// GrantResponse answers POST /v1/leases (201).
type GrantResponse struct {
	ID   LeaseID `json:"id"`
	TTL  int64   `json:"ttl"` // seconds
	Name string  `json:"name"`
}

// LeaseStatus describes one lease: its TTL as granted and the whole
// seconds left, rounded up and never more than the TTL.
type LeaseStatus struct {
	ID        LeaseID `json:"id"`
	TTL       int64   `json:"ttl"`       // seconds, as granted
	Remaining int64   `json:"remaining"` // seconds left, rounded up
	Name      string  `json:"name"`
}

// LeaseInfo answers GET /v1/leases/{id}; Keys only with ?keys=true (then
// [] when the lease holds none).
type LeaseInfo struct {
	LeaseStatus
	Keys []string `json:"keys,omitzero"`
}

// LeaseList answers GET /v1/leases, in ascending ID order.
type LeaseList struct {
	Leases []LeaseStatus `json:"leases"`
	More   bool          `json:"more"`
}

// KeepAliveRequest is the body of POST /v1/leases/keepalive.
type KeepAliveRequest struct {
	IDs []LeaseID `json:"ids"`
}

// Renewal reports one renewed lease.
type Renewal struct {
	ID        LeaseID `json:"id"`
	TTL       int64   `json:"ttl"`       // seconds, as granted
	Remaining int64   `json:"remaining"` // seconds left after the renewal, rounded up
}

// KeepAliveResponse answers POST /v1/leases/keepalive: the renewed leases
// in request order, and the IDs that were not found.
type KeepAliveResponse struct {
	Leases   []Renewal `json:"leases"`
	NotFound []LeaseID `json:"not_found"`
}
