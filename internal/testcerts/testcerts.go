// Package testcerts makes the certificates that TLS tests need: a cluster
// CA, a server, a peer and a client certificate it signed, and a rogue CA
// with a client and a peer certificate of its own, all as PEM files in a
// test's temporary directory. Every test that needs certificates uses it.
package testcerts

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Pair is a certificate and its key, as PEM files.
type Pair struct {
	CertFile string
	KeyFile  string
	cert     *x509.Certificate
	key      *ecdsa.PrivateKey
}

// Set is everything one test needs. Server and Peer certificates are valid
// for 127.0.0.1, ::1 and localhost, for both server and client use (a
// member dials others with its peer certificate); Client is for client use
// only.
type Set struct {
	Dir    string
	CA     Pair // CAFile is CA.CertFile
	Server Pair
	Peer   Pair
	Client Pair
	// Rogue is another CA, trusted by nobody, and certificates it signed.
	Rogue       Pair
	RogueClient Pair
	RoguePeer   Pair
}

// CAFile is the cluster CA's certificate file.
func (s *Set) CAFile() string { return s.CA.CertFile }

// New makes a fresh set in a new temporary directory of t.
func New(t testing.TB) *Set {
	t.Helper()
	dir := t.TempDir()
	s := &Set{Dir: dir}
	s.CA = newCA(t, dir, "ca", "Roster test CA")
	s.Server = s.CA.Sign(t, dir, "server", "roster-server", true)
	s.Peer = s.CA.Sign(t, dir, "peer", "roster-peer", true)
	s.Client = s.CA.Sign(t, dir, "client", "roster-client", false)
	s.Rogue = newCA(t, dir, "rogue-ca", "Rogue CA")
	s.RogueClient = s.Rogue.Sign(t, dir, "rogue-client", "roster-client", false)
	s.RoguePeer = s.Rogue.Sign(t, dir, "rogue-peer", "roster-peer", true)
	return s
}

func newCA(t testing.TB, dir, name, cn string) Pair {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("testcerts: %v", err)
	}
	return write(t, dir, name, der, key)
}

// Sign makes a certificate signed by p (a CA) under the name name in dir:
// with server, valid for server and client use on the loopback names; else
// for client use only.
func (p Pair) Sign(t testing.TB, dir, name, cn string, server bool) Pair {
	t.Helper()
	return p.SignWith(t, dir, name, cn, server, nil)
}

// SignWith is Sign with edit applied to the certificate's template before
// it is signed: for certificates a client must refuse (expired, made out
// to another host name).
func (p Pair) SignWith(t testing.TB, dir, name, cn string, server bool, edit func(*x509.Certificate)) Pair {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
		tmpl.DNSNames = []string{"localhost"}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1"), net.IPv6loopback}
	}
	if edit != nil {
		edit(tmpl)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.cert, &key.PublicKey, p.key)
	if err != nil {
		t.Fatalf("testcerts: %v", err)
	}
	return write(t, dir, name, der, key)
}

// TLS loads the pair as a tls.Certificate.
func (p Pair) TLS(t testing.TB) tls.Certificate {
	t.Helper()
	c, err := tls.LoadX509KeyPair(p.CertFile, p.KeyFile)
	if err != nil {
		t.Fatalf("testcerts: %v", err)
	}
	return c
}

// Pool is a pool holding p's certificate (for a CA: trust it).
func (p Pair) Pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.cert)
	return pool
}

// ClientTLS is a client configuration that trusts the set's CA and
// presents cert (nil: no certificate).
func (s *Set) ClientTLS(t testing.TB, cert *Pair) *tls.Config {
	t.Helper()
	c := &tls.Config{RootCAs: s.CA.Pool(), MinVersion: tls.VersionTLS12}
	if cert != nil {
		c.Certificates = []tls.Certificate{cert.TLS(t)}
	}
	return c
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("testcerts: %v", err)
	}
	return k
}

func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatalf("testcerts: %v", err)
	}
	return n
}

func write(t testing.TB, dir, name string, der []byte, key *ecdsa.PrivateKey) Pair {
	t.Helper()
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("testcerts: %v", err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatalf("testcerts: %v", err)
	}
	p := Pair{CertFile: filepath.Join(dir, name+".crt"), KeyFile: filepath.Join(dir, name+".key"), cert: cert, key: key}
	if err := os.WriteFile(p.CertFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatalf("testcerts: %v", err)
	}
	if err := os.WriteFile(p.KeyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatalf("testcerts: %v", err)
	}
	return p
}

// CopyTo replaces dst's certificate and key files with p's (each written
// to a temporary file and renamed over, as a careful operator would), for
// tests of certificate reloading.
func (p Pair) CopyTo(t testing.TB, dst Pair) {
	t.Helper()
	for _, f := range [][2]string{{p.CertFile, dst.CertFile}, {p.KeyFile, dst.KeyFile}} {
		b, err := os.ReadFile(f[0])
		if err != nil {
			t.Fatalf("testcerts: %v", err)
		}
		if err := os.WriteFile(f[1]+".tmp", b, 0o600); err != nil {
			t.Fatalf("testcerts: %v", err)
		}
		if err := os.Rename(f[1]+".tmp", f[1]); err != nil {
			t.Fatalf("testcerts: %v", err)
		}
	}
}

// MemberArgs are the rosterd flags of a fully secured member: HTTPS with
// the server certificate, client certificates required, and the peer
// certificate towards the other members.
func (s *Set) MemberArgs() []string {
	return []string{
		"-cert-file", s.Server.CertFile, "-key-file", s.Server.KeyFile, "-client-ca-file", s.CAFile(),
		"-peer-cert-file", s.Peer.CertFile, "-peer-key-file", s.Peer.KeyFile, "-peer-ca-file", s.CAFile(),
	}
}

// TokenFile writes token to a file of its own (for -root-token-file) and
// returns its path.
func (s *Set) TokenFile(t testing.TB, token string) string {
	t.Helper()
	f := filepath.Join(s.Dir, "root-token")
	if err := os.WriteFile(f, []byte(token+"\n"), 0o600); err != nil {
		t.Fatalf("testcerts: %v", err)
	}
	return f
}
