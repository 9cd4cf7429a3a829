package fsm

import (
	"errors"
	"fmt"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"
)

// A Result travels from the leader to the follower that forwarded the
// command, so that the follower answers exactly what the leader's state
// machine returned. The encoding is the command codec's: a version byte,
// then protobuf wire fields; decoding is as strict (an unknown field or
// error code is an error, never skipped).
const resultCodecVersion byte = 1

// ErrDecodeResult reports a result this member cannot decode: version skew
// or corruption.
var ErrDecodeResult = errors.New("fsm: cannot decode result")

// Error codes of Result.Err on the wire. Never reuse or renumber one.
const (
	errCodeNone          = 0
	errCodeInvalid       = 1
	errCodeLeaseNotFound = 2
	errCodeLeaseExists   = 3
	errCodeCAS           = 4
	errCodeKeyNotFound   = 5
	errCodeFailed        = 6
	errCodeOther         = 7
	errCodeRoleNotFound  = 8
	errCodeTokenNotFound = 9
	errCodeTokenExists   = 10
)

// Result fields.
const (
	resErrCode  = 1
	resErrMsg   = 2
	resCASCur   = 3
	resRevision = 4
	resPrev     = 5
	resDeleted  = 6
	resValue    = 7
	resLease    = 8
	resRenewed  = 9
	resNotFound = 10
	resExpired  = 11
	resMore     = 12
	resOps      = 13
)

// maxResultDepth bounds nesting: a txn's operations have results, which
// have none of their own.
const maxResultDepth = 2

// wireError is an error decoded from a result: its message as the leader
// wrote it, and the sentinel it wraps, so errors.Is works as on the leader.
type wireError struct {
	sentinel error
	msg      string
}

func (e *wireError) Error() string { return e.msg }
func (e *wireError) Unwrap() error { return e.sentinel }

// ErrRemote is the sentinel of a result error that matched none of this
// package's sentinels on the leader (errCodeOther): front ends answer it as
// an internal error.
var ErrRemote = errors.New("error from the leader")

// EncodeResult serialises a Result for a forwarding member.
func EncodeResult(r Result) []byte {
	return AppendResult(make([]byte, 0, 32), r)
}

// AppendResult appends the encoding of r to b.
func AppendResult(b []byte, r Result) []byte {
	return appendResultFields(append(b, resultCodecVersion), r)
}

func appendResultFields(b []byte, r Result) []byte {
	if r.Err != nil {
		code, cur := errCode(r.Err)
		b = putVarint(b, resErrCode, code)
		b = putString(b, resErrMsg, r.Err.Error())
		if code == errCodeCAS {
			// Present even when 0 (the key is absent): the field is the
			// revision the compare saw, and 0 is a real answer.
			b = protowire.AppendTag(b, resCASCur, protowire.VarintType)
			b = protowire.AppendVarint(b, uint64(cur))
		}
	}
	b = putVarint(b, resRevision, r.Revision)
	if r.Prev != nil {
		b = protowire.AppendTag(b, resPrev, protowire.BytesType)
		b = protowire.AppendBytes(b, appendWireKV(nil, r.Prev))
	}
	b = putVarint(b, resDeleted, r.Deleted)
	b = putVarint(b, resValue, r.Value)
	if r.Lease != (LeaseStatus{}) {
		b = protowire.AppendTag(b, resLease, protowire.BytesType)
		b = protowire.AppendBytes(b, appendLeaseStatus(nil, r.Lease))
	}
	for _, st := range r.Renewed {
		b = protowire.AppendTag(b, resRenewed, protowire.BytesType)
		b = protowire.AppendBytes(b, appendLeaseStatus(nil, st))
	}
	for _, id := range r.NotFound {
		b = protowire.AppendTag(b, resNotFound, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(id))
	}
	b = putVarint(b, resExpired, r.Expired)
	b = putBool(b, resMore, r.More)
	for _, op := range r.Ops {
		b = protowire.AppendTag(b, resOps, protowire.BytesType)
		b = protowire.AppendBytes(b, appendResultFields(nil, op))
	}
	return b
}

func errCode(err error) (code int64, casCurrent int64) {
	var cas *CASError
	switch {
	case errors.As(err, &cas):
		return errCodeCAS, cas.Current
	case errors.Is(err, ErrCASFailed):
		return errCodeCAS, 0
	case errors.Is(err, ErrInvalidArgument):
		return errCodeInvalid, 0
	case errors.Is(err, ErrLeaseNotFound):
		return errCodeLeaseNotFound, 0
	case errors.Is(err, ErrLeaseExists):
		return errCodeLeaseExists, 0
	case errors.Is(err, ErrKeyNotFound):
		return errCodeKeyNotFound, 0
	case errors.Is(err, ErrFailed):
		return errCodeFailed, 0
	case errors.Is(err, ErrRoleNotFound):
		return errCodeRoleNotFound, 0
	case errors.Is(err, ErrTokenNotFound):
		return errCodeTokenNotFound, 0
	case errors.Is(err, ErrTokenExists):
		return errCodeTokenExists, 0
	}
	return errCodeOther, 0
}

// DecodeResult parses what EncodeResult produced.
func DecodeResult(b []byte) (Result, error) {
	if len(b) < 1 {
		return Result{}, fmt.Errorf("%w: empty", ErrDecodeResult)
	}
	if b[0] != resultCodecVersion {
		return Result{}, fmt.Errorf("%w: format version %d (this build knows %d)", ErrDecodeResult, b[0], resultCodecVersion)
	}
	r, err := decodeResultFields(b[1:], 0)
	if err != nil {
		return Result{}, fmt.Errorf("%w: %v", ErrDecodeResult, err)
	}
	return r, nil
}

