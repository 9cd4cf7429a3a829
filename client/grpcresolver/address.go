package grpcresolver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"google.golang.org/grpc/attributes"
	"google.golang.org/grpc/resolver"
)

// Attribute keys. Unexported types, so no other package can collide.
type (
	keyAttr      struct{}
	metadataAttr struct{}
)

// metadataValue wraps the metadata map so that attributes.Attributes can
// compare it (a map is not comparable with ==).
type metadataValue map[string]string

func (m metadataValue) Equal(o any) bool {
	om, ok := o.(metadataValue)
	return ok && maps.Equal(m, om)
}

// InstanceKey returns the registry key an address was resolved from, as
// set by this package on resolver.Address.Attributes. It is useful in a
// custom balancer or in interceptors that read the picked address.
func InstanceKey(addr resolver.Address) (string, bool) {
	k, ok := addr.Attributes.Value(keyAttr{}).(string)
	return k, ok
}

// Metadata returns the metadata of the instance an address was resolved
// from: the "metadata" (or "attributes") object of a JSON value, each
// member as a string (strings as they are, other JSON values in their
// compact JSON form). It reports false when the value carried none.
// The map is a copy and may be modified.
func Metadata(addr resolver.Address) (map[string]string, bool) {
	m, ok := addr.Attributes.Value(metadataAttr{}).(metadataValue)
	if !ok {
		return nil, false
	}
	return maps.Clone(map[string]string(m)), true
}

// addressFields are the members of a JSON value that name the address,
// in order of precedence: a service that registers both an HTTP "addr"
// and a "grpc_addr" is dialled on the latter.
var addressFields = []string{"grpc_addr", "addr", "address"}

// metadataFields are the members of a JSON value that carry metadata.
var metadataFields = []string{"metadata", "attributes"}

// parseValue reads the address (and metadata) out of an instance value:
// a plain "host:port", a JSON string "host:port", or a JSON object with
// "grpc_addr", "addr" or "address" and an optional "metadata" (or
// "attributes") object.
func parseValue(v []byte) (addr string, md map[string]string, err error) {
	v = bytes.TrimSpace(v)
	switch {
	case len(v) == 0:
		return "", nil, errors.New("empty value")
	case v[0] == '{':
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(v, &obj); err != nil {
			return "", nil, fmt.Errorf("invalid JSON: %w", err)
		}
		field := ""
		for _, f := range addressFields {
			if raw, ok := obj[f]; ok {
				if err := json.Unmarshal(raw, &addr); err != nil {
					return "", nil, fmt.Errorf("%q is not a string", f)
				}
				field = f
				break
			}
		}
		if field == "" {
			return "", nil, errors.New(`JSON value has no "grpc_addr", "addr" or "address"`)
		}
		if err := checkAddr(addr); err != nil {
			return "", nil, fmt.Errorf("%q: %w", field, err)
		}
		for _, f := range metadataFields {
			if raw, ok := obj[f]; ok {
				md = parseMetadata(raw)
				break
			}
		}
		return addr, md, nil
	case v[0] == '"':
		if err := json.Unmarshal(v, &addr); err != nil {
			return "", nil, fmt.Errorf("invalid JSON string: %w", err)
		}
	default:
		if !utf8.Valid(v) {
			return "", nil, errors.New("value is not UTF-8 text")
		}
		addr = string(v)
	}
	if err := checkAddr(addr); err != nil {
		return "", nil, err
	}
	return addr, nil, nil
}

// parseMetadata turns a JSON object into string pairs; anything that is
// not an object carries no metadata (it does not make the instance
// invalid: the address is what matters).
func parseMetadata(raw json.RawMessage) map[string]string {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || len(obj) == 0 {
		return nil
	}
	md := make(map[string]string, len(obj))
	for k, v := range obj {
		var s string
		if err := json.Unmarshal(v, &s); err == nil {
			md[k] = s
			continue
		}
		var b bytes.Buffer
		if err := json.Compact(&b, v); err != nil {
			continue
		}
		md[k] = b.String()
	}
	return md
}

// checkAddr accepts "host:port" with a non-empty host and a numeric port
// (IPv6 hosts in brackets): what grpc dials without a resolver of its own.
func checkAddr(addr string) error {
	if addr == "" {
		return errors.New("empty address")
	}
	if strings.ContainsFunc(addr, func(r rune) bool { return unicode.IsSpace(r) || r == '/' }) {
		return fmt.Errorf("address %q is not host:port", addr)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("address %q is not host:port: %w", addr, err)
	}
	if host == "" {
		return fmt.Errorf("address %q has no host", addr)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return fmt.Errorf("address %q has no valid port", addr)
	}
	return nil
}

// newAddress builds the resolver.Address of one instance.
func newAddress(key, addr string, md map[string]string) resolver.Address {
	a := attributes.New(keyAttr{}, key)
	if len(md) > 0 {
		a = a.WithValue(metadataAttr{}, metadataValue(md))
	}
	return resolver.Address{Addr: addr, Attributes: a}
}

// maxKeyLen is the registry's limit on a key, and so on a prefix.
const maxKeyLen = 1024

// prefixOf turns a dial target into the key prefix it names. Both
// "roster:///services/api/" (an empty authority, the path is the prefix)
// and "roster:services/api/" (no authority, the opaque part is the prefix
// without its leading slash) name "/services/api/". A target with an
// authority ("roster://services/api/", most likely a missing slash) is
// refused rather than silently resolving "/api/".
func prefixOf(t resolver.Target) (string, error) {
	u := t.URL
	if u.Host != "" {
		return "", fmt.Errorf("grpcresolver: target %q has an authority (%q); write the key prefix after three slashes, as in %s:///services/api/", u.String(), u.Host, u.Scheme)
	}
	p := u.Path
	if p == "" && u.Opaque != "" {
		var err error
		if p, err = url.PathUnescape(u.Opaque); err != nil {
			return "", fmt.Errorf("grpcresolver: target %q: %w", u.String(), err)
		}
	}
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	switch {
	case p == "/":
		return "", fmt.Errorf("grpcresolver: target %q names no key prefix (want e.g. %s:///services/api/)", u.String(), u.Scheme)
	case len(p) > maxKeyLen:
		return "", fmt.Errorf("grpcresolver: key prefix is longer than %d bytes", maxKeyLen)
	case strings.ContainsRune(p, 0) || !utf8.ValidString(p):
		return "", fmt.Errorf("grpcresolver: key prefix %q is not valid UTF-8 without NUL", p)
	}
	return p, nil
}
