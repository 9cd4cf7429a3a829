package httpapi

import (
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/rosterhq/roster/internal/testutil"
	"github.com/rosterhq/roster/registry"
)

// BenchmarkAuthLookup is peerbench's lookup shape on one member, in
// process, without TLS: a linearizable prefix read of 50 keys of 200 bytes
// from 64 concurrent clients, with access control off and on (a non-admin
// token whose role rule covers the prefix, checked on every request). The
// difference is what the token check costs; scripts/securebench.sh
// measures TLS on top, on three members.
func BenchmarkAuthLookup(b *testing.B) {
	for _, auth := range []bool{false, true} {
		b.Run(fmt.Sprintf("auth=%v", auth), func(b *testing.B) {
			e := newEnvWith(b, func(rc *registry.Config) {
				rc.Auth, rc.RootTokenHash = auth, registry.HashToken(rootSecret)
			}, func(sc *Config) { sc.Auth = auth })
			testutil.Eventually(b, 10*time.Second, "root token", func() bool {
				return e.as(rootSecret, "GET", "/v1/auth/whoami", "").code == 200
			})
			e.as(rootSecret, "PUT", "/v1/auth/roles/svc", `{"rules":[{"prefix":"/services/","read":true,"write":true}]}`).ok(b, 200, nil)
			token := e.createToken("bench", "svc")
			val := string(make([]byte, 200))
			for s := range 10 {
				for i := range 50 {
					e.as(rootSecret, "PUT", fmt.Sprintf("/v1/kv/services/svc-%d/inst-%d", s, i), val).ok(b, 200, nil)
				}
			}
			hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 128}, Timeout: 30 * time.Second}
			b.SetParallelism(32)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				n := 0
				for pb.Next() {
					req, _ := http.NewRequest("GET", fmt.Sprintf("%s/v1/kv/services/svc-%d/?prefix=true", e.ts.URL, n%10), nil)
					req.Header.Set("Authorization", "Bearer "+token)
					n++
					resp, err := hc.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			})
		})
	}
}
