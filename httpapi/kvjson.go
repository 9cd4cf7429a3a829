package httpapi

import (
	"encoding/base64"
	"strconv"
	"unicode/utf8"
	"unsafe"

	"github.com/rosterhq/roster/fsm"
)

// appendKV appends kv as JSON, byte for byte what encoding/json writes for
// kvOf(kv, keysOnly) with HTML escaping off (TestAppendKVMatchesEncodingJSON
// holds it to that). Listings write thousands of kvs per second; going
// through reflection for each was a third of a follower's CPU under
// peerbench's lookup workload.
func appendKV(b []byte, kv *fsm.KV, keysOnly bool) []byte {
	b = append(b, `{"key":`...)
	b = appendJSONString(b, kv.Key)
	if !keysOnly {
		// A published KV is never modified, so its value can be read as a
		// string in place: converting would copy every value of a listing.
		v := unsafe.String(unsafe.SliceData(kv.Value), len(kv.Value))
		if plainPrefix(v) == len(v) || utf8.ValidString(v) {
			b = append(b, `,"value":`...)
			b = appendJSONString(b, v)
		} else {
			b = append(b, `,"value_base64":"`...)
			b = base64.StdEncoding.AppendEncode(b, kv.Value)
			b = append(b, '"')
		}
	}
	b = append(b, `,"create_revision":`...)
	b = strconv.AppendInt(b, kv.CreateRevision, 10)
	b = append(b, `,"mod_revision":`...)
	b = strconv.AppendInt(b, kv.ModRevision, 10)
	b = append(b, `,"version":`...)
	b = strconv.AppendInt(b, kv.Version, 10)
	if kv.Lease != 0 {
		b = append(b, `,"lease":"`...)
		b = strconv.AppendInt(b, kv.Lease, 10)
		b = append(b, '"')
	}
	return append(b, '}')
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string the way encoding/json does
// without HTML escaping: quote, backslash and control characters escaped
// (\b \f \n \r \t by name, the rest as \u00XX), invalid UTF-8 replaced by
// \ufffd, and U+2028 and U+2029 escaped.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := plainPrefix(s); i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			i += plainPrefix(s[i:])
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// Byte masks for plainPrefix's word-at-a-time test.
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// plainPrefix returns the length of the longest prefix of s made of
// printable ASCII other than '"' and '\\': the bytes JSON carries as they
// are. Values are mostly such text, so the encoder skips over runs of it
// 8 bytes at a time (BenchmarkAppendKV).
func plainPrefix(s string) int {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		w := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		// A byte is special when its high bit is set, when it is below
		// 0x20, or when it equals '"' or '\\' (a zero byte after XOR).
		// Each term has a byte's high bit set exactly for such a byte once
		// w's own high bits are known clear.
		special := w & highs
		special |= (w - ones*0x20) &^ w
		q, bs := w^(ones*'"'), w^(ones*'\\')
		special |= (q - ones) &^ q
		special |= (bs - ones) &^ bs
		if special&highs != 0 {
			break
		}
	}
	for ; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			return i
		}
	}
	return len(s)
}
