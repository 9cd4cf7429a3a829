package httpapi

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestShutdownWhileWatchesOpen shuts servers down, 100 times, while watch
// streams are still being opened on them. The streams must all end and
// Shutdown must return. A stream counts itself (and the first one, the
// stream hub) in the server's WaitGroup; counted only after its connection
// left net/http, it could do so while Shutdown already waited on that
// group: the race detector reported it here in 2 runs of 2 before the
// stream was counted first.
func TestShutdownWhileWatchesOpen(t *testing.T) {
	e := newEnv(t)
	for round := 0; round < 100; round++ {
		reg := prometheus.NewRegistry()
		srv, err := New(Config{Gatherer: reg}, e.node, testLogger(t), reg)
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		served := make(chan error, 1)
		go func() { served <- srv.Serve(ln) }()
		url := "http://" + ln.Addr().String() + "/v1/watch/w/?prefix=true"
		ctx, cancel := context.WithCancel(context.Background())
		var watchers sync.WaitGroup
		opened := make(chan struct{}, 64)
		for w := 0; w < 8; w++ {
			watchers.Add(1)
			go func() {
				defer watchers.Done()
				for ctx.Err() == nil {
					req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
					res, err := http.DefaultClient.Do(req)
					if err != nil {
						return
					}
					select {
					case opened <- struct{}{}:
					default:
					}
					// Read until the server ends the stream (or the
					// test gives up), then open another.
					sc := bufio.NewScanner(res.Body)
					for sc.Scan() {
					}
					res.Body.Close()
				}
			}()
		}
		for i := 0; i < 4; i++ {
			<-opened
		}
		sctx, scancel := context.WithTimeout(context.Background(), 20*time.Second)
		err = srv.Shutdown(sctx)
		scancel()
		if err != nil {
			t.Fatalf("round %d: shutdown: %v", round, err)
		}
		if err := <-served; err != nil {
			t.Fatalf("round %d: serve: %v", round, err)
		}
		cancel()
		watchers.Wait()
	}
}
