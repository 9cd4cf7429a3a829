package fsm_test

import (
	"errors"
	"math"
	"reflect"
	"testing"

	"github.com/rosterhq/roster/fsm"
	"google.golang.org/protobuf/encoding/protowire"
)

// codecCases covers every command type with zero values, negative and
// extreme numbers, binary bytes and strings.
var codecCases = []struct {
	name string
	cmd  fsm.Command
}{
	{"grant/zero", fsm.Grant{}},
	{"grant/full", fsm.Grant{ID: 1728394857362391040, TTL: 10, Name: "/esq/node-1"}},
	{"grant/negative", fsm.Grant{ID: -1, TTL: math.MinInt64, Name: "ünïcödé"}},
	{"grant/max", fsm.Grant{ID: math.MaxInt64, TTL: fsm.MaxTTL}},
	{"grant/slack", fsm.Grant{ID: 5, TTL: 10, Name: "n", SlackMs: 750}},
	{"grant/negative-slack", fsm.Grant{ID: 5, TTL: 10, SlackMs: -1}},
	{"revoke/zero", fsm.Revoke{}},
	{"revoke/id", fsm.Revoke{ID: 42}},
	{"revoke/negative", fsm.Revoke{ID: math.MinInt64}},
	{"keepalive/nil", fsm.KeepAlive{}},
	{"keepalive/one", fsm.KeepAlive{IDs: []int64{7}}},
	{"keepalive/many", fsm.KeepAlive{IDs: []int64{3, 1, 0, -5, math.MaxInt64, math.MinInt64}}},
	{"keepalive/slack", fsm.KeepAlive{IDs: []int64{1, 2}, SlackMs: 499}},
	{"keepalive/slack-only", fsm.KeepAlive{SlackMs: math.MaxInt64}},
	{"put/zero", fsm.Put{}},
	{"put/plain", fsm.Put{Key: "/a", Value: []byte("hello")}},
	{"put/binary", fsm.Put{Key: "/bin", Value: []byte{0, 1, 2, 0xff, 0xfe, 0x80, 0}}},
	{"put/all", fsm.Put{Key: "/k", Value: []byte("v"), Lease: 99, HasCAS: true, CAS: 12, IfChanged: true}},
	{"put/cas-zero", fsm.Put{Key: "/k", HasCAS: true}},
	{"put/drop-old-lease", fsm.Put{Key: "/k", Lease: 4, Strict: true, DropOldLease: true}},
	{"put/negative", fsm.Put{Key: "/k", Lease: -3, CAS: -9}},
	{"put/big", fsm.Put{Key: "/big", Value: make([]byte, 70000)}},
	{"delete/zero", fsm.Delete{}},
	{"delete/key", fsm.Delete{Key: "/a"}},
	{"delete/prefix", fsm.Delete{Key: "/a/", Prefix: true}},
	{"delete/cas", fsm.Delete{Key: "/a", HasCAS: true, CAS: 5}},
	{"delete/cas-zero", fsm.Delete{Key: "/a", HasCAS: true}},
	{"delete/drop-old-lease", fsm.Delete{Key: "/a", DropOldLease: true}},
	{"incr/zero", fsm.Incr{}},
	{"incr/up", fsm.Incr{Key: "/n", By: 1}},
	{"incr/down", fsm.Incr{Key: "/n", By: -1000}},
	{"incr/min", fsm.Incr{Key: "/n", By: math.MinInt64}},
	{"incr/canonical", fsm.Incr{Key: "/n", By: 2, Canonical: true}},
	{"tick/zero", fsm.Tick{}},
	{"tick/full", fsm.Tick{ElapsedMs: 500, Limit: 1000}},
	{"tick/negative", fsm.Tick{ElapsedMs: -1, Limit: -1}},
	{"setmember/zero", fsm.SetMember{}},
	{"setmember/full", fsm.SetMember{Member: fsm.Member{ID: "node01", RaftAddr: "127.0.0.1:8101", HTTPAddr: "127.0.0.1:8001", Node: 1023}}},
	{"delmember/zero", fsm.DelMember{}},
	{"delmember/id", fsm.DelMember{ID: "node01"}},
	{"txn/empty", fsm.Txn{}},
	{"txn/ops", fsm.Txn{Ops: []fsm.Command{
		fsm.Grant{ID: 77, TTL: 10, Name: "n", SlackMs: 500},
		fsm.Put{Key: "/b", Value: []byte{0, 0xff}, Lease: 77, HasCAS: true},
		fsm.Delete{Key: "/a", HasCAS: true, CAS: 3},
		fsm.Put{Key: "/a2", Value: []byte("v"), IfChanged: true},
		fsm.Put{Key: "/a3", Lease: 77, DropOldLease: true},
		fsm.Delete{Key: "/a4", DropOldLease: true},
	}}},
	{"txn/zero-ops", fsm.Txn{Ops: []fsm.Command{fsm.Put{}, fsm.Delete{}, fsm.Grant{}}}},
	{"txn/prefix-delete", fsm.Txn{Ops: []fsm.Command{fsm.Delete{Key: "/p/", Prefix: true}}}}, // encodes; apply refuses it
	{"check/zero", fsm.Check{}}, // alone it encodes; apply refuses it
	{"check/full", fsm.Check{Key: "/cfg", ModRevision: 12}},
	{"check/negative", fsm.Check{Key: "/cfg", ModRevision: math.MinInt64}},
	{"txn/checks", fsm.Txn{Ops: []fsm.Command{
		fsm.Check{Key: "/read", ModRevision: 7},
		fsm.Check{Key: "/absent"},
		fsm.Put{Key: "/w", Value: []byte("v"), HasCAS: true, CAS: 3},
		fsm.Check{},
	}}},
	{"put/if-absent", fsm.Put{Key: "/k", Value: []byte("v"), Only: fsm.PutIfAbsent, DropOldLease: true}},
	{"put/if-present", fsm.Put{Key: "/k", Only: fsm.PutIfPresent}},
	{"txn/apply-time", fsm.Txn{Ops: []fsm.Command{
		fsm.Incr{Key: "/n", By: -3, Canonical: true},
		fsm.Put{Key: "/nx", Value: []byte("v"), Only: fsm.PutIfAbsent, DropOldLease: true},
		fsm.Put{Key: "/xx", Only: fsm.PutIfPresent},
		fsm.Incr{},
		fsm.Check{Key: "/c", ModRevision: 4},
	}}},
}

