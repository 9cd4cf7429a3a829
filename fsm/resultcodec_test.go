package fsm_test

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"testing"

	"github.com/rosterhq/roster/fsm"
)

var resultCases = []fsm.Result{
	{},
	{Revision: 7},
	{Revision: math.MaxInt64, Deleted: -1, Value: math.MinInt64, Expired: 3, More: true},
	{Revision: 9, Prev: &fsm.KV{Key: "/a", Value: []byte{0, 0xff, 'x'}, CreateRevision: 1, ModRevision: 8, Version: 3, Lease: 77}},
	{Revision: 9, Prev: &fsm.KV{}},
	{Lease: fsm.LeaseStatus{ID: 1728394857362391040, TTL: 10, Remaining: 10, Name: "/esq/node-1"}},
	{Renewed: []fsm.LeaseStatus{{ID: 1, TTL: 5, Remaining: 5}, {}, {ID: 3, Name: "ü"}}, NotFound: []int64{4, -5, math.MaxInt64}},
	{Err: fsm.ErrLeaseNotFound, Revision: 3},
	{Err: fmt.Errorf("%w: %d", fsm.ErrLeaseNotFound, 12)},
	{Err: fsm.ErrLeaseExists},
	{Err: &fsm.CASError{Current: 0}, Revision: 2},
	{Err: &fsm.CASError{Current: 41}, Revision: 44},
	{Err: fsm.ErrCASFailed},
	{Err: fmt.Errorf("%w: the value at %q is not a decimal integer", fsm.ErrInvalidArgument, "/n")},
	{Err: fsm.ErrKeyNotFound},
	{Err: fsm.ErrOverflow},
	{Err: fmt.Errorf("%w: incrementing %d by %d", fsm.ErrOverflow, int64(math.MaxInt64), 1)},
	// An older leader's overflow: an invalid argument, not ErrOverflow.
	{Err: fmt.Errorf("%w: incrementing 9223372036854775807 by 1 overflows int64", fsm.ErrInvalidArgument)},
	{Err: fmt.Errorf("%w: disk gone", fsm.ErrFailed)},
	{Err: fmt.Errorf("%w: %q", fsm.ErrRoleNotFound, "ops")},
	{Err: fsm.ErrTokenNotFound},
	{Err: fmt.Errorf("%w: tokens exist already", fsm.ErrTokenExists)},
	{Err: errors.New("something else")},
	{Err: fmt.Errorf("txn operation %d: %w", 2, &fsm.CASError{Current: 7}), Revision: 9},
	{Revision: 12, Ops: []fsm.Result{{Revision: 11, Lease: fsm.LeaseStatus{ID: 5, TTL: 10, Remaining: 10}}, {Revision: 12, Prev: &fsm.KV{Key: "/k"}}, {}}},
	// EXEC's apply-time operations: a Txn applied whose increments failed
	// alone (their own errors, Redis's texts kept), a put whose condition
	// did not hold (its Prev), an increment that applied.
	{Revision: 20, Ops: []fsm.Result{
		{Revision: 18, Err: fmt.Errorf("%w: the value at %q is not a decimal integer", fsm.ErrInvalidArgument, "/s")},
		{Revision: 18, Err: fmt.Errorf("%w: incrementing %d by %d", fsm.ErrOverflow, int64(math.MaxInt64), 1)},
		{Revision: 18, Prev: &fsm.KV{Key: "/nx", Value: []byte("held"), CreateRevision: 2, ModRevision: 3, Version: 2}},
		{Revision: 19, Value: 42, Prev: &fsm.KV{Key: "/n", Value: []byte("41"), CreateRevision: 4, ModRevision: 17, Version: 9, Lease: 3}},
		{Revision: 20},
	}},
}

// sentinels are the errors a result keeps across the wire (errors.Is).
var sentinels = []error{fsm.ErrLeaseNotFound, fsm.ErrLeaseExists, fsm.ErrCASFailed, fsm.ErrInvalidArgument, fsm.ErrKeyNotFound, fsm.ErrFailed,
	fsm.ErrOverflow, fsm.ErrRoleNotFound, fsm.ErrTokenNotFound, fsm.ErrTokenExists}

