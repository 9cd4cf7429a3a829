package main

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"

	"github.com/rosterhq/roster/registry"
	"github.com/rosterhq/roster/resp"
)

// startRedis serves the Redis protocol on addr (nothing when addr is ""),
// over TLS when the HTTP port has it, with the same certificates. stop
// closes the port and waits for its connections to end.
func startRedis(addr string, node *registry.Node, tlsc *tlsSources, log *slog.Logger) (stop func(), err error) {
	if addr == "" {
		return func() {}, nil
	}
	var tc *tls.Config
	if tlsc.http != nil {
		tc = tlsc.http.ServerConfig(tlsc.clientAuth)
	}
	srv, err := resp.New(resp.Config{TLS: tc}, node, log)
	if err != nil {
		return nil, fmt.Errorf("redis: %w", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("redis: %w", err)
	}
	log.Info("serving the Redis protocol", "redis", ln.Addr().String(), "tls", tc != nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil {
			log.Error("redis port stopped", "error", err)
		}
	}()
	return func() {
		srv.Close()
		<-done
		log.Info("redis port stopped")
	}, nil
}
