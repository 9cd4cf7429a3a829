package registry

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/raft"
	"github.com/rosterhq/roster/fsm"
)

// Txn limits: a Txn is one raft entry, so it is bounded like one.
const (
	// MaxTxnOps caps the operations of one Txn.
	MaxTxnOps = 10_000
	// TxnBytesFactor times Config.MaxValue caps the bytes (keys plus
	// values) of one Txn: 4 MiB with the default 1 MiB values.
	TxnBytesFactor = 4
)

// TxnLease is the lease ID that, in a Put of a Txn, stands for the lease
// the Grant at index i of the same Txn creates (a Grant with ID 0, whose ID
// the leader picks): Txn replaces it with that ID before proposing.
func TxnLease(i int) int64 { return -1 - int64(i) }

// Txn applies ops (fsm.Put, fsm.Delete of one key, fsm.Check, fsm.Incr, fsm.Grant) in order,
// all or nothing, in one raft entry; see fsm.Txn. Everything is validated
// before proposing, as Put, Delete and Grant do, and no key may appear
// twice. Grants with ID 0 get an ID picked here, and every grant gets the
// clock slack a plain Grant gets. The result holds one result per
// operation (Result.Ops); a refused Txn changed nothing and its error says
// which operation failed.
//
// Any member takes it: a follower forwards the operations as given and the
// leader prepares them.
func (n *Node) Txn(ctx context.Context, ops []fsm.Command) (fsm.Result, error) {
	return n.write(ctx, fsm.Txn{Ops: ops})
}

// txnHere prepares and proposes a txn on this member, which must lead.
func (n *Node) txnHere(ctx context.Context, ops []fsm.Command) (fsm.Result, error) {
	for attempt := 0; ; attempt++ {
		t, err := n.prepareTxn(ops)
		if err != nil {
			return fsm.Result{}, err
		}
		res, err := n.propose(ctx, "txn", t)
		// A grant with an explicit ID in flight can take an ID picked here
		// first (see Grant): the Txn changed nothing; pick again.
		if errors.Is(err, fsm.ErrLeaseExists) && picksIDs(ops) && attempt < 3 {
			continue
		}
		return res, err
	}
}

// picksIDs reports whether a Txn has a grant whose ID the leader picks.
func picksIDs(ops []fsm.Command) bool {
	for _, op := range ops {
		if g, ok := op.(fsm.Grant); ok && g.ID == 0 {
			return true
		}
	}
	return false
}

// prepareTxn validates ops and returns the Txn to propose, with lease IDs
// chosen and placeholders resolved; ops itself is not modified.
func (n *Node) prepareTxn(ops []fsm.Command) (fsm.Txn, error) {
	invalid := func(i int, format string, a ...any) error {
		return fmt.Errorf("%w: txn operation %d: %s", fsm.ErrInvalidArgument, i+1, fmt.Sprintf(format, a...))
	}
	if len(ops) == 0 {
		return fsm.Txn{}, fmt.Errorf("%w: a txn needs at least one operation", fsm.ErrInvalidArgument)
	}
	if len(ops) > MaxTxnOps {
		return fsm.Txn{}, fmt.Errorf("%w: %d operations in a txn; at most %d", fsm.ErrInvalidArgument, len(ops), MaxTxnOps)
	}
	if err := n.checkTxnBytes(ops); err != nil {
		return fsm.Txn{}, err
	}
	keys := make(map[string]bool, len(ops))
	key := func(i int, k string) error {
		if err := fsm.ValidateKey(k); err != nil {
			return fmt.Errorf("txn operation %d: %w", i+1, err)
		}
		if keys[k] {
			return invalid(i, "key %q appears twice", clipKey(k))
		}
		keys[k] = true
		return nil
	}
	for i, op := range ops {
		switch op := op.(type) {
		case fsm.Put:
			if err := key(i, op.Key); err != nil {
				return fsm.Txn{}, err
			}
			if len(op.Value) > n.cfg.MaxValue {
				return fsm.Txn{}, fmt.Errorf("%w: txn operation %d: value is %d bytes, the limit is %d", ErrTooLarge, i+1, len(op.Value), n.cfg.MaxValue)
			}
			if op.CAS < 0 {
				return fsm.Txn{}, invalid(i, "negative cas")
			}
			if err := fsm.ValidatePutIf(op.Only); err != nil {
				return fsm.Txn{}, fmt.Errorf("txn operation %d: %w", i+1, err)
			}
		case fsm.Delete:
			if err := key(i, op.Key); err != nil {
				return fsm.Txn{}, err
			}
			if op.Prefix {
				return fsm.Txn{}, invalid(i, "a prefix delete cannot be part of a txn")
			}
			if op.CAS < 0 {
				return fsm.Txn{}, invalid(i, "negative cas")
			}
		case fsm.Incr: // the Redis port's EXEC: evaluated as it applies
			if err := key(i, op.Key); err != nil {
				return fsm.Txn{}, err
			}
		case fsm.Check:
			if err := key(i, op.Key); err != nil {
				return fsm.Txn{}, err
			}
			if err := fsm.ValidateCheck(op); err != nil {
				return fsm.Txn{}, fmt.Errorf("txn operation %d: %w", i+1, err)
			}
		case fsm.Grant:
			if err := fsm.ValidateTTL(op.TTL); err != nil {
				return fsm.Txn{}, fmt.Errorf("txn operation %d: %w", i+1, err)
			}
			if err := fsm.ValidateLeaseName(op.Name); err != nil {
				return fsm.Txn{}, fmt.Errorf("txn operation %d: %w", i+1, err)
			}
			if err := checkGrantID(op.ID); err != nil {
				return fsm.Txn{}, fmt.Errorf("txn operation %d: %w", i+1, err)
			}
		default:
			return fsm.Txn{}, invalid(i, "a txn holds puts, deletes, checks, increments and grants, not %T", op)
		}
	}
	out, err := ResolveTxnLeases(ops, func(i int) (int64, error) {
		g := n.idgen.Load()
		if g == nil || n.raft.State() != raft.Leader {
			return 0, n.notLeader()
		}
		id, err := g.Next(n.fsm.State().MaxLeaseID())
		if err != nil {
			return 0, invalid(i, "%v", err)
		}
		return id, nil
	})
	if err != nil {
		return fsm.Txn{}, err
	}
	slack := n.slackMs()
	for i, op := range out {
		if g, ok := op.(fsm.Grant); ok {
			g.SlackMs = slack
			out[i] = g
		}
	}
	return fsm.Txn{Ops: out}, nil
}