// normalize maps the values Encode cannot tell apart (empty vs nil) to one
// form, so that round trips compare by meaning.
func normalize(c fsm.Command) fsm.Command {
	switch c := c.(type) {
	case fsm.Put:
		if len(c.Value) == 0 {
			c.Value = nil
		}
		return c
	case fsm.KeepAlive:
		if len(c.IDs) == 0 {
			c.IDs = nil
		}
		return c
	case fsm.Txn:
		if len(c.Ops) == 0 {
			return fsm.Txn{}
		}
		ops := make([]fsm.Command, len(c.Ops))
		for i, op := range c.Ops {
			ops[i] = normalize(op)
		}
		return fsm.Txn{Ops: ops}
	}
	return c
}

func TestCodecRoundTrip(t *testing.T) {
	for _, tc := range codecCases {
		t.Run(tc.name, func(t *testing.T) {
			b := fsm.Encode(tc.cmd)
			if len(b) < 2 || b[0] != 1 {
				t.Fatalf("encoding %x lacks the version byte", b)
			}
			got, err := fsm.Decode(b)
			if err != nil {
				t.Fatalf("Decode(%x): %v", b, err)
			}
			if reflect.TypeOf(got) != reflect.TypeOf(tc.cmd) {
				t.Fatalf("decoded %T, want %T", got, tc.cmd)
			}
			if want := normalize(tc.cmd); !reflect.DeepEqual(got, want) {
				t.Fatalf("round trip:\n got  %#v\n want %#v", got, want)
			}
			// Encoding is canonical: encoding the decoded value gives the
			// same bytes.
			if b2 := fsm.Encode(got); string(b2) != string(b) {
				t.Fatalf("re-encoding differs:\n %x\n %x", b, b2)
			}
		})
	}
}

