package fsm_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/rosterhq/roster/fsm"
)

// FuzzDecode checks Decode never panics, fails only with ErrDecode, and
// that what it accepts survives an Encode/Decode round trip unchanged.
//
//	go test -run '^$' -fuzz=FuzzDecode ./fsm/
func FuzzDecode(f *testing.F) {
	for _, tc := range codecCases {
		f.Add(fsm.Encode(tc.cmd))
	}
	for _, b := range [][]byte{
		nil,
		{1},
		{1, 0},
		{2, 4},
		{1, 4, 0x80},
		{1, 4, 0x0a, 0x05, '/'},
		{1, 5, 0x10, 0x02},
		{1, 7, 0x09, 0, 0, 0, 0, 0, 0, 0, 0},
		{1, 3, 0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
		[]byte("\x01\x04garbage garbage"),
	} {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := fsm.Decode(b)
		if err != nil {
			if !errors.Is(err, fsm.ErrDecode) {
				t.Fatalf("Decode(%x): error %v is not ErrDecode", b, err)
			}
			if c != nil {
				t.Fatalf("Decode(%x): command %#v returned with error", b, c)
			}
			return
		}
		if c == nil {
			t.Fatalf("Decode(%x): nil command without error", b)
		}
		enc := fsm.Encode(c)
		c2, err := fsm.Decode(enc)
		if err != nil {
			t.Fatalf("Decode(Encode(%#v)) = %v (bytes %x)", c, err, enc)
		}
		if !reflect.DeepEqual(normalize(c), normalize(c2)) {
			t.Fatalf("round trip changed the command:\n first  %#v\n second %#v", c, c2)
		}
		// Encoding is canonical from then on.
		if enc2 := fsm.Encode(c2); string(enc2) != string(enc) {
			t.Fatalf("encoding not stable: %x then %x", enc, enc2)
		}
	})
}
