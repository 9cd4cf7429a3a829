package grpcresolver

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"google.golang.org/grpc/resolver"

	"github.com/rosterhq/roster/client"
)

// Scheme is the default URI scheme of the builder: dial "roster:///prefix".
const Scheme = "roster"

// Option configures a builder.
type Option func(*options)

type options struct {
	scheme      string
	logger      *slog.Logger
	resolverOps []client.ResolverOption
}

// WithLogger makes the resolvers log through l: instance values that name
// no usable address (at Warn, once per key and revision) and registry
// errors. Without it nothing is logged.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.logger = l
		}
	}
}

// WithScheme sets the URI scheme the builder answers to (default
// "roster"), for a process that resolves names in more than one Roster
// cluster through the global registry. It is lowercased, as grpc matches
// schemes in lowercase.
func WithScheme(scheme string) Option {
	return func(o *options) {
		if scheme != "" {
			o.scheme = strings.ToLower(scheme)
		}
	}
}

// WithResolverOptions passes options to the client.Resolver behind each
// resolved target. The builder already sets client.WithKeepLastKnown(true):
// gRPC keeps working with the last known instances while the registry is
// unreachable, and its own connection management notices instances that
// went away meanwhile. Pass client.WithKeepLastKnown(false) to empty the
// address list after client.WithUnreachableTimeout instead.
func WithResolverOptions(opts ...client.ResolverOption) Option {
	return func(o *options) { o.resolverOps = append(o.resolverOps, opts...) }
}

// builder is the resolver.Builder of one Client.
type builder struct {
	c    *client.Client
	opts options
}

// NewBuilder returns a resolver.Builder that resolves targets of the form
// "roster:///services/api/" (or "roster:services/api/") to the instances
// registered under the key prefix "/services/api/" in the cluster c talks
// to. Pass it to grpc.NewClient with grpc.WithResolvers. Every ClientConn
// built with it shares c; close c only after them (closing it first ends
// their resolution: they keep their last addresses, never updated again).
func NewBuilder(c *client.Client, opts ...Option) resolver.Builder {
	b := &builder{c: c, opts: options{scheme: Scheme, logger: slog.New(slog.DiscardHandler)}}
	for _, o := range opts {
		o(&b.opts)
	}
	return b
}

// Register registers a builder for c in grpc's global resolver registry,
// so that any grpc.NewClient("roster:///...") in the process resolves
// through c. Call it at most once per scheme, during initialisation (grpc's
// registry is not safe to change concurrently with dialling). Prefer
// NewBuilder with grpc.WithResolvers: it keeps the dependency explicit,
// allows a Client per ClientConn, and cannot clash with another package's
// registration of the same scheme.
func Register(c *client.Client, opts ...Option) {
	resolver.Register(NewBuilder(c, opts...))
}

// Scheme is the URI scheme the builder resolves.
func (b *builder) Scheme() string { return b.opts.scheme }

// Build starts resolving target. It does not wait for the registry: the
// first list and the watch run in the background, and the addresses reach
// cc as soon as the list answers. Only a malformed target fails here.
func (b *builder) Build(target resolver.Target, cc resolver.ClientConn, _ resolver.BuildOptions) (resolver.Resolver, error) {
	prefix, err := prefixOf(target)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &rosterResolver{
		c:      b.c,
		cc:     cc,
		prefix: prefix,
		log:    b.opts.logger.With("prefix", prefix),
		ropts: append([]client.ResolverOption{client.WithKeepLastKnown(true), client.WithErrorHandler(func(err error) {
			// A list that fails after the first (the token may no longer
			// read the prefix): grpc keeps the addresses it has, and
			// learns why no new ones come.
			cc.ReportError(fmt.Errorf("grpcresolver: resolving %s: %w", prefix, err))
		})}, b.opts.resolverOps...),
		ctx:        ctx,
		cancel:     cancel,
		done:       make(chan struct{}),
		resolveNow: make(chan struct{}, 1),
		cache:      map[string]cached{},
	}
	go r.run()
	return r, nil
}
