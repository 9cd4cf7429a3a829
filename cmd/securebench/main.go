package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rosterhq/roster/client"
)

// config is the command line.
type config struct {
	eps                 []string
	token               string
	workload            string
	clients             int
	duration            time.Duration
	keys                int // put: key space
	services, instances int // lookup
	valueSize           int
}

func main() {
	var c config
	conn := client.Flags(flag.CommandLine, "127.0.0.1:7370")
	flag.StringVar(&c.workload, "workload", "put", "put or lookup (peerbench's shapes)")
	flag.IntVar(&c.clients, "clients", 64, "concurrent workers")
	flag.DurationVar(&c.duration, "duration", 10*time.Second, "timed phase")
	flag.IntVar(&c.keys, "keys", 100000, "put: key space")
	flag.IntVar(&c.services, "services", 100, "lookup: services")
	flag.IntVar(&c.instances, "instances", 50, "lookup: instances per service")
	flag.IntVar(&c.valueSize, "value-size", 0, "value bytes (default: put 256, lookup 200)")
	flag.Parse()
	cfg := conn()
	c.eps, c.token = cfg.Endpoints, cfg.Token
	tlsConf, err := client.LoadTLS(cfg.CAFile, cfg.CertFile, cfg.KeyFile)
	if err != nil {
		fail(err)
	}
	scheme := "http"
	if cfg.CAFile != "" || cfg.CertFile != "" {
		scheme = "https"
	}
	b := newBench(c, scheme, tlsConf)
	var res map[string]any
	switch c.workload {
	case "put":
		res, err = b.put()
	case "lookup":
		res, err = b.lookup()
	default:
		err = fmt.Errorf("unknown workload %q", c.workload)
	}
	if err != nil {
		fail(err)
	}
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "securebench:", err)
	os.Exit(1)
}

// bench holds the HTTP client: keep-alive connections, one per worker,
// requests round-robin over the members (as peerbench does).
type bench struct {
	cfg  config
	base []string
	hc   *http.Client
	rr   atomic.Uint64
}

func newBench(c config, scheme string, tlsConf *tls.Config) *bench {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: c.clients + 16,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		TLSClientConfig:     tlsConf,
	}
	b := &bench{cfg: c, hc: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
	for _, e := range c.eps {
		if !strings.Contains(e, "://") {
			e = scheme + "://" + e
		}
		b.base = append(b.base, strings.TrimRight(e, "/"))
	}
	return b
}

func (b *bench) do(method, path string, body []byte) ([]byte, error) {
	u := b.base[int(b.rr.Add(1))%len(b.base)] + path
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if b.cfg.token != "" {
		req.Header.Set("Authorization", "Bearer "+b.cfg.token)
	}
	resp, err := b.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, bytes.TrimSpace(data))
	}
	return data, nil
}

// timed runs op on every worker for the duration and reports the rate and
// latency percentiles.
func (b *bench) timed(op func() error) map[string]any {
	var mu sync.Mutex
	var lat []time.Duration
	var errs atomic.Int64
	var firstErr atomic.Value
	ctx, cancel := context.WithTimeout(context.Background(), b.cfg.duration)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for range b.cfg.clients {
		wg.Go(func() {
			var mine []time.Duration
			for ctx.Err() == nil {
				t0 := time.Now()
				if err := op(); err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	el := time.Since(start)
	slices.Sort(lat)
	pct := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000
	}
	res := map[string]any{
		"workload": b.cfg.workload, "clients": b.cfg.clients, "seconds": el.Seconds(),
		"ops": len(lat), "ops_per_s": float64(len(lat)) / el.Seconds(),
		"p50_ms": pct(0.50), "p99_ms": pct(0.99), "errors": errs.Load(),
	}
	if e := firstErr.Load(); e != nil {
		res["error_sample"] = e
	}
	return res
}

func value(n int) []byte { return bytes.Repeat([]byte("x"), n) }

// put: workers put values over a key space (peerbench's put).
func (b *bench) put() (map[string]any, error) {
	if b.cfg.valueSize == 0 {
		b.cfg.valueSize = 256
	}
	val := value(b.cfg.valueSize)
	return b.timed(func() error {
		_, err := b.do("PUT", fmt.Sprintf("/v1/kv/bench/put/k%06d", rand.IntN(b.cfg.keys)), val)
		return err
	}), nil
}

// lookup: services x instances keys, then linearizable prefix reads of a
// random service, each answer checked for every instance (peerbench's
// lookup).
func (b *bench) lookup() (map[string]any, error) {
	if b.cfg.valueSize == 0 {
		b.cfg.valueSize = 200
	}
	if _, err := b.do("DELETE", "/v1/kv/services/?prefix=true", nil); err != nil {
		return nil, err
	}
	val := value(b.cfg.valueSize)
	total := b.cfg.services * b.cfg.instances
	var next atomic.Int64
	var wg sync.WaitGroup
	var setupErr atomic.Value
	for range b.cfg.clients {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= total {
					return
				}
				path := fmt.Sprintf("/v1/kv/services/svc-%d/inst-%d", i/b.cfg.instances, i%b.cfg.instances)
				if _, err := b.do("PUT", path, val); err != nil {
					setupErr.CompareAndSwap(nil, err)
				}
			}
		})
	}
	wg.Wait()
	if e := setupErr.Load(); e != nil {
		return nil, fmt.Errorf("lookup setup: %v", e)
	}
	want := []byte(`"key":`)
	return b.timed(func() error {
		body, err := b.do("GET", fmt.Sprintf("/v1/kv/services/svc-%d/?prefix=true", rand.IntN(b.cfg.services)), nil)
		if err != nil {
			return err
		}
		if n := bytes.Count(body, want); n != b.cfg.instances {
			return fmt.Errorf("answer had %d entries, want %d", n, b.cfg.instances)
		}
		return nil
	}), nil
}
