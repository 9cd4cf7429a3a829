package httpapi

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"

	"github.com/rosterhq/roster/api"
	"github.com/rosterhq/roster/fsm"
)

// TestAppendKVMatchesEncodingJSON: the hand-written encoder writes exactly
// the bytes encoding/json writes for the same kv.
func TestAppendKVMatchesEncodingJSON(t *testing.T) {
	values := [][]byte{
		nil, {}, []byte("plain"), []byte(`{"addr":"10.0.0.1:80","tags":["a<b>&c"]}`),
		[]byte("quote\" back\\ slash / nl\n cr\r tab\t bs\b ff\f nul\x00 esc\x1b del\x7f"),
		[]byte("ünïcödé ✓ 😀 \u2028 \u2029 \u2027 \u202a"), {0xff, 0xfe, 'x'}, []byte("bad \xc3 utf8"),
		{0xe2, 0x80, 0xa8}, bytes.Repeat([]byte{0x80}, 3),
	}
	keys := []string{"/a", "/services/api/node-1", "/q\"u\\o/\u2028/ü/\x01"}
	check := func(kv *fsm.KV, keysOnly bool) {
		t.Helper()
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(kvOf(kv, keysOnly)); err != nil {
			t.Fatal(err)
		}
		got := appendKV(nil, kv, keysOnly)
		if w := bytes.TrimSuffix(want.Bytes(), []byte("\n")); !bytes.Equal(got, w) {
			t.Fatalf("kv %+v keysOnly=%v:\n got  %s\n want %s", kv, keysOnly, got, w)
		}
	}
	for _, k := range keys {
		for _, v := range values {
			for _, lease := range []int64{0, 1728394857362391040} {
				kv := &fsm.KV{Key: k, Value: v, CreateRevision: 3, ModRevision: 1 << 40, Version: 2, Lease: lease}
				check(kv, false)
				check(kv, true)
			}
		}
	}
}

// FuzzAppendKV compares the encoders on arbitrary keys and values.
func FuzzAppendKV(f *testing.F) {
	f.Add("/k", []byte("v"), int64(1))
	f.Add("/\u2028\"", []byte{0xff, '\n'}, int64(0))
	f.Fuzz(func(t *testing.T, key string, value []byte, lease int64) {
		kv := &fsm.KV{Key: key, Value: value, CreateRevision: lease, ModRevision: -lease, Lease: lease}
		for _, keysOnly := range []bool{false, true} {
			var want bytes.Buffer
			enc := json.NewEncoder(&want)
			enc.SetEscapeHTML(false)
			if err := enc.Encode(kvOf(kv, keysOnly)); err != nil {
				t.Fatal(err)
			}
			if got := appendKV(nil, kv, keysOnly); !bytes.Equal(got, bytes.TrimSuffix(want.Bytes(), []byte("\n"))) {
				t.Fatalf("got %s\nwant %s", got, want.Bytes())
			}
		}
	})
}

// TestPlainPrefixFindsEverySpecialByte: the 8-bytes-at-a-time test never
// passes over a byte JSON must escape or check (a miss would send a raw
// quote or control byte), wherever in the word it sits, with plain bytes
// on both sides of every boundary value around it.
func TestPlainPrefixFindsEverySpecialByte(t *testing.T) {
	want := func(s string) int {
		for i := 0; i < len(s); i++ {
			if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
				return i
			}
		}
		return len(s)
	}
	fills := []byte{' ', '!', '#', '[', ']', '~', 0x7f, 'a'}
	var probes []byte
	for c := 0; c < 256; c++ {
		probes = append(probes, byte(c))
	}
	for _, fill := range fills {
		for n := 0; n <= 40; n++ {
			base := bytes.Repeat([]byte{fill}, n)
			if got := plainPrefix(string(base)); got != n {
				t.Fatalf("plainPrefix(%q) = %d, want %d", base, got, n)
			}
			for p := 0; p < n; p++ {
				for _, c := range probes {
					s := bytes.Clone(base)
					s[p] = c
					if got, w := plainPrefix(string(s)), want(string(s)); got != w {
						t.Fatalf("plainPrefix(%q) = %d, want %d", s, got, w)
					}
				}
			}
		}
	}
}

// BenchmarkAppendKV encodes a listing's entry with peerbench's 200-byte
// JSON value.
func BenchmarkAppendKV(b *testing.B) {
	v := []byte(`{"addr":"10.0.0.1:8080","zone":"eu-west-1a","meta":"` + string(bytes.Repeat([]byte("x"), 140)) + `"}`)
	kv := &fsm.KV{Key: "/services/svc-12/inst-123456", Value: v, CreateRevision: 12345, ModRevision: 12345, Version: 1, Lease: 1728394857362391040}
	buf := make([]byte, 0, 1024)
	b.SetBytes(int64(len(v)))
	b.ReportAllocs()
	for b.Loop() {
		buf = appendKV(buf[:0], kv, false)
	}
}

// TestAppendKeepAliveMatchesEncodingJSON: the batch keep-alive answer is
// the bytes encoding/json writes for the same api.KeepAliveResponse.
func TestAppendKeepAliveMatchesEncodingJSON(t *testing.T) {
	for _, tc := range []struct {
		got      []fsm.LeaseStatus
		notFound []int64
	}{
		{},
		{got: []fsm.LeaseStatus{{ID: 1728394857362391040, TTL: 30, Remaining: 30, Name: "ignored"}}},
		{notFound: []int64{7, math.MaxInt64}},
		{got: []fsm.LeaseStatus{{ID: 1, TTL: 1, Remaining: 0}, {ID: 2, TTL: 86400, Remaining: 86399}}, notFound: []int64{3}},
	} {
		resp := api.KeepAliveResponse{Leases: []api.Renewal{}, NotFound: []api.LeaseID{}}
		for _, id := range tc.notFound {
			resp.NotFound = append(resp.NotFound, api.LeaseID(id))
		}
		for _, st := range tc.got {
			resp.Leases = append(resp.Leases, renewed(st))
		}
		want, err := json.Marshal(resp)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendKeepAlive(nil, tc.got, tc.notFound); !bytes.Equal(got, want) {
			t.Errorf("appendKeepAlive = %s\nencoding/json  = %s", got, want)
		}
	}
}
