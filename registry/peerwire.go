package registry

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/rosterhq/roster/fsm"
	"google.golang.org/protobuf/encoding/protowire"
)

// Wire format of the forwarding channel.
//
// A connection opens with an 8-byte preamble from the dialer, peerPreamble,
// whose first byte tells the raft port's stream layer it is not raft; the
// listener answers with the same 8 bytes once it serves the channel, so a
// dialer that gets no answer (an older member, which closes the
// connection) knows nothing was sent. Then both sides send frames: a
// 4-byte big-endian length, then the body.
//
//	request:  kind (1 byte) | id (uvarint) | timeout ms (uvarint, 0: none) | payload
//	response: status (1 byte) | id (uvarint) | payload
//
// Responses carry the id of their request and may come in any order. A
// leader that closes the connection says first how many request frames it
// read (statusGoAway).
//
// A follower that wrote a request and then lost the connection never
// knows whether the leader read it, however the connection ended (a proxy
// between the members may have relayed it and closed a clean end): the
// outcome is unknown and the request is never retried.
const (
	peerMagic   byte = 0xF5
	peerVersion byte = 1
)

var peerPreamble = [8]byte{peerMagic, 'r', 'o', 's', 't', 'e', 'r', peerVersion}

// Request kinds. Never reuse or renumber one.
const (
	kindPropose      byte = 1 // payload: fsm.Encode(command); answer: fsm.EncodeResult
	kindReadIndex    byte = 2 // payload: none; answer: uvarint commit index
	kindAddMember    byte = 3 // payload: encodeJoin; answer: none
	kindRemoveMember byte = 4 // payload: member id; answer: none
	kindUpdateMember byte = 5 // payload: encodeJoin; answer: none
	kindBatch        byte = 6 // payload: encodeBatch; answer: encodeBatchResults
	kindMembership   byte = 7 // payload: member id; answer: one membership* byte (removal.go)
	// kindProposeAs and kindBatchAs are kindPropose and kindBatch made
	// for a token (caller.go); payload: applied index (uvarint) | token id
	// (uvarint length, bytes) | the payload of kindPropose / kindBatch.
	kindProposeAs byte = 8
	kindBatchAs   byte = 9
	// kindKeepAliveAs is a follower's keep-alive group naming the caller
	// of each request (kacaller.go); payload: encodeKeepAliveAs; answer:
	// encodeBatchResults, one per entry (a refusal or nothing), then the
	// renewal's.
	kindKeepAliveAs byte = 10
	// kindMemberAs is kindAddMember, kindRemoveMember or kindUpdateMember
	// made for a token; payload: as kindProposeAs, with the inner kind's
	// byte before its payload; answer: the inner kind's.
	kindMemberAs byte = 11
	// kindOpen is kindPropose, kindBatch, kindAddMember, kindRemoveMember
	// or kindUpdateMember made for no caller: the member's front end let
	// it in because its state had access control off (caller.go). A
	// leader whose state has it on refuses it. Payload: the inner kind's
	// byte, then its payload; answer: the inner kind's.
	kindOpen byte = 12
	// kindClusterID asks any member for its cluster ID (clustervouch.go);
	// payload: none; answer: applied index (uvarint) | the ID (16 bytes,
	// none while the member has none).
	kindClusterID byte = 13
)

// Response statuses.
const (
	statusOK  byte = 0
	statusErr byte = 1 // payload: error class (1 byte) | message
	// 2 was a receipt (frames read so far), dropped: it proved nothing.
	// statusGoAway (id 0; payload: uvarint count) is the leader's last
	// word before it closes the connection: it read and serves the first
	// count request frames and will read no other. Their answers still
	// follow; a request written after them was never read (a refusal).
	// An older follower takes it for a bad answer and drops the
	// connection, as it would have seen it closed.
	statusGoAway byte = 3
)

// Error classes: what the leader's error means for the request.
const (
	classRefused  byte = 1 // nothing was proposed: ErrNoLeader
	classTimeout  byte = 2 // may have been proposed: ErrTimeout
	classTooLarge byte = 3 // ErrTooLarge
	classState    byte = 4 // an fsm error; the message is fsm.EncodeResult(Result{Err})
	classOther    byte = 5 // anything else, answered as an internal error
	// classNotMember: a membership request about a member that is not one
	// (ErrNotMember), which HTTP answers 404.
	classNotMember byte = 6
	// classUnauthenticated: the write's token no longer exists in the
	// leader's state (caller.go); nothing was proposed.
	classUnauthenticated byte = 7
	// classPermissionDenied: the write's token may no longer make it in
	// the leader's state (caller.go); nothing was proposed.
	classPermissionDenied byte = 8
)

