package client

import (
	"fmt"
	"strconv"

	"github.com/rosterhq/roster/api"
)

// LeaseID identifies a lease: a 64-bit snowflake ID, written on the wire
// as a decimal string so that JavaScript clients keep every digit.
type LeaseID = api.LeaseID

// NoLease is the zero LeaseID: no lease.
const NoLease LeaseID = 0

// ParseLeaseID parses the decimal form of a lease ID.
func ParseLeaseID(s string) (LeaseID, error) {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("%w: lease id %q is not a positive decimal integer", ErrInvalidArgument, s)
	}
	return LeaseID(v), nil
}

// KV is a key with its value and metadata.
type KV struct {
	Key   string
	Value []byte // nil with WithKeysOnly
	// CreateRevision is the revision that created the key; ModRevision the
	// one that last changed it (compare it in WithCAS). Version counts the
	// puts since the key was created.
	CreateRevision int64
	ModRevision    int64
	Version        int64
	// Lease is the lease the key is attached to; NoLease when none.
	Lease LeaseID
}

// kvFrom decodes a kv of the wire.
func kvFrom(j *api.KV) (KV, error) {
	kv := KV{
		Key:            j.Key,
		CreateRevision: j.CreateRevision,
		ModRevision:    j.ModRevision,
		Version:        j.Version,
		Lease:          j.Lease,
	}
	v, err := j.Bytes()
	if err != nil {
		return KV{}, fmt.Errorf("roster: %w", err)
	}
	kv.Value = v
	return kv, nil
}

// kvPtr decodes an optional kv.
func kvPtr(j *api.KV) (*KV, error) {
	if j == nil {
		return nil, nil
	}
	kv, err := kvFrom(j)
	if err != nil {
		return nil, err
	}
	return &kv, nil
}
