package fsm

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Limits of the contract (API.md).
const (
	MaxKeyBytes = 1024
	MinTTL      = 2
	MaxTTL      = 2_592_000 // 30 days
	MaxNameLen  = 1024
)

// ValidateKey checks a key: UTF-8, begins with '/', at most MaxKeyBytes, no
// NUL byte.
func ValidateKey(key string) error {
	switch {
	case key == "":
		return invalid("key is empty")
	case key[0] != '/':
		return invalid("key %q must begin with '/'", truncate(key))
	case len(key) > MaxKeyBytes:
		return invalid("key is %d bytes, the limit is %d", len(key), MaxKeyBytes)
	case strings.IndexByte(key, 0) >= 0:
		return invalid("key contains a NUL byte")
	case !utf8.ValidString(key):
		return invalid("key is not valid UTF-8")
	}
	return nil
}

// ValidatePrefix checks a prefix for a range operation: like a key, but the
// empty prefix is refused as well as anything not starting with '/'.
func ValidatePrefix(prefix string) error { return ValidateKey(prefix) }

// ValidateTTL checks a lease TTL in seconds against the contract's range.
func ValidateTTL(ttl int64) error {
	if ttl < MinTTL || ttl > MaxTTL {
		return invalid("ttl %d out of range %d..%d seconds", ttl, MinTTL, MaxTTL)
	}
	return nil
}

// ValidateLeaseName checks an optional lease name.
func ValidateLeaseName(name string) error {
	switch {
	case len(name) > MaxNameLen:
		return invalid("lease name is %d bytes, the limit is %d", len(name), MaxNameLen)
	case strings.IndexByte(name, 0) >= 0:
		return invalid("lease name contains a NUL byte")
	case !utf8.ValidString(name):
		return invalid("lease name is not valid UTF-8")
	}
	return nil
}

// ErrCheckOutsideTxn refuses a Check that is not an operation of a Txn:
// it writes nothing, and its compare would decide nothing.
var ErrCheckOutsideTxn = fmt.Errorf("%w: a check compares a key only as an operation of a txn", ErrInvalidArgument)

// ValidateCheck checks a Check of a Txn: its key, and a revision not
// below 0 (0: the key must be absent).
func ValidateCheck(c Check) error {
	if err := ValidateKey(c.Key); err != nil {
		return err
	}
	if c.ModRevision < 0 {
		return invalid("check of %q: negative mod revision %d", truncate(c.Key), c.ModRevision)
	}
	return nil
}

// ValidatePutIf checks a Put's Only: a condition every replica of this
// version decodes. A proposer checks it before proposing: an entry no
// replica can decode stops every one of them.
func ValidatePutIf(p PutIf) error {
	switch p {
	case PutAlways, PutIfAbsent, PutIfPresent:
		return nil
	}
	return invalid("bad put condition %d", p)
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
