// Command discoverer prints the service instances registered under a
// prefix in Roster, and prints the set again each time it changes, until
// interrupted.
//
//	go run ./examples/discoverer -endpoints 127.0.0.1:7370 -prefix /services/api/
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rosterhq/roster/client"
)

func main() {
	// -endpoints, and -cacert/-cert/-cert-key/-token for a secured cluster.
	conn := client.Flags(flag.CommandLine, "127.0.0.1:7370")
	prefix := flag.String("prefix", "/services/demo/", "key prefix to follow")
	keep := flag.Bool("keep-last-known", true, "keep the last known instances while the registry is unreachable")
	flag.Parse()

	c, err := client.New(conn())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	r, err := client.NewResolver(ctx, c, *prefix, client.WithKeepLastKnown(*keep))
	if err != nil {
		log.Fatalf("resolve %s: %v", *prefix, err)
	}
	defer r.Close()
	for set := range r.Updates() {
		fmt.Printf("%s  %d instance(s) under %s (revision %d)\n", time.Now().Format(time.TimeOnly), len(set), *prefix, r.Revision())
		for _, kv := range set {
			fmt.Printf("  %s  %s\n", kv.Key, kv.Value)
		}
	}
}
