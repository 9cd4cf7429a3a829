package client

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"
)

// A member whose certificate the client cannot verify (signed by a CA the
// client does not trust, made out to another host name, expired), or one
// that refuses the client's own certificate, fails every handshake the
// same way until someone changes a certificate or the configuration:
// retrying it is useless. Such a failure was taken for a member that is
// down, and a call retried it (and every other member alike) until its
// deadline, then ended as ErrNoLeader with the TLS error only in its text.
// Now a call stops trying that member, tries the others, and fails at once
// when no member could be verified; the member is tried last by later calls
// for tlsPenalty. An https:// endpoint whose member does not speak TLS at
// all (it serves plain HTTP: the configuration names the wrong scheme)
// fails every handshake the same way, and is treated alike.

// tlsPenalty is how long a member whose certificate failed is tried last:
// longer than endpointPenalty, since a certificate is not fixed in seconds.
const tlsPenalty = 30 * time.Second

// TLSError is a member whose TLS handshake failed in a way no retry mends:
// on a certificate (the client could not verify the member's: unknown
// authority, another host name, expired; or the member refused the
// client's, or its lack of one), or because the member does not speak TLS
// (an https:// endpoint serving plain HTTP). errors.As reaches the
// underlying error (an x509.HostnameError, x509.UnknownAuthorityError,
// x509.CertificateInvalidError, *tls.CertificateVerificationError,
// http.ErrSchemeMismatch or tls.RecordHeaderError, say). The request never
// reached the member: nothing was changed there.
type TLSError struct {
	Member string // host:port of the member
	Err    error
}

func (e *TLSError) Error() string {
	if errors.Is(e.Err, ErrPlainToTLS) {
		return fmt.Sprintf("roster: member %s: %v", e.Member, e.Err) // no handshake was tried
	}
	return fmt.Sprintf("roster: member %s: TLS handshake failed: %v", e.Member, e.Err)
}

func (e *TLSError) Unwrap() error { return e.Err }

// certFailure reports whether err is a TLS handshake that failed on a
// certificate, on either side, or on a member that does not speak TLS.
// Anything else in a handshake (a timeout, a reset) may be transient and
// is not one.
func certFailure(err error) bool {
	// net/http reports an answer in plain HTTP as ErrSchemeMismatch; any
	// other first record that is not TLS comes as the RecordHeaderError.
	var rh tls.RecordHeaderError
	if errors.Is(err, http.ErrSchemeMismatch) || errors.As(err, &rh) {
		return true
	}
	var ve *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	var ci x509.CertificateInvalidError
	if errors.As(err, &ve) || errors.As(err, &ua) || errors.As(err, &he) || errors.As(err, &ci) {
		return true
	}
	// The member refused the client's certificate: crypto/tls reports the
	// alert it received as a *net.OpError "remote error" whose error (of
	// an unexported type) is the alert's text.
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "remote error" && op.Err != nil {
		return certAlerts[op.Err.Error()]
	}
	return false
}

// certAlerts are the texts of the TLS alerts about certificates.
var certAlerts = map[string]bool{
	"tls: bad certificate":               true,
	"tls: unsupported certificate":       true,
	"tls: revoked certificate":           true,
	"tls: expired certificate":           true,
	"tls: unknown certificate":           true,
	"tls: unknown certificate authority": true,
	"tls: certificate required":          true,
}

// tlsFailure turns a failed request to ep into a *TLSError when it failed
// on a certificate (and puts ep last for a while); else it returns nil.
func tlsFailure(ep *endpoint, err error) *TLSError {
	if err == nil || !certFailure(err) {
		return nil
	}
	ep.downUntil.Store(time.Now().Add(tlsPenalty).UnixNano())
	return &TLSError{Member: ep.base.Host, Err: err}
}

// ErrPlainToTLS is the reason of a *TLSError for an http:// endpoint (or
// a bare host:port without a CA) whose member serves HTTPS: Go's server
// answers such a request 400 in plain text before any handler sees it, so
// nothing was changed, and every retry fails alike until the
// configuration names https or the members' CA.
var ErrPlainToTLS = errors.New("the member serves HTTPS but the endpoint is plain http: give the members' CA (Config.CAFile; rosterctl --cacert) or an https:// endpoint")

// plainToTLS reports, as a *TLSError (putting ep last for a while), an
// answer that is Go's refusal of a plain HTTP request on a TLS port;
// anything else gives nil.
func plainToTLS(ep *endpoint, status int, err error) *TLSError {
	se := statusOf(err)
	if status != http.StatusBadRequest || se == nil || se.Code != "" ||
		!strings.HasPrefix(se.Message, "Client sent an HTTP request to an HTTPS server") {
		return nil
	}
	ep.downUntil.Store(time.Now().Add(tlsPenalty).UnixNano())
	return &TLSError{Member: ep.base.Host, Err: ErrPlainToTLS}
}

// unverifiedError is the error of a call or watch for which no member's
// certificate could be verified: it wraps each member's *TLSError.
func unverifiedError(what string, errs []error) error {
	hosts := make([]string, 0, len(errs))
	for _, err := range errs {
		var te *TLSError
		if errors.As(err, &te) {
			hosts = append(hosts, te.Member)
		}
	}
	return fmt.Errorf("roster: %s: no member passed the TLS handshake (%s): %w",
		what, strings.Join(hosts, ", "), errors.Join(errs...))
}

// isTLSError reports whether err holds a *TLSError.
func isTLSError(err error) bool {
	var te *TLSError
	return errors.As(err, &te)
}

// inOrder lists the errors of m in the order of the client's endpoints, so
// that the message names the members in the order they were configured.
func (c *Client) inOrder(m map[*endpoint]error) []error {
	out := make([]error, 0, len(m))
	for _, ep := range c.endpoints {
		if err := m[ep]; err != nil {
			out = append(out, err)
		}
	}
	return out
}