func TestResultRoundTrip(t *testing.T) {
	for i, r := range resultCases {
		b := fsm.EncodeResult(r)
		got, err := fsm.DecodeResult(b)
		if err != nil {
			t.Fatalf("case %d: decode: %v (bytes %x)", i, err, b)
		}
		if r.Err == nil {
			if got.Err != nil {
				t.Fatalf("case %d: error %v appeared", i, got.Err)
			}
		} else {
			// A bare ErrCASFailed travels as a CAS error of revision 0,
			// which front ends answer the same way.
			bareCAS := r.Err == fsm.ErrCASFailed
			if got.Err == nil || !bareCAS && got.Err.Error() != r.Err.Error() {
				t.Fatalf("case %d: error %v, want %v", i, got.Err, r.Err)
			}
			for _, s := range sentinels {
				if errors.Is(got.Err, s) != errors.Is(r.Err, s) {
					t.Fatalf("case %d: errors.Is(%v, %v) changed", i, got.Err, s)
				}
			}
			var c1, c2 *fsm.CASError
			if errors.As(r.Err, &c1) != errors.As(got.Err, &c2) && !bareCAS || c1 != nil && c1.Current != c2.Current {
				t.Fatalf("case %d: CAS error %v became %v", i, r.Err, got.Err)
			}
			if c1 == nil && errors.Is(r.Err, fsm.ErrCASFailed) && (c2 == nil || c2.Current != 0) {
				t.Fatalf("case %d: bare ErrCASFailed became %#v", i, got.Err)
			}
			if errCode(r.Err) == "other" && !errors.Is(got.Err, fsm.ErrRemote) {
				t.Fatalf("case %d: unknown error %v did not become ErrRemote", i, got.Err)
			}
		}
		r.Err, got.Err = nil, nil
		// An operation's own error (an increment of EXEC failing alone)
		// keeps its text and sentinels.
		if len(got.Ops) == len(r.Ops) {
			r.Ops, got.Ops = slices.Clone(r.Ops), slices.Clone(got.Ops)
			for j := range r.Ops {
				want, have := r.Ops[j].Err, got.Ops[j].Err
				if (want == nil) != (have == nil) || want != nil && want.Error() != have.Error() {
					t.Fatalf("case %d op %d: error %v, want %v", i, j, have, want)
				}
				for _, s := range sentinels {
					if errors.Is(have, s) != errors.Is(want, s) {
						t.Fatalf("case %d op %d: errors.Is(%v, %v) changed", i, j, have, s)
					}
				}
				r.Ops[j].Err, got.Ops[j].Err = nil, nil
			}
		}
		if !reflect.DeepEqual(normalizeResult(r), normalizeResult(got)) {
			t.Fatalf("case %d: round trip\n  sent %#v\n  got  %#v", i, r, got)
		}
	}
}

func errCode(err error) string {
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return s.Error()
		}
	}
	return "other"
}

// normalizeResult maps what the encoding cannot tell apart (nil vs empty)
// to one form.
func normalizeResult(r fsm.Result) fsm.Result {
	if len(r.Renewed) == 0 {
		r.Renewed = nil
	}
	if len(r.NotFound) == 0 {
		r.NotFound = nil
	}
	if r.Prev != nil && len(r.Prev.Value) == 0 {
		p := *r.Prev
		p.Value = nil
		r.Prev = &p
	}
	if len(r.Ops) == 0 {
		r.Ops = nil
	}
	for i := range r.Ops {
		r.Ops[i] = normalizeResult(r.Ops[i])
	}
	return r
}

func TestDecodeResultRejects(t *testing.T) {
	for _, b := range [][]byte{
		nil,
		{2},
		{1, 0x08},                   // truncated error code
		{1, 0x08, 99},               // unknown error code
		{1, 0x08, 4},                // CAS error without its revision
		{1, 0x18, 1},                // CAS revision without a CAS error
		{1, 0x12, 1, 'x'},           // message without a code
		{1, 0xf8, 0x01, 1},          // unknown field 31
		{1, 0x2a, 2, 0x08, 1},       // prev kv with a varint where the key string goes
		{1, 0x42, 0},                // an empty lease
		{1, 0x60, 2},                // more=2 is not a bool
		{1, 0x20, 0xff, 0xff, 0xff}, // truncated varint
	} {
		if r, err := fsm.DecodeResult(b); !errors.Is(err, fsm.ErrDecodeResult) {
			t.Errorf("DecodeResult(%x) = %+v, %v; want ErrDecodeResult", b, r, err)
		}
	}
}

// FuzzDecodeResult checks DecodeResult never panics, fails only with
// ErrDecodeResult, and that what it accepts survives a round trip.
//
//	go test -run '^$' -fuzz=FuzzDecodeResult ./fsm/
func FuzzDecodeResult(f *testing.F) {
	for _, r := range resultCases {
		f.Add(fsm.EncodeResult(r))
	}
	f.Add([]byte{1, 0x08, 4, 0x18, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := fsm.DecodeResult(b)
		if err != nil {
			if !errors.Is(err, fsm.ErrDecodeResult) {
				t.Fatalf("DecodeResult(%x): error %v is not ErrDecodeResult", b, err)
			}
			return
		}
		enc := fsm.EncodeResult(r)
		r2, err := fsm.DecodeResult(enc)
		if err != nil {
			t.Fatalf("DecodeResult(EncodeResult(%#v)) = %v", r, err)
		}
		if (r.Err == nil) != (r2.Err == nil) || r.Err != nil && r.Err.Error() != r2.Err.Error() {
			t.Fatalf("round trip changed the error: %v then %v", r.Err, r2.Err)
		}
		r.Err, r2.Err = nil, nil
		if !reflect.DeepEqual(normalizeResult(r), normalizeResult(r2)) {
			t.Fatalf("round trip changed the result:\n first  %#v\n second %#v", r, r2)
		}
	})
}
