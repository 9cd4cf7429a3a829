package systemtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"
)

var client = &http.Client{Timeout: 20 * time.Second}

// do sends a request and returns status and body.
func do(t testing.TB, method, url string, body []byte) (int, []byte) {
	t.Helper()
	code, b, err := try(method, url, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return code, b
}

func try(method, url string, body []byte) (int, []byte, error) {
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// mustJSON decodes a 2xx answer into v.
func mustJSON(t testing.TB, code int, body []byte, v any) {
	t.Helper()
	if code/100 != 2 {
		t.Fatalf("status %d: %s", code, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
}

type leaseJSON struct {
	ID        string `json:"id"`
	TTL       int64  `json:"ttl"`
	Remaining int64  `json:"remaining"`
	Name      string `json:"name"`
}

type kvJSON struct {
	Key         string `json:"key"`
	Value       string `json:"value"`
	ModRevision int64  `json:"mod_revision"`
	Lease       string `json:"lease"`
}

type listJSON struct {
	Revision int64    `json:"revision"`
	KVs      []kvJSON `json:"kvs"`
	More     bool     `json:"more"`
}

func grant(t testing.TB, base string, ttl int, name string) leaseJSON {
	t.Helper()
	var l leaseJSON
	code, b := do(t, "POST", base+"/v1/leases", []byte(fmt.Sprintf(`{"ttl":%d,"name":%q}`, ttl, name)))
	mustJSON(t, code, b, &l)
	return l
}
