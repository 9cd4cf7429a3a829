package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/rosterhq/roster/client"
)

func ExampleClient_Put() {
	c, err := client.New(client.Config{Endpoints: []string{"127.0.0.1:7370", "127.0.0.1:7380", "127.0.0.1:7390"}})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	put, err := c.Put(ctx, "/config/feature-x", []byte("on"))
	if err != nil {
		log.Fatal(err)
	}
	// Change it only if nobody changed it since.
	_, err = c.CompareAndSwap(ctx, "/config/feature-x", []byte("off"), put.Revision)
	var casErr *client.CASError
	switch {
	case errors.As(err, &casErr):
		fmt.Println("changed meanwhile, now at revision", casErr.CurrentModRevision)
	case err != nil:
		log.Fatal(err)
	}

	resp, err := c.Get(ctx, "/config/", client.WithPrefix())
	if err != nil {
		log.Fatal(err)
	}
	for _, kv := range resp.KVs {
		fmt.Printf("%s = %s\n", kv.Key, kv.Value)
	}
	if _, err := c.Get(ctx, "/config/absent"); errors.Is(err, client.ErrKeyNotFound) {
		fmt.Println("absent")
	}
}

func ExampleClient_KeepAlive() {
	c, err := client.New(client.Config{Endpoints: []string{"127.0.0.1:7370"}})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()

	lease, err := c.Grant(ctx, 10, client.WithName("/services/api/node-1"))
	if err != nil {
		log.Fatal(err)
	}
	if _, err := c.Put(ctx, "/services/api/node-1", []byte(`{"addr":"10.0.0.1:80"}`), client.WithLease(lease.ID)); err != nil {
		log.Fatal(err)
	}
	// Renewed every 10/3 s, batched with every other lease of c.
	alive, err := c.KeepAlive(ctx, lease.ID)
	if err != nil {
		log.Fatal(err)
	}
	for range alive {
		// Each value reports a renewal. The channel closes when the lease
		// is lost: then grant a new one (or use a Registrar, which does).
	}
	log.Print("lease lost")
}

func ExampleRegistrar() {
	c, err := client.New(client.Config{Endpoints: []string{"127.0.0.1:7370"}})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	r := client.NewRegistrar(c, client.WithOnChange(func(ev client.RegistrationEvent) {
		log.Printf("%s: %s (lease %v)", ev.Key, ev.Type, ev.Lease)
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	reg, err := r.Register(ctx, "/services/api/node-1", []byte(`{"addr":"10.0.0.1:80"}`), 10)
	if err != nil {
		log.Fatal(err)
	}
	// ... serve; the registration survives lease loss on its own ...

	// On shutdown: revoke, so that clients stop calling at once.
	if err := reg.Close(context.Background()); err != nil {
		log.Print(err)
	}
}

func ExampleResolver() {
	c, err := client.New(client.Config{Endpoints: []string{"127.0.0.1:7370"}})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r, err := client.NewResolver(ctx, c, "/services/api/", client.WithKeepLastKnown(true))
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()

	// Either ask for the current set when needed...
	for _, kv := range r.Instances() {
		fmt.Printf("%s -> %s\n", kv.Key, kv.Value)
	}
	// ...or react to every change (latest set wins).
	for set := range r.Updates() {
		fmt.Println(len(set), "instances")
	}
}