func TestCodecEmptyAndNilEncodeAlike(t *testing.T) {
	pairs := [][2]fsm.Command{
		{fsm.Put{Key: "/a", Value: nil}, fsm.Put{Key: "/a", Value: []byte{}}},
		{fsm.KeepAlive{IDs: nil}, fsm.KeepAlive{IDs: []int64{}}},
	}
	for _, p := range pairs {
		if a, b := fsm.Encode(p[0]), fsm.Encode(p[1]); string(a) != string(b) {
			t.Errorf("%#v and %#v encode differently: %x vs %x", p[0], p[1], a, b)
		}
	}
	// A decoded empty value is nil whether the field was omitted or present
	// with zero length.
	b := []byte{1, 4}
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendString(b, "/a")
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	b = protowire.AppendBytes(b, nil)
	c, err := fsm.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if p := c.(fsm.Put); p.Key != "/a" || p.Value != nil {
		t.Fatalf("decoded %#v", p)
	}
}

// TestDecodeDoesNotAlias checks a decoded value does not share memory with
// the entry (raft may reuse the buffer).
func TestDecodeDoesNotAlias(t *testing.T) {
	b := fsm.Encode(fsm.Put{Key: "/a", Value: []byte("value")})
	c, err := fsm.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = 'X'
	}
	if p := c.(fsm.Put); p.Key != "/a" || string(p.Value) != "value" {
		t.Fatalf("decoded command changed with its buffer: %#v", p)
	}
}

// wire builds an entry: version, type, then raw field bytes.
func wire(version, typ byte, fields ...[]byte) []byte {
	b := []byte{version, typ}
	for _, f := range fields {
		b = append(b, f...)
	}
	return b
}

