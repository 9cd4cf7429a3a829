package grpcresolver_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/rosterhq/roster/client"
	"github.com/rosterhq/roster/client/grpcresolver"
)

// Instances register themselves under /services/api/ (for instance with
// client.Registrar and the value {"addr":"10.0.0.7:9000"}); the caller
// dials the prefix and round-robins across whatever is registered.
func Example() {
	c, err := client.New(client.Config{Endpoints: []string{"127.0.0.1:7370"}})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	conn, err := grpc.NewClient("roster:///services/api/",
		grpc.WithResolvers(grpcresolver.NewBuilder(c)),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"round_robin":{}}]}`),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(resp.GetStatus())
}

// An instance registers its gRPC address under the prefix; the lease
// keeps the key only as long as the process keeps it alive.
func Example_register() {
	c, err := client.New(client.Config{Endpoints: []string{"127.0.0.1:7370"}})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	reg, err := client.NewRegistrar(c).Register(ctx, "/services/api/node-1",
		[]byte(`{"addr":"10.0.0.7:9000","metadata":{"zone":"b"}}`), 10)
	if err != nil {
		log.Fatal(err)
	}
	defer reg.Close(context.Background())
	// ... serve gRPC on 10.0.0.7:9000 ...
}
