package grpcresolver

import (
	"log/slog"
	"maps"
	"net/url"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/resolver"

	"github.com/rosterhq/roster/client"
)

func TestParseValue(t *testing.T) {
	tests := []struct {
		value string
		addr  string
		md    map[string]string
		bad   bool
	}{
		{value: "127.0.0.1:9000", addr: "127.0.0.1:9000"},
		{value: "  host.example:443\n", addr: "host.example:443"},
		{value: "[::1]:9000", addr: "[::1]:9000"},
		{value: `"10.0.0.1:80"`, addr: "10.0.0.1:80"},
		{value: `{"addr":"10.0.0.1:80"}`, addr: "10.0.0.1:80"},
		{value: `{"address":"10.0.0.2:80"}`, addr: "10.0.0.2:80"},
		{value: `{"grpc_addr":"10.0.0.3:81","addr":"10.0.0.3:80"}`, addr: "10.0.0.3:81"},
		{value: `{"addr":"10.0.0.3:80","address":"10.0.0.4:80"}`, addr: "10.0.0.3:80"},
		{
			value: `{"addr":"10.0.0.1:80","metadata":{"zone":"b","weight":3,"tags":["x", "y"],"on":true}}`,
			addr:  "10.0.0.1:80",
			md:    map[string]string{"zone": "b", "weight": "3", "tags": `["x","y"]`, "on": "true"},
		},
		{value: `{"addr":"10.0.0.1:80","attributes":{"zone":"c"}}`, addr: "10.0.0.1:80", md: map[string]string{"zone": "c"}},
		{value: `{"addr":"10.0.0.1:80","metadata":"not an object"}`, addr: "10.0.0.1:80"},
		{value: `{"addr":"10.0.0.1:80","metadata":{}}`, addr: "10.0.0.1:80"},

		{value: "", bad: true},
		{value: "   ", bad: true},
		{value: "not an address", bad: true},
		{value: "localhost", bad: true},
		{value: ":9000", bad: true},
		{value: "host:", bad: true},
		{value: "host:0", bad: true},
		{value: "host:70000", bad: true},
		{value: "host:http", bad: true},
		{value: "http://host:80", bad: true},
		{value: "host:80/path", bad: true},
		{value: "::1:80", bad: true},
		{value: "\xff\xfe:80", bad: true},
		{value: `{"addr":`, bad: true},
		{value: `{"name":"x"}`, bad: true},
		{value: `{"addr":8080}`, bad: true},
		{value: `{"addr":"nohost"}`, bad: true},
		{value: `{"grpc_addr":"bad","addr":"10.0.0.1:80"}`, bad: true},
		{value: `"unterminated`, bad: true},
		{value: `[1,2]`, bad: true},
	}
	for _, tt := range tests {
		addr, md, err := parseValue([]byte(tt.value))
		if tt.bad {
			if err == nil {
				t.Errorf("parseValue(%q) = %q, %v; want an error", tt.value, addr, md)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseValue(%q): %v", tt.value, err)
			continue
		}
		if addr != tt.addr || !maps.Equal(md, tt.md) {
			t.Errorf("parseValue(%q) = %q, %v; want %q, %v", tt.value, addr, md, tt.addr, tt.md)
		}
	}
}

func TestPrefixOf(t *testing.T) {
	tests := []struct {
		target string
		prefix string
		bad    bool
	}{
		{target: "roster:///services/api/", prefix: "/services/api/"},
		{target: "roster:services/api/", prefix: "/services/api/"},
		{target: "roster:/services/api/", prefix: "/services/api/"},
		{target: "roster:///services/api", prefix: "/services/api"},
		{target: "roster:///services/my%20api/", prefix: "/services/my api/"},
		{target: "roster:services/my%20api/", prefix: "/services/my api/"},
		{target: "roster:///services/api/?x=y", prefix: "/services/api/"},
		{target: "roster://services/api/", bad: true},
		{target: "roster:///", bad: true},
		{target: "roster:", bad: true},
		{target: "roster:///" + strings.Repeat("k", maxKeyLen), bad: true},
		{target: "roster:///a%00b", bad: true},
	}
	for _, tt := range tests {
		u, err := url.Parse(tt.target)
		if err != nil {
			t.Fatalf("url.Parse(%q): %v", tt.target, err)
		}
		p, err := prefixOf(resolver.Target{URL: *u})
		if tt.bad {
			if err == nil {
				t.Errorf("prefixOf(%q) = %q; want an error", tt.target, p)
			}
			continue
		}
		if err != nil || p != tt.prefix {
			t.Errorf("prefixOf(%q) = %q, %v; want %q", tt.target, p, err, tt.prefix)
		}
	}
}

func TestAddressAttributes(t *testing.T) {
	a := newAddress("/services/api/a", "10.0.0.1:80", map[string]string{"zone": "b"})
	if k, ok := InstanceKey(a); !ok || k != "/services/api/a" {
		t.Errorf("InstanceKey = %q, %v", k, ok)
	}
	md, ok := Metadata(a)
	if !ok || md["zone"] != "b" {
		t.Errorf("Metadata = %v, %v", md, ok)
	}
	md["zone"] = "changed" // a copy: must not leak into the address
	if md2, _ := Metadata(a); md2["zone"] != "b" {
		t.Errorf("Metadata returned a shared map")
	}
	// Equal must work on the attribute values (a bare map would panic).
	b := newAddress("/services/api/a", "10.0.0.1:80", map[string]string{"zone": "b"})
	if !a.Equal(b) {
		t.Errorf("identical addresses differ")
	}
	c := newAddress("/services/api/a", "10.0.0.1:80", map[string]string{"zone": "c"})
	if a.Equal(c) {
		t.Errorf("addresses with different metadata are equal")
	}
	plain := newAddress("/services/api/p", "10.0.0.1:80", nil)
	if _, ok := Metadata(plain); ok {
		t.Errorf("Metadata of an address without metadata reports true")
	}
	if _, ok := InstanceKey(resolver.Address{Addr: "x:1"}); ok {
		t.Errorf("InstanceKey of a foreign address reports true")
	}
}

// fakeCC records what a resolver hands to grpc.
type fakeCC struct {
	resolver.ClientConn
	states []resolver.State
	errs   []error
}

func (f *fakeCC) UpdateState(s resolver.State) error { f.states = append(f.states, s); return nil }
func (f *fakeCC) ReportError(err error)              { f.errs = append(f.errs, err) }

func TestAddressesSortedDeduplicatedSkipping(t *testing.T) {
	var logs strings.Builder
	cc := &fakeCC{}
	r := &rosterResolver{cc: cc, log: slog.New(slog.NewTextHandler(&logs, nil)), cache: map[string]cached{}}
	kvs := []client.KV{
		{Key: "/s/a", Value: []byte("10.0.0.9:80"), ModRevision: 1},
		{Key: "/s/b", Value: []byte(`{"addr":"10.0.0.1:80","metadata":{"zone":"b"}}`), ModRevision: 2},
		{Key: "/s/c", Value: []byte("garbage"), ModRevision: 3},
		{Key: "/s/d", Value: []byte(`{"addr":"10.0.0.9:80"}`), ModRevision: 4}, // same address as /s/a
		{Key: "/s/e", Value: []byte(`{"address":"10.0.0.5:80"}`), ModRevision: 5},
	}
	addrs := r.addresses(kvs)
	var got []string
	for _, a := range addrs {
		k, _ := InstanceKey(a)
		got = append(got, a.Addr+"="+k)
	}
	want := []string{"10.0.0.1:80=/s/b", "10.0.0.5:80=/s/e", "10.0.0.9:80=/s/a"}
	if !slices.Equal(got, want) {
		t.Fatalf("addresses = %v, want %v", got, want)
	}
	if n := strings.Count(logs.String(), "key=/s/c"); n != 1 {
		t.Fatalf("invalid value logged %d times, want 1; logs:\n%s", n, logs.String())
	}

	// The same set again: parsed from the cache, the invalid value not
	// logged again, and grpc not told twice.
	r.push(addrs)
	r.push(r.addresses(slices.Clone(kvs)))
	if n := strings.Count(logs.String(), "key=/s/c"); n != 1 {
		t.Fatalf("invalid value logged %d times after a re-read, want 1", n)
	}
	if len(cc.states) != 1 {
		t.Fatalf("UpdateState called %d times for one set, want 1", len(cc.states))
	}
	// A changed value is re-parsed and handed on.
	kvs[2] = client.KV{Key: "/s/c", Value: []byte("10.0.0.3:80"), ModRevision: 6}
	r.push(r.addresses(kvs))
	if len(cc.states) != 2 || len(cc.states[1].Addresses) != 4 {
		t.Fatalf("after fixing /s/c: %d updates, last %v", len(cc.states), cc.states[len(cc.states)-1].Addresses)
	}
	// Metadata changes count as changes; an empty set is handed on too.
	kvs[1].Value, kvs[1].ModRevision = []byte(`{"addr":"10.0.0.1:80","metadata":{"zone":"c"}}`), 7
	r.push(r.addresses(kvs))
	r.push(r.addresses(nil))
	if len(cc.states) != 4 || len(cc.states[3].Addresses) != 0 {
		t.Fatalf("got %d updates, want 4 ending with an empty one", len(cc.states))
	}
	if len(r.cache) != 0 {
		t.Fatalf("cache keeps %d departed keys", len(r.cache))
	}
}
