package api

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestLeaseIDJSON(t *testing.T) {
	b, err := json.Marshal(struct {
		ID LeaseID `json:"id"`
	}{1728394857362391040})
	if err != nil || string(b) != `{"id":"1728394857362391040"}` {
		t.Fatalf("marshal: %s, %v", b, err)
	}
	for in, want := range map[string]LeaseID{
		`"1728394857362391040"`: 1728394857362391040,
		`1728394857362391040`:   1728394857362391040,
		`"0"`:                   0,
		`0`:                     0,
		`null`:                  0,
		`"\u0031\u0032"`:        12, // escapes are still JSON's
	} {
		var id LeaseID
		if err := json.Unmarshal([]byte(in), &id); err != nil || id != want {
			t.Errorf("unmarshal %s: %d, %v; want %d", in, id, err, want)
		}
	}
	// One spelling per ID: a sign, a leading zero, an empty string or
	// anything out of range is refused.
	for _, in := range []string{`""`, `"-5"`, `"+5"`, `"05"`, `"1e3"`, `1.5`, `"9223372036854775808"`, `"x"`, `true`, `"12`, `"\u002d5"`} {
		var id LeaseID
		if err := json.Unmarshal([]byte(in), &id); err == nil {
			t.Errorf("unmarshal %s: accepted as %d", in, id)
		}
	}
	if _, err := ParseLeaseID(strings.Repeat("9", 100)); err == nil || len(err.Error()) > 120 {
		t.Errorf("a long bad ID: %v (the message quotes it clipped)", err)
	}
}

func TestKVValue(t *testing.T) {
	for _, v := range [][]byte{[]byte("text ✓"), {0xff, 0x00, 'x'}, {}} {
		var k KV
		k.SetValue(v)
		b, err := json.Marshal(k)
		if err != nil {
			t.Fatal(err)
		}
		var back KV
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		got, err := back.Bytes()
		if err != nil || string(got) != string(v) || got == nil {
			t.Errorf("%q → %s → %q, %v", v, b, got, err)
		}
		text := strings.Contains(string(b), `"value":`)
		if text != (k.ValueBase64 == nil) || strings.Contains(string(b), `"lease"`) {
			t.Errorf("%q encoded as %s", v, b)
		}
	}
	var none KV
	if v, err := none.Bytes(); v != nil || err != nil {
		t.Errorf("no value fields: %q, %v", v, err)
	}
	bad := "%%%"
	if _, err := (&KV{Key: "/k", ValueBase64: &bad}).Bytes(); err == nil {
		t.Error("bad base64 accepted")
	}
	b, _ := json.Marshal(KV{Key: "/k", Lease: 7})
	if string(b) != `{"key":"/k","create_revision":0,"mod_revision":0,"version":0,"lease":"7"}` {
		t.Errorf("kv with lease: %s", b)
	}
}
