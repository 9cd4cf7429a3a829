package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/rosterhq/roster/api"
)

// GrantResponse is the answer to Grant: the ID, TTL in seconds and name.
type GrantResponse = api.GrantResponse

// RevokeResponse is the answer to Revoke.
type RevokeResponse struct {
	Revision int64 // the store revision after the lease's keys were deleted
}

// LeaseStatus describes one lease (Leases, TimeToLive): its TTL as
// granted and the seconds left, rounded up.
type LeaseStatus = api.LeaseStatus

// TimeToLiveResponse is the answer to TimeToLive.
type TimeToLiveResponse struct {
	LeaseStatus
	Keys []string // with WithKeys: the keys attached to the lease
}

// LeasesResponse is the answer to Leases.
type LeasesResponse struct {
	Leases []LeaseStatus // ascending ID order
	More   bool          // stopped at WithLimit with leases left
}

// KeepAliveResponse reports one renewal of a lease: its TTL as granted and
// the seconds left after the renewal, rounded up.
type KeepAliveResponse = api.Renewal

func leasePath(id LeaseID) string { return "/v1/leases/" + id.String() }

// The TTL range of a lease, in seconds (API.md "Leases").
const (
	minTTL = 2
	maxTTL = 2_592_000
)

// checkTTL refuses a TTL the contract never grants, before anything is
// sent: with the registry unreachable the caller learns of the mistake at
// once, not as ErrNoLeader after RequestTimeout.
func checkTTL(ttl int64) error {
	if ttl < minTTL || ttl > maxTTL {
		return fmt.Errorf("%w: ttl %d out of range %d..%d seconds", ErrInvalidArgument, ttl, minTTL, maxTTL)
	}
	return nil
}

// checkLeaseID refuses what can never be a lease ID, before anything is
// sent.
func checkLeaseID(id LeaseID) error {
	if id <= 0 {
		return fmt.Errorf("%w: lease id %d is not positive", ErrInvalidArgument, id)
	}
	return nil
}

// Grant creates a lease of ttl seconds (2 to 2,592,000). Options: WithName,
// WithID. Keys put WithLease(resp.ID) are deleted when the lease expires
// or is revoked; keep it alive with KeepAlive.
func (c *Client) Grant(ctx context.Context, ttl int64, opts ...OpOption) (*GrantResponse, error) {
	if err := checkTTL(ttl); err != nil {
		return nil, err
	}
	o := buildOp(opts)
	if o.leaseID < 0 {
		return nil, checkLeaseID(o.leaseID)
	}
	req := api.GrantRequest{TTL: ttl, Name: o.name, ID: o.leaseID}
	res, err := c.do(ctx, &call{method: http.MethodPost, path: "/v1/leases", json: req,
		class: mutating})
	if err != nil {
		return nil, err
	}
	var w GrantResponse
	if err := res.decode(&w); err != nil {
		return nil, err
	}
	return &w, nil
}

// Revoke deletes a lease and every key attached to it, at once: watchers
// see the keys go without waiting for the TTL. An unknown lease fails with
// ErrLeaseNotFound.
func (c *Client) Revoke(ctx context.Context, id LeaseID) (*RevokeResponse, error) {
	if err := checkLeaseID(id); err != nil {
		return nil, err
	}
	res, err := c.do(ctx, &call{method: http.MethodDelete, path: leasePath(id), class: mutating})
	if err != nil {
		return nil, err
	}
	var w api.RevisionResponse
	if err := res.decode(&w); err != nil {
		return nil, err
	}
	return &RevokeResponse{Revision: w.Revision}, nil
}

// TimeToLive reads a lease's TTL and remaining time; WithKeys also lists
// its keys. An unknown lease fails with ErrLeaseNotFound.
func (c *Client) TimeToLive(ctx context.Context, id LeaseID, opts ...OpOption) (*TimeToLiveResponse, error) {
	if err := checkLeaseID(id); err != nil {
		return nil, err
	}
	o := buildOp(opts)
	q := url.Values{}
	if o.keys {
		q.Set("keys", "true")
	}
	if o.stale {
		q.Set("stale", "true")
	}
	res, err := c.do(ctx, &call{method: http.MethodGet, path: leasePath(id), query: q, class: idempotent})
	if err != nil {
		return nil, err
	}
	var w api.LeaseInfo
	if err := res.decode(&w); err != nil {
		return nil, err
	}
	out := &TimeToLiveResponse{LeaseStatus: w.LeaseStatus, Keys: w.Keys}
	if o.keys && out.Keys == nil {
		out.Keys = []string{}
	}
	return out, nil
}

// Leases lists the leases in ascending ID order. Options: WithLimit, and
// WithAfter(lastID.String()) to continue after the previous page.
func (c *Client) Leases(ctx context.Context, opts ...OpOption) (*LeasesResponse, error) {
	o := buildOp(opts)
	q := url.Values{}
	if o.limit > 0 {
		q.Set("limit", strconv.FormatInt(o.limit, 10))
	}
	if o.after != "" {
		q.Set("after", o.after)
	}
	if o.stale {
		q.Set("stale", "true")
	}
	res, err := c.do(ctx, &call{method: http.MethodGet, path: "/v1/leases", query: q, class: idempotent})
	if err != nil {
		return nil, err
	}
	var w api.LeaseList
	if err := res.decode(&w); err != nil {
		return nil, err
	}
	if w.Leases == nil {
		w.Leases = []LeaseStatus{}
	}
	return &LeasesResponse{Leases: w.Leases, More: w.More}, nil
}

// KeepAliveOnce renews a lease once. An unknown or expired lease fails with
// ErrLeaseNotFound. Renewing is idempotent, so it is retried on other
// members like a read. To keep a lease alive, use KeepAlive, which batches
// the renewals of all leases of the client.
func (c *Client) KeepAliveOnce(ctx context.Context, id LeaseID) (*KeepAliveResponse, error) {
	if err := checkLeaseID(id); err != nil {
		return nil, err
	}
	// Bounded per member like a read, so that a hung member does not
	// hold the renewal until its lease may be gone.
	res, err := c.do(ctx, &call{method: http.MethodPost, path: leasePath(id) + "/keepalive", class: idempotent,
		attemptTimeout: c.answerTimeout})
	if err != nil {
		return nil, err
	}
	var w KeepAliveResponse
	if err := res.decode(&w); err != nil {
		return nil, err
	}
	return &w, nil
}
