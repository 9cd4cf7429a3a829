package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/rosterhq/roster/api"
)

// PutResponse is the answer to Put, CompareAndSwap and Create.
type PutResponse struct {
	Revision int64 // the revision of the write
	PrevKV   *KV   // the previous kv, with WithPrevKV, when the key existed
}

// GetResponse is the answer to Get.
type GetResponse struct {
	// Revision is the store revision the answer reflects: watch WithRev(it)
	// to follow on without a gap.
	Revision int64
	KVs      []KV  // sorted by key; one kv for a single-key Get
	More     bool  // a prefix Get stopped at its WithLimit with keys left
	Count    int64 // WithCountOnly: the number of keys (KVs is empty)
}

// DeleteResponse is the answer to Delete.
type DeleteResponse struct {
	Revision int64 // the store revision after the delete
	Deleted  int64 // keys deleted; 0 when nothing matched
}

// IncrResponse is the answer to Incr.
type IncrResponse struct {
	Revision int64
	Value    int64 // the value after the increment
}

// checkKey refuses what can never be a key before anything is sent; the
// server checks the rest (length, NUL).
func checkKey(key string) error {
	if !strings.HasPrefix(key, "/") {
		return fmt.Errorf("%w: key %q must begin with /", ErrInvalidArgument, key)
	}
	return nil
}

func kvPath(key string) string { return "/v1/kv" + key }

// Put stores value under key. Options: WithLease, WithPrevKV, WithCAS,
// WithCreateOnly. A put is not idempotent under CAS, so it is retried on
// another member only when it provably never arrived (see the package
// documentation).
func (c *Client) Put(ctx context.Context, key string, value []byte, opts ...OpOption) (*PutResponse, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	o := buildOp(opts)
	if o.lease < 0 {
		return nil, checkLeaseID(o.lease)
	}
	q := url.Values{}
	if o.lease != NoLease {
		q.Set("lease", o.lease.String())
	}
	if o.hasCAS {
		q.Set("cas", strconv.FormatInt(o.cas, 10))
	}
	if o.prevKV {
		q.Set("prev", "true")
	}
	if value == nil {
		value = []byte{} // an empty value is a value: send a body of length 0
	}
	res, err := c.do(ctx, &call{method: http.MethodPut, path: kvPath(key), query: q, body: value,
		contentType: "application/octet-stream", class: mutating})
	if err != nil {
		return nil, markCreateOnly(err, o)
	}
	var w api.PutResponse
	if err := res.decode(&w); err != nil {
		return nil, err
	}
	prev, err := kvPtr(w.Prev)
	if err != nil {
		return nil, err
	}
	return &PutResponse{Revision: w.Revision, PrevKV: prev}, nil
}

// markCreateOnly makes the CASError of a create-only write also match
// ErrAlreadyExists: with cas=0 a mismatch can only mean the key exists.
func markCreateOnly(err error, o op) error {
	var ce *CASError
	if errors.As(err, &ce) && o.hasCAS && o.cas == 0 {
		ce.createOnly = true
	}
	return err
}

// CompareAndSwap stores value under key only if the key's mod revision is
// modRev (0: only if absent). A mismatch fails with a *CASError carrying
// the current mod revision.
func (c *Client) CompareAndSwap(ctx context.Context, key string, value []byte, modRev int64, opts ...OpOption) (*PutResponse, error) {
	return c.Put(ctx, key, value, append(opts, WithCAS(modRev))...)
}

// Create stores value under key only if the key does not exist. An
// existing key fails with a *CASError that matches ErrAlreadyExists.
func (c *Client) Create(ctx context.Context, key string, value []byte, opts ...OpOption) (*PutResponse, error) {
	return c.Put(ctx, key, value, append(opts, WithCreateOnly())...)
}

// Get reads a key, or with WithPrefix every key under a prefix. Options:
// WithPrefix, WithLimit, WithAfter, WithKeysOnly, WithCountOnly,
// WithStale. A single-key Get of an absent key fails with ErrKeyNotFound
// (with WithCountOnly it answers Count 0 instead); a prefix Get that
// matches nothing answers an empty list.
func (c *Client) Get(ctx context.Context, key string, opts ...OpOption) (*GetResponse, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	o := buildOp(opts)
	q := url.Values{}
	if o.prefix {
		q.Set("prefix", "true")
		if o.limit > 0 {
			q.Set("limit", strconv.FormatInt(o.limit, 10))
		}
		if o.after != "" {
			q.Set("after", o.after)
		}
	}
	if o.keysOnly {
		q.Set("keys_only", "true")
	}
	if o.countOnly {
		q.Set("count_only", "true")
	}
	if o.stale {
		q.Set("stale", "true")
	}
	res, err := c.do(ctx, &call{method: http.MethodGet, path: kvPath(key), query: q, class: idempotent})
	if err != nil {
		return nil, err
	}
	out := &GetResponse{Revision: res.revision(), KVs: []KV{}}
	switch {
	case o.countOnly:
		var w api.CountResponse
		if err := res.decode(&w); err != nil {
			return nil, err
		}
		out.Revision, out.Count = max(out.Revision, w.Revision), w.Count
	case o.prefix:
		var w api.RangeResponse
		if err := res.decode(&w); err != nil {
			return nil, err
		}
		out.Revision, out.More = max(out.Revision, w.Revision), w.More
		for i := range w.KVs {
			kv, err := kvFrom(&w.KVs[i])
			if err != nil {
				return nil, err
			}
			out.KVs = append(out.KVs, kv)
		}
		out.Count = int64(len(out.KVs))
	default:
		var w api.KV
		if err := res.decode(&w); err != nil {
			return nil, err
		}
		kv, err := kvFrom(&w)
		if err != nil {
			return nil, err
		}
		out.KVs, out.Count = []KV{kv}, 1
	}
	return out, nil
}

// Delete deletes a key, or with WithPrefix every key under a prefix.
// Options: WithPrefix, WithCAS (not with WithPrefix). Deleting an absent
// key is not an error: DeleteResponse.Deleted is 0.
func (c *Client) Delete(ctx context.Context, key string, opts ...OpOption) (*DeleteResponse, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	o := buildOp(opts)
	q := url.Values{}
	if o.prefix {
		q.Set("prefix", "true")
	}
	if o.hasCAS {
		q.Set("cas", strconv.FormatInt(o.cas, 10))
	}
	res, err := c.do(ctx, &call{method: http.MethodDelete, path: kvPath(key), query: q, class: mutating})
	if err != nil {
		return nil, err
	}
	var w api.DeleteResponse
	if err := res.decode(&w); err != nil {
		return nil, err
	}
	return &DeleteResponse{Revision: w.Revision, Deleted: w.Deleted}, nil
}

// Incr adds by to the decimal integer stored under key (an absent key
// counts as 0) and returns the new value. It is not idempotent: a call
// that fails with an unknown outcome (ErrTimeout, a cut connection) may or
// may not have counted.
func (c *Client) Incr(ctx context.Context, key string, by int64) (*IncrResponse, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	res, err := c.do(ctx, &call{method: http.MethodPost, path: kvPath(key) + "/incr",
		json: api.IncrRequest{By: &by}, class: mutating})
	if err != nil {
		return nil, err
	}
	var w api.IncrResponse
	if err := res.decode(&w); err != nil {
		return nil, err
	}
	return &IncrResponse{Revision: w.Revision, Value: w.Value}, nil
}