// ResolveTxnLeases returns ops with each grant of ID 0 given the ID pick
// returns for it (pick is told the grant's index) and each put's lease
// placeholder (TxnLease) replaced by the ID of the grant it names, which
// must come before the put; ops itself is not modified. The leader
// resolves a txn so before proposing it (pick: its ID generator); the
// Redis port so before previewing one (fsm.State.Preview).
func ResolveTxnLeases(ops []fsm.Command, pick func(i int) (int64, error)) ([]fsm.Command, error) {
	out := make([]fsm.Command, len(ops))
	granted := make([]int64, len(ops)) // the ID the Grant at i creates
	for i, op := range ops {
		switch op := op.(type) {
		case fsm.Grant:
			if op.ID == 0 {
				id, err := pick(i)
				if err != nil {
					return nil, err
				}
				op.ID = id
			}
			granted[i] = op.ID
			out[i] = op
		case fsm.Put:
			if op.Lease < 0 {
				j := -1 - op.Lease
				if j >= int64(i) || granted[j] == 0 {
					return nil, fmt.Errorf("%w: txn operation %d: lease placeholder %d names no earlier grant", fsm.ErrInvalidArgument, i+1, op.Lease)
				}
				op.Lease = granted[j]
			}
			out[i] = op
		default:
			out[i] = op
		}
	}
	return out, nil
}

// checkTxnBytes refuses a txn whose keys, values and lease names are over
// TxnBytesFactor times the value limit. A follower checks it before it
// forwards the txn as well as the leader, so that every member answers
// too large alike and the forwarding channel never carries a frame over
// its limit.
func (n *Node) checkTxnBytes(ops []fsm.Command) error {
	size := 0
	for _, op := range ops {
		switch op := op.(type) {
		case fsm.Put:
			size += len(op.Key) + len(op.Value)
		case fsm.Delete:
			size += len(op.Key)
		case fsm.Check: // a compare carries no value
			size += len(op.Key)
		case fsm.Incr: // nor an increment
			size += len(op.Key)
		case fsm.Grant:
			size += len(op.Name)
		}
	}
	if limit := TxnBytesFactor * n.cfg.MaxValue; size > limit {
		return fmt.Errorf("%w: the txn is over %d bytes of keys and values", ErrTooLarge, limit)
	}
	return nil
}

// clipKey shortens a key quoted in an error message.
func clipKey(k string) string {
	if len(k) > 64 {
		return k[:64] + "…"
	}
	return k
}
