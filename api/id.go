package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// LeaseID is a lease's 64-bit snowflake ID. On the wire it is a decimal
// string ("1728394857362391040"); a JSON number is accepted too. 0 means
// no lease.
type LeaseID int64

// String is the ID's decimal form, as the API writes it.
func (id LeaseID) String() string { return strconv.FormatInt(int64(id), 10) }

// MarshalJSON writes the ID as a decimal string.
func (id LeaseID) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 22) // quotes and "-9223372036854775808"
	b = append(b, '"')
	b = strconv.AppendInt(b, int64(id), 10)
	return append(b, '"'), nil
}

// UnmarshalJSON reads a decimal string or a number, strictly: null and 0
// are the zero ID, anything else must be ParseLeaseID's canonical form, so
// that every ID has exactly one spelling.
func (id *LeaseID) UnmarshalJSON(b []byte) error {
	s := string(b)
	if s == "null" {
		*id = 0
		return nil
	}
	switch n := len(b); {
	case n >= 2 && b[0] == '"' && b[n-1] == '"' && bytes.IndexByte(b, '\\') < 0:
		// A plain string (every canonical ID): its bytes are the text.
		s = s[1 : n-1]
	case n >= 2 && b[0] == '"':
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
	}
	if s == "0" {
		*id = 0
		return nil
	}
	v, err := ParseLeaseID(s)
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// ParseLeaseID parses a lease ID as it appears in a URL or JSON: a
// positive int64 in canonical decimal (digits only, no sign, no leading
// zero).
func ParseLeaseID(s string) (LeaseID, error) {
	if s == "" {
		return 0, fmt.Errorf("lease id is empty")
	}
	if s[0] == '0' || !allDigits(s) {
		return 0, fmt.Errorf("lease id %q is not a positive decimal integer", clip(s))
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("lease id %q is out of range", clip(s))
	}
	return LeaseID(v), nil
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// clip shortens input quoted in an error message.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
