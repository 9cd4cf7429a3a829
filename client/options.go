package client

// OpOption configures one call. Options that do not apply to a call are
// ignored by it (WithLimit on a single-key Get, say), as in etcd.
type OpOption func(*op)

// op collects the options of one call.
type op struct {
	prefix    bool
	limit     int64
	after     string
	keysOnly  bool
	countOnly bool
	stale     bool

	lease      LeaseID
	prevKV     bool
	hasCAS     bool
	cas        int64
	createOnly bool

	name    string
	leaseID LeaseID
	keys    bool

	rev int64
	// fromRev makes a watch start after rev even when rev is 0 (the
	// Resolver's list of a brand-new registry answers revision 0, and the
	// watch must not miss what comes after it). WithRev(0) means "from now".
	fromRev bool
}

func buildOp(opts []OpOption) op {
	var o op
	for _, f := range opts {
		if f != nil {
			f(&o)
		}
	}
	return o
}

// WithPrefix makes Get, Delete and Watch act on every key that starts with
// the given key (a plain byte prefix: "/p" matches "/pq").
func WithPrefix() OpOption { return func(o *op) { o.prefix = true } }

// WithLimit caps the number of keys a prefix Get returns (GetResponse.More
// tells whether there were more), or of leases Leases returns. 0: all.
func WithLimit(n int64) OpOption { return func(o *op) { o.limit = n } }

// WithAfter continues a listing after the given position: for a prefix
// Get the last key of the previous page, for Leases the last lease ID of the
// previous page as a decimal string (LeaseID.String()).
func WithAfter(key string) OpOption { return func(o *op) { o.after = key } }

// WithKeysOnly makes Get return kvs without their values.
func WithKeysOnly() OpOption { return func(o *op) { o.keysOnly = true } }

// WithCountOnly makes Get return only the number of keys (GetResponse.Count).
func WithCountOnly() OpOption { return func(o *op) { o.countOnly = true } }

// WithStale lets Get read the answering member's replica without asking
// the leader: faster and available without a leader, but possibly behind.
func WithStale() OpOption { return func(o *op) { o.stale = true } }

// WithLease attaches the key of a Put to a lease: the key is deleted when
// the lease expires or is revoked.
func WithLease(id LeaseID) OpOption { return func(o *op) { o.lease = id } }

// WithPrevKV makes Put return the key's previous kv (PutResponse.PrevKV),
// and Watch deliver the previous kv with each event.
func WithPrevKV() OpOption { return func(o *op) { o.prevKV = true } }

// WithCAS makes Put or Delete act only if the key's mod revision is rev (0:
// only if the key is absent). Otherwise the call fails with a *CASError.
func WithCAS(rev int64) OpOption {
	return func(o *op) { o.hasCAS, o.cas, o.createOnly = true, rev, rev == 0 }
}

// WithCreateOnly makes Put act only if the key is absent (WithCAS(0)). A
// key that exists fails the call with a *CASError that also matches
// ErrAlreadyExists.
func WithCreateOnly() OpOption { return WithCAS(0) }

// WithName gives a granted lease a name (shown by TimeToLive and Leases).
func WithName(name string) OpOption { return func(o *op) { o.name = name } }

// WithID grants the lease with the given ID instead of one the server
// picks; a taken ID fails with ErrAlreadyExists.
func WithID(id LeaseID) OpOption { return func(o *op) { o.leaseID = id } }

// WithKeys makes TimeToLive list the keys attached to the lease.
func WithKeys() OpOption { return func(o *op) { o.keys = true } }

// WithRev makes Watch deliver the changes with a revision greater than rev
// (as the API's ?rev=N: "after rev", so pass the revision a Get answered
// with to miss nothing after it). Without it, or with rev <= 0, a watch
// starts from now.
func WithRev(rev int64) OpOption { return func(o *op) { o.rev = rev } }
