package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	"github.com/rosterhq/roster/registry"
	"github.com/rosterhq/roster/resp"
)

// startRedis serves the Redis protocol on addr (nothing when addr is ""),
// over TLS when the HTTP port has it, with the same certificates, and with
// the same tokens when access control is on (AUTH <token>). stop closes
// the port and waits for its connections to end.
func startRedis(addr string, node *registry.Node, tlsc *tlsSources, auth bool, log *slog.Logger) (stop func(), err error) {
	if addr == "" {
		return func() {}, nil
	}
	cfg := resp.Config{}
	if tlsc.http != nil {
		cfg.TLS = tlsc.http.ServerConfig(tlsc.clientAuth)
	}
	// Without -auth, tokens are still asked for once the cluster's
	// replicated state has access control on (resp.Config.AuthFromState).
	cfg.Auth, cfg.AuthFromState = nodeTokens{node}, !auth
	srv, err := resp.New(cfg, node, log)
	if err != nil {
		return nil, fmt.Errorf("redis: %w", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("redis: %w", err)
	}
	log.Info("serving the Redis protocol", "redis", ln.Addr().String(), "tls", cfg.TLS != nil, "auth", auth)
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

// nodeTokens checks AUTH's token against the node's replicated tokens.
type nodeTokens struct{ n *registry.Node }

func (a nodeTokens) Authenticate(_ context.Context, token string) (resp.Identity, error) {
	p, err := a.n.Authenticate(token)
	if err != nil {
		return nil, err
	}
	return p, nil
}