func varintField(n protowire.Number, v uint64) []byte {
	b := protowire.AppendTag(nil, n, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func bytesField(n protowire.Number, v string) []byte {
	b := protowire.AppendTag(nil, n, protowire.BytesType)
	return protowire.AppendString(b, v)
}

func TestDecodeErrors(t *testing.T) {
	tag := func(n protowire.Number, typ protowire.Type) []byte { return protowire.AppendTag(nil, n, typ) }
	cases := []struct {
		name string
		b    []byte
	}{
		{"nil", nil},
		{"empty", []byte{}},
		{"one byte", []byte{1}},
		{"version 0", wire(0, 4)},
		{"version 2", wire(2, 4, bytesField(1, "/a"))},
		{"version 255", wire(255, 1)},
		{"type 0", wire(1, 0)},
		{"type 16", wire(1, 16)},
		{"type 255", wire(1, 255)},
		{"unknown field grant", wire(1, 1, varintField(5, 1))},
		{"unknown field revoke", wire(1, 2, varintField(2, 1))},
		{"unknown field keepalive", wire(1, 3, varintField(4, 1))},
		{"wire type bytes for slack", wire(1, 3, bytesField(2, "\x01"))},
		{"unknown field put", wire(1, 4, varintField(10, 1))},
		{"put condition 0", wire(1, 4, varintField(9, 0))},
		{"put condition 3", wire(1, 4, varintField(9, 3))},
		{"put condition huge", wire(1, 4, varintField(9, math.MaxUint64))},
		{"put condition as bytes", wire(1, 4, bytesField(9, "\x01"))},
		{"txn holding a tick", wire(1, 10, bytesField(7, ""))},
		{"txn holding a txn", wire(1, 10, bytesField(10, ""))},
		{"txn incr unknown field", wire(1, 10, bytesField(6, string(varintField(4, 1))))},
		{"unknown field delete", wire(1, 5, varintField(6, 1))},
		{"unknown field incr", wire(1, 6, varintField(4, 1))},
		{"unknown field tick", wire(1, 7, varintField(3, 1))},
		{"unknown field setmember", wire(1, 8, varintField(5, 1))},
		{"unknown field delmember", wire(1, 9, varintField(2, 1))},
		{"huge field number", wire(1, 4, varintField(protowire.MaxValidNumber, 1))},
		{"field number 0", wire(1, 4, []byte{0x00, 0x01})},
		{"wire type bytes for varint", wire(1, 1, bytesField(1, "x"))},
		{"wire type varint for string", wire(1, 4, varintField(1, 1))},
		{"wire type varint for value", wire(1, 4, varintField(2, 1))},
		{"wire type bytes for bool", wire(1, 5, bytesField(2, "\x01"))},
		{"wire type bytes for keepalive id", wire(1, 3, bytesField(1, "\x01"))},
		{"fixed64 field", wire(1, 7, tag(1, protowire.Fixed64Type), make([]byte, 8))},
		{"fixed32 field", wire(1, 7, tag(1, protowire.Fixed32Type), make([]byte, 4))},
		{"start group", wire(1, 7, tag(1, protowire.StartGroupType))},
		{"end group", wire(1, 7, tag(1, protowire.EndGroupType))},
		{"truncated tag", wire(1, 4, []byte{0x80})},
		{"truncated varint", wire(1, 7, tag(1, protowire.VarintType), []byte{0xff, 0xff})},
		{"varint missing", wire(1, 7, tag(1, protowire.VarintType))},
		{"varint overflow", wire(1, 7, tag(1, protowire.VarintType), []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f})},
		{"truncated bytes", wire(1, 4, tag(1, protowire.BytesType), []byte{5, '/', 'a'})},
		{"truncated bytes length", wire(1, 4, tag(1, protowire.BytesType), []byte{0x80})},
		{"bytes length missing", wire(1, 4, tag(1, protowire.BytesType))},
		{"bool 2 put hascas", wire(1, 4, varintField(4, 2))},
		{"bool 2 put ifchanged", wire(1, 4, varintField(6, 2))},
		{"bool 2 delete prefix", wire(1, 5, varintField(2, 2))},
		{"bool huge delete hascas", wire(1, 5, varintField(3, math.MaxUint64))},
		{"valid then garbage", append(fsm.Encode(fsm.Put{Key: "/a", Value: []byte("v")}), 0xff)},
		{"valid then unknown", append(fsm.Encode(fsm.Tick{ElapsedMs: 5}), varintField(9, 1)...)},
		{"txn varint op", wire(1, 10, varintField(4, 1))},
		{"txn tick op", wire(1, 10, bytesField(7, ""))},
		{"txn revoke op", wire(1, 10, bytesField(2, ""))},
		{"txn nested txn", wire(1, 10, bytesField(10, ""))},
		{"txn op number wraps to put", wire(1, 10, bytesField(260, ""))},
		{"txn op with unknown field", wire(1, 10, bytesField(4, string(varintField(10, 1))))},
		{"txn op truncated", wire(1, 10, bytesField(4, string(tag(1, protowire.BytesType))))},
		{"txn valid op then garbage", wire(1, 10, bytesField(5, string(bytesField(1, "/a"))), []byte{0xff})},
		{"unknown field check", wire(1, 15, varintField(3, 1))},
		{"wire type varint for check key", wire(1, 15, varintField(1, 1))},
		{"wire type bytes for check revision", wire(1, 15, bytesField(2, "\x01"))},
		{"txn check op with unknown field", wire(1, 10, bytesField(15, string(varintField(3, 1))))},
		{"txn check op varint", wire(1, 10, varintField(15, 1))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := fsm.Decode(tc.b)
			if err == nil {
				t.Fatalf("Decode(%x) = %#v, want an error", tc.b, c)
			}
			if !errors.Is(err, fsm.ErrDecode) {
				t.Fatalf("Decode(%x) error %v is not ErrDecode", tc.b, err)
			}
			if c != nil {
				t.Fatalf("Decode(%x) returned %#v with its error", tc.b, c)
			}
		})
	}
}

// TestDecodeAcceptsRepeatedAndReordered documents that field order does not
// matter and the last value of a repeated scalar wins, as in protobuf.
func TestDecodeAcceptsRepeatedAndReordered(t *testing.T) {
	b := wire(1, 4, varintField(3, 9), bytesField(2, "v"), bytesField(1, "/x"), bytesField(1, "/y"))
	c, err := fsm.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	want := fsm.Put{Key: "/y", Value: []byte("v"), Lease: 9}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("got %#v, want %#v", c, want)
	}
	// Keep-alive IDs are repeated: every occurrence counts, in order.
	b = wire(1, 3, varintField(1, 5), varintField(1, 3), varintField(1, 5))
	c, err = fsm.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if want := (fsm.KeepAlive{IDs: []int64{5, 3, 5}}); !reflect.DeepEqual(c, want) {
		t.Fatalf("got %#v, want %#v", c, want)
	}
}