// maxPeerFrameSlack is the room a frame has beyond the keys and values of
// the largest txn (checkTxnBytes): the encoding's other fields, a
// keep-alive's IDs.
const maxPeerFrameSlack = 4 << 20

// peerError is an error answered over the channel, or the channel's own
// failure, classified as the contract needs it.
type peerError struct {
	class byte
	msg   string
}

func (e *peerError) Error() string { return e.msg }

// Is maps the class to the node's sentinels.
func (e *peerError) Is(target error) bool {
	switch e.class {
	case classRefused:
		return target == ErrNoLeader
	case classTimeout:
		return target == ErrTimeout
	case classTooLarge:
		return target == ErrTooLarge
	case classNotMember:
		return target == ErrNotMember
	case classUnauthenticated:
		return target == ErrUnauthenticated
	case classPermissionDenied:
		return target == ErrPermissionDenied
	}
	return false
}

// refusal is a peerError that promises nothing was proposed.
func refusal(format string, a ...any) error {
	return &peerError{class: classRefused, msg: "no leader: " + fmt.Sprintf(format, a...)}
}

func isRefusal(err error) bool {
	var pe *peerError
	return errors.As(err, &pe) && pe.class == classRefused
}

// unknownOutcome is a peerError for a request that may have reached the
// leader.
func unknownOutcome(format string, a ...any) error {
	return &peerError{class: classTimeout, msg: "timed out waiting for commit: " + fmt.Sprintf(format, a...)}
}

// encodeError is the leader's answer for err.
func encodeError(b []byte, err error) []byte {
	switch {
	case errors.Is(err, ErrTimeout), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return append(append(b, classTimeout), err.Error()...)
	case errors.Is(err, ErrNoLeader), errors.Is(err, ErrClosed):
		return append(append(b, classRefused), err.Error()...)
	case errors.Is(err, ErrTooLarge):
		return append(append(b, classTooLarge), err.Error()...)
	case errors.Is(err, ErrNotMember):
		return append(append(b, classNotMember), err.Error()...)
	case errors.Is(err, ErrUnauthenticated):
		return append(append(b, classUnauthenticated), err.Error()...)
	case errors.Is(err, ErrPermissionDenied):
		return append(append(b, classPermissionDenied), err.Error()...)
	case errors.Is(err, fsm.ErrInvalidArgument), errors.Is(err, fsm.ErrLeaseNotFound), errors.Is(err, fsm.ErrLeaseExists),
		errors.Is(err, fsm.ErrCASFailed), errors.Is(err, fsm.ErrKeyNotFound), errors.Is(err, fsm.ErrFailed):
		return fsm.AppendResult(append(b, classState), fsm.Result{Err: err})
	}
	return append(append(b, classOther), err.Error()...)
}

// leaderCouldNotDecode reports whether msg is the leader's refusal of a
// forwarded command or batch it could not decode (peerServer.answer): it
// runs an older version (a rolling upgrade), which refuses an operation
// it does not know (fsm.Check) having done nothing. The texts are those
// every version answers; a key quoted in another error cannot start one.
func leaderCouldNotDecode(msg string) bool {
	invalid := fsm.ErrInvalidArgument.Error() + ": "
	return strings.HasPrefix(msg, invalid+fsm.ErrDecode.Error()) ||
		strings.HasPrefix(msg, invalid+"bad batch: ") && strings.Contains(msg, ": "+fsm.ErrDecode.Error())
}

// ErrLeaderTooOld marks a forwarded write the leader could not decode
// (leaderCouldNotDecode): it runs an older version, and wrote nothing, so
// a caller that has an older form of the same write may send that
// instead (the Redis port's EXEC does, for its apply-time operations).
var ErrLeaderTooOld = errors.New("the leader runs an older version that cannot take this request")

// otherPrefix starts the text of a classOther answer.
const otherPrefix = "the leader answered: "

// decodeError turns an error answer back into an error.
func decodeError(p []byte) error {
	if len(p) == 0 {
		return unknownOutcome("empty error answer from the leader")
	}
	class, rest := p[0], p[1:]
	switch class {
	case classRefused, classTimeout, classTooLarge, classNotMember, classUnauthenticated, classPermissionDenied:
		return &peerError{class: class, msg: "the leader answered: " + string(rest)}
	case classState:
		r, err := fsm.DecodeResult(rest)
		if err != nil || r.Err == nil {
			return unknownOutcome("undecodable error answer from the leader: %v", err)
		}
		if leaderCouldNotDecode(r.Err.Error()) {
			return fmt.Errorf("%w (%w; nothing was written: retry once every member is upgraded)", r.Err, ErrLeaderTooOld)
		}
		return r.Err
	case classOther:
		return fmt.Errorf("%s%s", otherPrefix, rest)
	}
	return unknownOutcome("unknown error class %d from the leader", class)
}

