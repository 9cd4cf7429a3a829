package client

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
)

// LeaseID identifies a lease: a 64-bit snowflake ID, written on the wire
// as a decimal string so that JavaScript clients keep every digit.
type LeaseID int64

// NoLease is the zero LeaseID: no lease.
const NoLease LeaseID = 0

// String is the ID's decimal form, as the API writes it.
func (id LeaseID) String() string { return strconv.FormatInt(int64(id), 10) }

// MarshalJSON writes the ID as a decimal string.
func (id LeaseID) MarshalJSON() ([]byte, error) {
	return []byte(`"` + id.String() + `"`), nil
}

// UnmarshalJSON reads a decimal string (the contract's form) or a number.
func (id *LeaseID) UnmarshalJSON(b []byte) error {
	s := string(b)
	if s == "null" {
		*id = 0
		return nil
	}
	if len(s) >= 2 && s[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
	}
	if s == "" {
		*id = 0
		return nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("roster: lease id %q: %w", s, err)
	}
	*id = LeaseID(v)
	return nil
}

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

// kvJSON is a kv on the wire: the value as text when it is valid UTF-8,
// else as base64.
type kvJSON struct {
	Key            string  `json:"key"`
	Value          *string `json:"value"`
	ValueBase64    *string `json:"value_base64"`
	CreateRevision int64   `json:"create_revision"`
	ModRevision    int64   `json:"mod_revision"`
	Version        int64   `json:"version"`
	Lease          LeaseID `json:"lease"`
}

func (j *kvJSON) kv() (KV, error) {
	kv := KV{
		Key:            j.Key,
		CreateRevision: j.CreateRevision,
		ModRevision:    j.ModRevision,
		Version:        j.Version,
		Lease:          j.Lease,
	}
	switch {
	case j.ValueBase64 != nil:
		v, err := base64.StdEncoding.DecodeString(*j.ValueBase64)
		if err != nil {
			return KV{}, fmt.Errorf("roster: key %q: bad value_base64: %w", j.Key, err)
		}
		kv.Value = v
	case j.Value != nil:
		kv.Value = []byte(*j.Value)
	}
	return kv, nil
}

// kvPtr decodes an optional kv.
func kvPtr(j *kvJSON) (*KV, error) {
	if j == nil {
		return nil, nil
	}
	kv, err := j.kv()
	if err != nil {
		return nil, err
	}
	return &kv, nil
}
