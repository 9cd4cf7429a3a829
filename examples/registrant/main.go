// Command registrant registers one service instance in Roster and keeps it
// registered until interrupted: it grants a lease, puts the key, keeps the
// lease alive, re-registers after a loss, and revokes on exit so that
// discoverers see it leave at once.
//
//	go run ./examples/registrant -endpoints 127.0.0.1:7370 -key /services/api/node-1 -value '{"addr":"10.0.0.1:80"}'
package main

import (
	"context"
	"flag"
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
	key := flag.String("key", "/services/demo/"+hostname(), "key to register")
	value := flag.String("value", `{"addr":"127.0.0.1:8080"}`, "value to register")
	ttl := flag.Int64("ttl", 10, "lease TTL in seconds")
	flag.Parse()

	c, err := client.New(conn())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	r := client.NewRegistrar(c)
	rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	reg, err := r.Register(rctx, *key, []byte(*value), *ttl)
	cancel()
	if err != nil {
		log.Fatalf("register %s: %v", *key, err)
	}
	for {
		select {
		case ev := <-reg.Events():
			log.Printf("%s: %s (lease %v)", ev.Key, ev.Type, ev.Lease)
		case <-ctx.Done():
			cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := reg.Close(cctx)
			cancel()
			if err != nil {
				log.Fatalf("deregister: %v", err)
			}
			log.Printf("%s: deregistered", *key)
			return
		}
	}
}

func hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return "node"
	}
	return h
}