func decodeResultFields(b []byte, depth int) (Result, error) {
	var r Result
	var code, cur int64
	var msg string
	hasCode, hasCur := false, false
	err := fields(b, func(n protowire.Number, f field) error {
		switch n {
		case resErrCode:
			hasCode = true
			return f.varint(&code)
		case resErrMsg:
			return f.str(&msg)
		case resCASCur:
			hasCur = true
			return f.varint(&cur)
		case resRevision:
			return f.varint(&r.Revision)
		case resPrev:
			kv, err := decodeWireKV(f)
			r.Prev = kv
			return err
		case resDeleted:
			return f.varint(&r.Deleted)
		case resValue:
			return f.varint(&r.Value)
		case resLease:
			st, err := decodeLeaseStatus(f)
			if err == nil && st == (LeaseStatus{}) {
				err = errors.New("empty lease")
			}
			r.Lease = st
			return err
		case resRenewed:
			st, err := decodeLeaseStatus(f)
			r.Renewed = append(r.Renewed, st)
			return err
		case resNotFound:
			var id int64
			err := f.varint(&id)
			r.NotFound = append(r.NotFound, id)
			return err
		case resExpired:
			return f.varint(&r.Expired)
		case resMore:
			return f.boolean(&r.More)
		case resOps:
			if f.typ != protowire.BytesType {
				return errors.New("wire type mismatch")
			}
			if depth+1 >= maxResultDepth {
				return errors.New("results nested too deep")
			}
			op, err := decodeResultFields(f.buf, depth+1)
			r.Ops = append(r.Ops, op)
			return err
		}
		return errUnknownField
	})
	if err != nil {
		return Result{}, err
	}
	if hasCur && code != errCodeCAS {
		return Result{}, errors.New("a CAS revision without a CAS error")
	}
	if !hasCode {
		if msg != "" {
			return Result{}, errors.New("an error message without an error code")
		}
		return r, nil
	}
	var sentinel error
	switch code {
	case errCodeInvalid:
		sentinel = ErrInvalidArgument
		if strings.HasPrefix(msg, ErrOverflow.Error()) {
			sentinel = ErrOverflow
		}
	case errCodeLeaseNotFound:
		sentinel = ErrLeaseNotFound
	case errCodeLeaseExists:
		sentinel = ErrLeaseExists
	case errCodeCAS:
		if !hasCur {
			return Result{}, errors.New("a CAS error without its revision")
		}
		sentinel = &CASError{Current: cur}
	case errCodeKeyNotFound:
		sentinel = ErrKeyNotFound
	case errCodeFailed:
		sentinel = ErrFailed
	case errCodeRoleNotFound:
		sentinel = ErrRoleNotFound
	case errCodeTokenNotFound:
		sentinel = ErrTokenNotFound
	case errCodeTokenExists:
		sentinel = ErrTokenExists
	case errCodeOther:
		sentinel = ErrRemote
	default:
		return Result{}, fmt.Errorf("unknown error code %d", code)
	}
	if msg == sentinel.Error() {
		r.Err = sentinel
	} else {
		r.Err = &wireError{sentinel: sentinel, msg: msg}
	}
	return r, nil
}

// KV fields.
const (
	kvKey = 1 + iota
	kvValue
	kvCreate
	kvMod
	kvVersion
	kvLease
)

func appendWireKV(b []byte, kv *KV) []byte {
	b = putString(b, kvKey, kv.Key)
	b = putBytes(b, kvValue, kv.Value)
	b = putVarint(b, kvCreate, kv.CreateRevision)
	b = putVarint(b, kvMod, kv.ModRevision)
	b = putVarint(b, kvVersion, kv.Version)
	b = putVarint(b, kvLease, kv.Lease)
	return b
}

func decodeWireKV(f field) (*KV, error) {
	if f.typ != protowire.BytesType {
		return nil, errors.New("wire type mismatch")
	}
	kv := &KV{}
	err := fields(f.buf, func(n protowire.Number, f field) error {
		switch n {
		case kvKey:
			return f.str(&kv.Key)
		case kvValue:
			return f.bytes(&kv.Value)
		case kvCreate:
			return f.varint(&kv.CreateRevision)
		case kvMod:
			return f.varint(&kv.ModRevision)
		case kvVersion:
			return f.varint(&kv.Version)
		case kvLease:
			return f.varint(&kv.Lease)
		}
		return errUnknownField
	})
	if err != nil {
		return nil, fmt.Errorf("kv: %w", err)
	}
	return kv, nil
}

// LeaseStatus fields.
const (
	lsID = 1 + iota
	lsTTL
	lsRemaining
	lsName
)

func appendLeaseStatus(b []byte, st LeaseStatus) []byte {
	b = putVarint(b, lsID, st.ID)
	b = putVarint(b, lsTTL, st.TTL)
	b = putVarint(b, lsRemaining, st.Remaining)
	b = putString(b, lsName, st.Name)
	return b
}

func decodeLeaseStatus(f field) (LeaseStatus, error) {
	var st LeaseStatus
	if f.typ != protowire.BytesType {
		return st, errors.New("wire type mismatch")
	}
	err := fields(f.buf, func(n protowire.Number, f field) error {
		switch n {
		case lsID:
			return f.varint(&st.ID)
		case lsTTL:
			return f.varint(&st.TTL)
		case lsRemaining:
			return f.varint(&st.Remaining)
		case lsName:
			return f.str(&st.Name)
		}
		return errUnknownField
	})
	if err != nil {
		return LeaseStatus{}, fmt.Errorf("lease: %w", err)
	}
	return st, nil
}