// TestEncodeKnownBytes pins the wire format: old log entries must decode
// forever, so a change here is a compatibility break.
func TestEncodeKnownBytes(t *testing.T) {
	cases := []struct {
		cmd  fsm.Command
		want string
	}{
		{fsm.Grant{ID: 1, TTL: 10, Name: "n"}, "\x01\x01\x08\x01\x10\x0a\x1a\x01n"},
		{fsm.Revoke{ID: 300}, "\x01\x02\x08\xac\x02"},
		{fsm.Grant{ID: 1, TTL: 2, SlackMs: 3}, "\x01\x01\x08\x01\x10\x02\x20\x03"},
		{fsm.KeepAlive{IDs: []int64{1, 2}}, "\x01\x03\x08\x01\x08\x02"},
		{fsm.KeepAlive{IDs: []int64{1}, SlackMs: 5}, "\x01\x03\x08\x01\x10\x05"},
		{fsm.Put{Key: "/a", Value: []byte("v"), Lease: 2, HasCAS: true, CAS: 3, IfChanged: true}, "\x01\x04\x0a\x02/a\x12\x01v\x18\x02\x20\x01\x28\x03\x30\x01"},
		{fsm.Delete{Key: "/a", Prefix: true, HasCAS: true, CAS: 4}, "\x01\x05\x0a\x02/a\x10\x01\x18\x01\x20\x04"},
		{fsm.Put{Key: "/a", Strict: true, DropOldLease: true}, "\x01\x04\x0a\x02/a\x38\x01\x40\x01"},
		{fsm.Delete{Key: "/a", DropOldLease: true}, "\x01\x05\x0a\x02/a\x28\x01"},
		{fsm.Incr{Key: "/n", By: -1}, "\x01\x06\x0a\x02/n\x10\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"},
		{fsm.Incr{Key: "/n", By: 1, Canonical: true}, "\x01\x06\x0a\x02/n\x10\x01\x18\x01"},
		{fsm.Tick{ElapsedMs: 500, Limit: 1}, "\x01\x07\x08\xf4\x03\x10\x01"},
		{fsm.SetMember{Member: fsm.Member{ID: "a", RaftAddr: "r", HTTPAddr: "h", Node: 1}}, "\x01\x08\x0a\x01a\x12\x01r\x1a\x01h\x20\x01"},
		{fsm.DelMember{ID: "a"}, "\x01\x09\x0a\x01a"},
		{fsm.Txn{Ops: []fsm.Command{fsm.Grant{ID: 1, TTL: 2}, fsm.Put{Key: "/a", Lease: 1}, fsm.Delete{}}},
			"\x01\x0a\x0a\x04\x08\x01\x10\x02\x22\x06\x0a\x02/a\x18\x01\x2a\x00"},
		{fsm.Check{Key: "/a", ModRevision: 5}, "\x01\x0f\x0a\x02/a\x10\x05"},
		{fsm.Txn{Ops: []fsm.Command{fsm.Check{Key: "/a"}, fsm.Put{Key: "/b"}}}, "\x01\x0a\x7a\x04\x0a\x02/a\x22\x04\x0a\x02/b"},
		// EXEC's apply-time operations: an Incr as a Txn's field 6, a
		// put's condition as its field 9.
		{fsm.Put{Key: "/a", Only: fsm.PutIfPresent}, "\x01\x04\x0a\x02/a\x48\x02"},
		{fsm.Txn{Ops: []fsm.Command{fsm.Incr{Key: "/n", By: 1, Canonical: true}, fsm.Put{Key: "/b", Only: fsm.PutIfAbsent}}},
			"\x01\x0a\x32\x08\x0a\x02/n\x10\x01\x18\x01\x22\x06\x0a\x02/b\x48\x01"},
	}
	for _, tc := range cases {
		if got := string(fsm.Encode(tc.cmd)); got != tc.want {
			t.Errorf("Encode(%#v) = %x, want %x", tc.cmd, got, tc.want)
		}
	}
}
