package registry

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/rosterhq/roster/fsm"
)

// A follower's Batch (the Redis port's pipelines) goes to the leader as
// one request of the forwarding channel, so a pipeline sent to a follower
// commits together there as it does on the leader, in the client's order.
// Sending the writes one by one instead would pay one commit each; sending
// them as separate concurrent requests could reorder them, since the
// leader serves the requests of one connection concurrently.

// batchChunk bounds the encoded commands of one forwarded request, well
// inside the channel's frame limit (which admits a single largest value).
const batchChunk = 1 << 20

// forwardBatch runs Batch through the leader. Commands are validated here
// first, as on the leader; an invalid one gets its error and is not sent.
// Chunks of at most batchChunk bytes go one after the other, each waiting
// for the one before, to keep the order; after a chunk fails as a whole or
// any of its writes has an unknown outcome, the rest is not sent.
func (n *Node) forwardBatch(ctx context.Context, cmds []fsm.Command) []BatchResult {
	out := make([]BatchResult, len(cmds))
	var (
		idx  []int // positions of the commands of the current chunk
		subs []fsm.Command
		encs [][]byte // their encodings
		size int
	)
	send := func() bool {
		if len(idx) == 0 {
			return true
		}
		defer func() { idx, subs, encs, size = idx[:0], subs[:0], encs[:0], 0 }()
		resp, self, err := n.onLeader(ctx, kindBatch, encodeBatch(encs))
		var res []BatchResult
		switch {
		case self:
			res = n.batchHere(ctx, subs)
		case err != nil:
			for _, i := range idx {
				out[i].Err = err
			}
			return false
		default:
			if res, err = decodeBatchResults(resp, len(idx)); err != nil {
				for _, i := range idx {
					out[i].Err = unknownOutcome("undecodable batch answer from the leader: %v", err)
				}
				return false
			}
		}
		ok := true
		for j, i := range idx {
			out[i] = res[j]
			if errors.Is(res[j].Err, ErrTimeout) {
				ok = false // the leader may still apply it: keep the order
			}
		}
		return ok
	}
	for i, c := range cmds {
		p, err := n.checkToForward(c)
		if err != nil {
			out[i].Err = err
			continue
		}
		enc := fsm.Encode(p)
		if size > 0 && size+len(enc) > batchChunk && !send() {
			markUnsent(out, i, "an earlier write of the pipeline failed or has an unknown outcome")
			return out
		}
		idx, subs, encs, size = append(idx, i), append(subs, p), append(encs, enc), size+len(enc)
	}
	send()
	return out
}

// checkToForward validates a command of a batch a follower forwards and
// returns what to send. A txn goes as given (validate): only the leader
// can pick the IDs of the leases it grants, and it prepares the txn when
// the batch reaches it. The rest is checked as the leader will check it.
func (n *Node) checkToForward(c fsm.Command) (fsm.Command, error) {
	if t, ok := c.(fsm.Txn); ok {
		return t, n.validate(t)
	}
	return n.prepare(c)
}

// markUnsent fails the commands from position from on that were not sent
// (a refusal: nothing of them was proposed), keeping validation errors.
func markUnsent(out []BatchResult, from int, why string) {
	for i := from; i < len(out); i++ {
		if out[i].Err == nil {
			out[i].Err = refusal("%s", why)
		}
	}
}

// encodeBatch: uvarint count, then each encoded command (fsm.Encode) as
// uvarint length and bytes.
func encodeBatch(encs [][]byte) []byte {
	size := binary.MaxVarintLen64
	for _, e := range encs {
		size += binary.MaxVarintLen64 + len(e)
	}
	b := binary.AppendUvarint(make([]byte, 0, size), uint64(len(encs)))
	for _, e := range encs {
		b = binary.AppendUvarint(b, uint64(len(e)))
		b = append(b, e...)
	}
	return b
}

func decodeBatch(p []byte) ([]fsm.Command, error) {
	parts, err := splitBatch(p, -1)
	if err != nil {
		return nil, err
	}
	cmds := make([]fsm.Command, len(parts))
	for i, part := range parts {
		if cmds[i], err = fsm.Decode(part); err != nil {
			return nil, fmt.Errorf("command %d: %w", i, err)
		}
	}
	return cmds, nil
}

// encodeBatchResults: uvarint count, then per command a status byte
// (statusOK: fsm.EncodeResult follows; statusErr: encodeError follows)
// with the rest as uvarint length and bytes.
func encodeBatchResults(res []BatchResult) []byte {
	b := binary.AppendUvarint(nil, uint64(len(res)))
	for _, r := range res {
		var body []byte
		status := statusOK
		if r.Err != nil && !errors.Is(r.Err, r.Result.Err) {
			status, body = statusErr, encodeError(nil, r.Err)
		} else {
			body = fsm.EncodeResult(r.Result)
		}
		b = binary.AppendUvarint(b, uint64(len(body)+1))
		b = append(append(b, status), body...)
	}
	return b
}

func decodeBatchResults(p []byte, want int) ([]BatchResult, error) {
	parts, err := splitBatch(p, want)
	if err != nil {
		return nil, err
	}
	out := make([]BatchResult, len(parts))
	for i, part := range parts {
		switch part[0] {
		case statusOK:
			r, err := fsm.DecodeResult(part[1:])
			if err != nil {
				return nil, fmt.Errorf("result %d: %w", i, err)
			}
			out[i] = BatchResult{Result: r, Err: r.Err}
		case statusErr:
			out[i].Err = decodeError(part[1:])
		default:
			return nil, fmt.Errorf("result %d: status %d", i, part[0])
		}
	}
	return out, nil
}

// splitBatch splits a count-prefixed sequence of length-prefixed parts,
// none of them empty (an encoded command starts with its type byte, a
// result with its status). want < 0 accepts any count.
func splitBatch(p []byte, want int) ([][]byte, error) {
	count, k := binary.Uvarint(p)
	if k <= 0 || count > uint64(len(p)) {
		return nil, errors.New("bad count")
	}
	if want >= 0 && count != uint64(want) {
		return nil, fmt.Errorf("%d parts, want %d", count, want)
	}
	p = p[k:]
	parts := make([][]byte, 0, count)
	for range count {
		n, k := binary.Uvarint(p)
		if k <= 0 || n == 0 || n > uint64(len(p)-k) {
			return nil, errors.New("bad part length")
		}
		parts = append(parts, p[k:k+int(n)])
		p = p[k+int(n):]
	}
	if len(p) != 0 {
		return nil, errors.New("trailing bytes")
	}
	return parts, nil
}
