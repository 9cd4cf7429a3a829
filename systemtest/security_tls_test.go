package systemtest

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rosterhq/roster/internal/cluster"
	"github.com/rosterhq/roster/internal/testcerts"
)

// tlsArgs are the flags of a member serving HTTPS with client
// certificates required and peer certificates for member-to-member dials.
func tlsArgs(certs *testcerts.Set) []string {
	return append(certs.MemberArgs(), "-tick", "100ms")
}

// tlsClient trusts the set's CA and presents cert (nil: none).
func tlsClient(t testing.TB, certs *testcerts.Set, cert *testcerts.Pair) *http.Client {
	return &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{TLSClientConfig: certs.ClientTLS(t, cert)}}
}

func send(t testing.TB, hc *http.Client, method, url string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestTLSClusterFormsAndForwards: members join each other over https,
// record https addresses, and forward writes and keep-alives to the leader
// over https with their peer certificates, which the leader's HTTP port
// (requiring client certificates) accepts.
func TestTLSClusterFormsAndForwards(t *testing.T) {
	certs := testcerts.New(t)
	hc := tlsClient(t, certs, &certs.Client)
	c := cluster.StartWith(t, 3, cluster.Options{Client: hc}, tlsArgs(certs)...)
	leader := c.Leader(30 * time.Second)

	// A joined member's HTTP address is recorded just after it is added to
	// the configuration: wait for the records, then check them.
	c.Eventually(10*time.Second, "every member's https address recorded", func() bool {
		info, err := c.ClusterInfo(leader)
		if err != nil || len(info.Members) != 3 {
			return false
		}
		for _, m := range info.Members {
			if m.HTTPAddr == "" {
				return false
			}
			if !strings.HasPrefix(m.HTTPAddr, "https://127.0.0.1:") {
				t.Fatalf("member %s recorded with http address %q, want https://", m.ID, m.HTTPAddr)
			}
		}
		return true
	})
	for i, m := range c.Followers(leader) {
		key := fmt.Sprintf("/v1/kv/tls/k%d", i)
		if code, b := send(t, hc, "PUT", m.URL(key), []byte(m.ID)); code != 200 {
			t.Fatalf("put via follower %s: %d %s", m.ID, code, b)
		}
		if code, b := send(t, hc, "GET", leader.URL(key), nil); code != 200 || !strings.Contains(string(b), m.ID) {
			t.Fatalf("read on the leader: %d %s", code, b)
		}
		code, b := send(t, hc, "POST", m.URL("/v1/leases"), []byte(`{"ttl":30}`))
		if code != 201 {
			t.Fatalf("grant via follower %s: %d %s", m.ID, code, b)
		}
		id := strings.Split(strings.Split(string(b), `"id":"`)[1], `"`)[0]
		if code, b := send(t, hc, "POST", m.URL("/v1/leases/"+id+"/keepalive"), nil); code != 200 {
			t.Fatalf("keep-alive via follower %s: %d %s", m.ID, code, b)
		}
	}
	// Without a client certificate nothing is served.
	if _, err := tlsClient(t, certs, nil).Get(leader.URL("/healthz")); err == nil {
		t.Fatal("a client without a certificate was served")
	}
}
