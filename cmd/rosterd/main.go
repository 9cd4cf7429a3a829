package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	// Buffered for two: the second signal must not be lost while the first
	// is being handled, since it means "stop waiting for shutdown". SIGHUP
	// reloads the TLS certificates.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	os.Exit(rosterd(context.Background(), os.Args[1:], environment{os.Getenv, os.Hostname}, os.Stderr, sigs))
}