// appendFrameHeader reserves the 4-byte length of a frame; finishFrame
// fills it in.
func appendFrameHeader(b []byte) ([]byte, int) {
	return append(b, 0, 0, 0, 0), len(b)
}

func finishFrame(b []byte, at int) []byte {
	binary.BigEndian.PutUint32(b[at:], uint32(len(b)-at-4))
	return b
}

// appendRequest appends one request frame.
func appendRequest(b []byte, kind byte, id uint64, timeout time.Duration, payload []byte) []byte {
	b, at := appendFrameHeader(b)
	b = append(b, kind)
	b = binary.AppendUvarint(b, id)
	b = binary.AppendUvarint(b, uint64(max(timeout, 0)/time.Millisecond))
	b = append(b, payload...)
	return finishFrame(b, at)
}

// appendResponse appends one response frame; body appends the payload.
func appendResponse(b []byte, status byte, id uint64, payload []byte) []byte {
	b, at := appendFrameHeader(b)
	b = append(b, status)
	b = binary.AppendUvarint(b, id)
	b = append(b, payload...)
	return finishFrame(b, at)
}

// readFrame reads one frame body of at most limit bytes.
func readFrame(r *bufio.Reader, limit int) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if uint64(n) > uint64(limit) {
		return nil, fmt.Errorf("frame of %d bytes is over the limit of %d", n, limit)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return b, nil
}

type request struct {
	kind    byte
	id      uint64
	timeout time.Duration
	payload []byte
}

func parseRequest(b []byte) (request, error) {
	var r request
	if len(b) < 1 {
		return r, errors.New("empty request frame")
	}
	r.kind = b[0]
	b = b[1:]
	var n int
	if r.id, n = binary.Uvarint(b); n <= 0 {
		return r, errors.New("bad request id")
	}
	b = b[n:]
	ms, n := binary.Uvarint(b)
	if n <= 0 || ms > uint64(24*time.Hour/time.Millisecond) {
		return r, errors.New("bad request timeout")
	}
	r.timeout = time.Duration(ms) * time.Millisecond
	r.payload = b[n:]
	return r, nil
}

func parseResponse(b []byte) (status byte, id uint64, payload []byte, err error) {
	if len(b) < 1 {
		return 0, 0, nil, errors.New("empty response frame")
	}
	status = b[0]
	id, n := binary.Uvarint(b[1:])
	if n <= 0 {
		return 0, 0, nil, errors.New("bad response id")
	}
	if status != statusOK && status != statusErr && status != statusGoAway {
		return 0, 0, nil, fmt.Errorf("unknown response status %d", status)
	}
	return status, id, b[1+n:], nil
}

// Member requests.
func encodeJoin(req JoinRequest) []byte {
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendString(b, req.ID)
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	b = protowire.AppendString(b, req.RaftAddr)
	b = protowire.AppendTag(b, 3, protowire.BytesType)
	b = protowire.AppendString(b, req.HTTPAddr)
	if req.Voter {
		b = protowire.AppendTag(b, 4, protowire.VarintType)
		b = protowire.AppendVarint(b, 1)
	}
	// Only when set: a leader of an older build refuses fields it does not
	// know, and AddMember sends it only when the forwarding member could
	// not check it itself.
	if req.ClusterID != "" {
		b = protowire.AppendTag(b, 5, protowire.BytesType)
		b = protowire.AppendString(b, req.ClusterID)
	}
	return b
}

func decodeJoin(b []byte) (JoinRequest, error) {
	var req JoinRequest
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return req, protowire.ParseError(n)
		}
		b = b[n:]
		switch {
		case (num >= 1 && num <= 3 || num == 5) && typ == protowire.BytesType:
			v, n := protowire.ConsumeString(b)
			if n < 0 {
				return req, protowire.ParseError(n)
			}
			b = b[n:]
			switch num {
			case 1:
				req.ID = v
			case 2:
				req.RaftAddr = v
			case 3:
				req.HTTPAddr = v
			case 5:
				req.ClusterID = v
			}
		case num == 4 && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 || v > 1 {
				return req, errors.New("bad voter field")
			}
			b = b[n:]
			req.Voter = v == 1
		default:
			return req, fmt.Errorf("unknown field %d", num)
		}
	}
	return req, nil
}
