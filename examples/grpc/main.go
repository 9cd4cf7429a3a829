// Command grpc shows gRPC client-side load balancing through Roster.
//
// Run a few servers; each serves the standard gRPC health service and
// registers its address under the prefix for as long as it runs:
//
//	go run ./examples/grpc -serve 127.0.0.1:9001 &
//	go run ./examples/grpc -serve 127.0.0.1:9002 &
//
// Then call them: the client dials roster:///services/grpc-demo/, spreads
// its calls round-robin and follows servers as they start and stop:
//
//	go run ./examples/grpc
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"

	"github.com/rosterhq/roster/client"
	"github.com/rosterhq/roster/client/grpcresolver"
)

func main() {
	// -endpoints, and -cacert/-cert/-cert-key/-token for a secured cluster.
	conn := client.Flags(flag.CommandLine, "127.0.0.1:7370")
	prefix := flag.String("prefix", "/services/grpc-demo/", "key prefix of the service")
	serve := flag.String("serve", "", "serve on this address and register it (instead of calling)")
	ttl := flag.Int64("ttl", 10, "lease TTL of the registration, seconds")
	flag.Parse()

	c, err := client.New(conn())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if *serve != "" {
		err = runServer(ctx, c, *prefix, *serve, *ttl)
	} else {
		err = runClient(ctx, c, *prefix)
	}
	if err != nil {
		log.Fatal(err)
	}
}

// runServer serves the health service on addr and keeps addr registered
// under prefix until ctx ends; then it deregisters before stopping.
func runServer(ctx context.Context, c *client.Client, prefix, addr string, ttl int64) error {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go srv.Serve(lis)
	defer srv.GracefulStop()

	addr = lis.Addr().String()
	value := fmt.Sprintf(`{"addr":%q}`, addr)
	reg, err := client.NewRegistrar(c).Register(ctx, prefix+addr, []byte(value), ttl)
	if err != nil {
		return fmt.Errorf("register: %w", err)
	}
	log.Printf("serving on %s, registered as %s", addr, reg.Key())
	<-ctx.Done()
	// Deregister first, so clients stop sending before the server stops.
	closeCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return reg.Close(closeCtx)
}

// runClient calls the service once a second and prints which server
// answered.
func runClient(ctx context.Context, c *client.Client, prefix string) error {
	conn, err := grpc.NewClient("roster://"+prefix,
		grpc.WithResolvers(grpcresolver.NewBuilder(c)),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"round_robin":{}}]}`),
	)
	if err != nil {
		return err
	}
	defer conn.Close()
	hc := healthpb.NewHealthClient(conn)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		var p peer.Peer
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		resp, err := hc.Check(cctx, &healthpb.HealthCheckRequest{}, grpc.Peer(&p))
		cancel()
		switch {
		case err != nil:
			fmt.Printf("%s  error: %v\n", time.Now().Format(time.TimeOnly), err)
		default:
			fmt.Printf("%s  %s answered %v\n", time.Now().Format(time.TimeOnly), p.Addr, resp.GetStatus())
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
