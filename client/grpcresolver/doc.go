// Package grpcresolver resolves gRPC targets through Roster: a ClientConn
// dialled at "roster:///services/api/" balances across the instances
// registered under the key prefix "/services/api/" and follows them as they
// come and go.
//
//	c, _ := client.New(client.Config{Endpoints: []string{"10.0.0.1:7370", "10.0.0.2:7370"}})
//	conn, err := grpc.NewClient("roster:///services/api/",
//		grpc.WithResolvers(grpcresolver.NewBuilder(c)),
//		grpc.WithTransportCredentials(insecure.NewCredentials()),
//		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"round_robin":{}}]}`))
//
// # Targets
//
// The endpoint of the target is the key prefix, a plain byte prefix as
// everywhere in Roster: "roster:///services/api/" and "roster:services/api/"
// both follow "/services/api/". Keep the trailing slash, or
// "roster:///services/api" also matches "/services/api-v2/...". The
// authority must be empty ("roster://services/api/" is refused: it would
// name the prefix "/api/"); which cluster is asked is the Client's
// business. Without a round_robin service config grpc uses pick_first and
// sends every call to one instance.
//
// # Values
//
// Each key under the prefix is one instance; its value names the address
// to dial:
//
//	10.0.0.7:9000                                   plain host:port
//	{"addr": "10.0.0.7:9000"}                       JSON (as examples/registrant writes)
//	{"grpc_addr": "10.0.0.7:9000", "addr": "..."}   grpc_addr wins over addr, addr over address
//	{"address": "[fd00::7]:9000", "metadata": {"zone": "b", "weight": 3}}
//
// The address must be host:port with a non-empty host and a numeric port.
// A value that names no usable address is skipped (and logged, with
// WithLogger); it never fails the resolution. A "metadata" (or
// "attributes") object is attached to the address, read it with Metadata;
// InstanceKey gives the key an address came from. Several keys naming the
// same address yield one address. The addresses are handed to grpc sorted,
// and only when the set changed.
//
// # Behaviour
//
// Each ClientConn gets a client.Resolver: it lists the prefix, then
// watches it, so a registration or a lease that expires or is revoked
// reaches grpc within one watch event. Build does not wait for the
// registry; until the first list answers, calls wait (or fail, per their
// wait-for-ready setting) and failed attempts are reported to grpc and
// retried with backoff. While the registry is unreachable the last known
// set stays in use (client.WithKeepLastKnown(true); change it with
// WithResolverOptions). An empty set is handed on as an empty address
// list: calls fail fast (or wait, with grpc.WaitForReady) until an
// instance registers. ResolveNow needs no re-read, since the watch
// delivers every change. Closing the ClientConn stops its resolver and
// all of its goroutines. Closing the Client ends every resolver built on
// it: each reports client.ErrClosed to grpc, and its ClientConn goes on
// with the addresses it last had, never updated again.
//
// A secured registry needs nothing here: the resolvers speak through the
// Client, so the TLS settings and the token of its client.Config apply
// (the token needs read on the prefix; a watch or list it may not read
// fails, and is reported to grpc like any other resolver error, also
// after the first list: through client.WithErrorHandler, while grpc goes
// on with the addresses it has).
package grpcresolver
