package api

import (
	"encoding/base64"
	"fmt"
	"unicode/utf8"
)

// HeaderRevision is the header every KV and watch answer carries: the
// store revision the answer reflects.
const HeaderRevision = "X-Roster-Revision"

// KV is a key with its value and metadata. The value is in Value when it
// is valid UTF-8, else in ValueBase64; in neither with keys_only and in a
// delete event. Lease is omitted when the key has none.
type KV struct {
	Key            string  `json:"key"`
	Value          *string `json:"value,omitempty"`
	ValueBase64    *string `json:"value_base64,omitempty"`
	CreateRevision int64   `json:"create_revision"`
	ModRevision    int64   `json:"mod_revision"`
	Version        int64   `json:"version"`
	Lease          LeaseID `json:"lease,omitzero"`
}

// SetValue stores v in Value when it is valid UTF-8, else in ValueBase64.
func (k *KV) SetValue(v []byte) {
	k.Value, k.ValueBase64 = nil, nil
	if utf8.Valid(v) {
		s := string(v)
		k.Value = &s
		return
	}
	s := base64.StdEncoding.EncodeToString(v)
	k.ValueBase64 = &s
}

// Bytes is the value, decoded from whichever field holds it; nil when
// neither does.
func (k *KV) Bytes() ([]byte, error) {
	switch {
	case k.ValueBase64 != nil:
		v, err := base64.StdEncoding.DecodeString(*k.ValueBase64)
		if err != nil {
			return nil, fmt.Errorf("key %q: bad value_base64: %w", k.Key, err)
		}
		return v, nil
	case k.Value != nil:
		return []byte(*k.Value), nil
	}
	return nil, nil
}

// PutResponse answers PUT /v1/kv/{key}; Prev with ?prev=true when the key
// existed.
type PutResponse struct {
	Revision int64 `json:"revision"`
	Prev     *KV   `json:"prev,omitempty"`
}

// RangeResponse answers GET /v1/kv/{prefix}?prefix=true: kvs sorted by key.
type RangeResponse struct {
	Revision int64 `json:"revision"`
	KVs      []KV  `json:"kvs"`
	More     bool  `json:"more"`
}

// CountResponse answers a GET /v1/kv with ?count_only=true.
type CountResponse struct {
	Revision int64 `json:"revision"`
	Count    int64 `json:"count"`
}

// DeleteResponse answers DELETE /v1/kv/{key}: keys deleted, 0 when none.
type DeleteResponse struct {
	Revision int64 `json:"revision"`
	Deleted  int64 `json:"deleted"`
}

// IncrRequest is the body of POST /v1/kv/{key}/incr; By absent means 1.
type IncrRequest struct {
	By *int64 `json:"by,omitempty"`
}

// IncrResponse answers POST /v1/kv/{key}/incr with the new value.
type IncrResponse struct {
	Revision int64 `json:"revision"`
	Value    int64 `json:"value"`
}

// RevisionResponse answers a write that reports only the store revision
// after it (DELETE /v1/leases/{id}).
type RevisionResponse struct {
	Revision int64 `json:"revision"`
}
