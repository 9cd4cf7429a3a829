package tlsutil

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultCheckInterval is how often, at most, a Source looks at its files
// for changes (only when a handshake needs it).
const DefaultCheckInterval = time.Second

// Files names the PEM files of a Source. CertFile and KeyFile go together;
// CAFiles may hold several files (their certificates are pooled).
type Files struct {
	CertFile string
	KeyFile  string
	CAFiles  []string
}

// Source is a reloadable certificate and CA pool. Its methods are safe for
// concurrent use.
type Source struct {
	name          string
	files         Files
	log           *slog.Logger
	checkInterval time.Duration

	cur       atomic.Pointer[material]
	nextCheck atomic.Int64 // unix nanoseconds
	mu        sync.Mutex   // serialises reloads
	failed    []stamp      // the stamps of the last failed reload, logged once
}

// material is what one load produced; never modified after.
type material struct {
	cert   *tls.Certificate // nil: no identity
	leaf   *x509.Certificate
	pool   *x509.CertPool // nil: no CA files
	stamps []stamp
}

// stamp identifies a file's content cheaply: a replaced or rewritten file
// gets another modification time or size.
type stamp struct {
	mod  time.Time
	size int64
}

// Options tune a Source.
type Options struct {
	// Name appears in log lines ("http", "peer").
	Name string
	// CheckInterval bounds how often the files are examined for changes
	// (default DefaultCheckInterval; negative: at every handshake).
	CheckInterval time.Duration
	Logger        *slog.Logger
}

// Load reads the files now; an error here is the user's to fix (a missing
// file, a key that does not match its certificate, a CA file without a
// certificate).
func Load(files Files, opts Options) (*Source, error) {
	if (files.CertFile == "") != (files.KeyFile == "") {
		return nil, errors.New("tls: a certificate file and a key file go together")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.CheckInterval == 0 {
		opts.CheckInterval = DefaultCheckInterval
	}
	s := &Source{name: opts.Name, files: files, log: opts.Logger, checkInterval: opts.CheckInterval}
	m, err := s.load()
	if err != nil {
		return nil, err
	}
	s.cur.Store(m)
	s.nextCheck.Store(time.Now().Add(s.checkInterval).UnixNano())
	return s, nil
}

func (s *Source) paths() []string {
	var p []string
	if s.files.CertFile != "" {
		p = append(p, s.files.CertFile, s.files.KeyFile)
	}
	return append(p, s.files.CAFiles...)
}

func (s *Source) stamps() ([]stamp, error) {
	var out []stamp
	for _, p := range s.paths() {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		out = append(out, stamp{mod: fi.ModTime(), size: fi.Size()})
	}
	return out, nil
}

func (s *Source) load() (*material, error) {
	st, err := s.stamps()
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	m := &material{stamps: st}
	if s.files.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(s.files.CertFile, s.files.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls: certificate %s and key %s: %w", s.files.CertFile, s.files.KeyFile, err)
		}
		m.cert, m.leaf = &cert, cert.Leaf
	}
	if len(s.files.CAFiles) > 0 {
		m.pool = x509.NewCertPool()
		for _, f := range s.files.CAFiles {
			b, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("tls: %w", err)
			}
			if !m.pool.AppendCertsFromPEM(b) {
				return nil, fmt.Errorf("tls: CA file %s holds no PEM certificate", f)
			}
		}
	}
	return m, nil
}

// Reload reads the files again. On failure the material in force stays.
func (s *Source) Reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.load()
	if err != nil {
		s.log.Error("TLS reload failed; keeping the certificates in force", "tls", s.name, "error", err)
		return err
	}
	s.cur.Store(m)
	s.failed = nil
	attrs := []any{"tls", s.name}
	if m.leaf != nil {
		attrs = append(attrs, "subject", m.leaf.Subject.String(), "not_after", m.leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	s.log.Info("TLS certificates loaded", attrs...)
	return nil
}

// current returns the material in force, first reloading it when the check
// interval passed and a file changed.
func (s *Source) current() *material {
	m := s.cur.Load()
	now := time.Now().UnixNano()
	if now < s.nextCheck.Load() {
		return m
	}
	s.nextCheck.Store(now + int64(max(s.checkInterval, 0)))
	st, err := s.stamps()
	if err != nil || equalStamps(st, m.stamps) {
		return m // a file that is missing for a moment (being replaced) is retried later
	}
	s.mu.Lock()
	if equalStamps(st, s.failed) {
		s.mu.Unlock()
		return m // already tried these files; wait for another change
	}
	s.mu.Unlock()
	if err := s.Reload(); err != nil {
		s.mu.Lock()
		s.failed = st
		s.mu.Unlock()
	}
	return s.cur.Load()
}

func equalStamps(a, b []stamp) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].mod.Equal(b[i].mod) || a[i].size != b[i].size {
			return false
		}
	}
	return true
}

// HasCertificate reports whether the Source holds an identity.
func (s *Source) HasCertificate() bool { return s.cur.Load().cert != nil }

// ServerConfig serves with the Source's certificate. With clientAuth, the
// peer must present a certificate that the Source's CAs signed.
func (s *Source) ServerConfig(clientAuth bool) *tls.Config {
	base := &tls.Config{MinVersion: tls.VersionTLS12}
	base.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		return s.serverConfig(base, clientAuth)
	}
	return base
}

func (s *Source) serverConfig(base *tls.Config, clientAuth bool) (*tls.Config, error) {
	m := s.current()
	if m.cert == nil {
		return nil, errors.New("tls: no server certificate")
	}
	c := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{*m.cert},
		NextProtos:   base.NextProtos,
	}
	if clientAuth {
		c.ClientAuth = tls.RequireAndVerifyClientCert
		c.ClientCAs = m.pool
		if c.ClientCAs == nil {
			c.ClientCAs = x509.NewCertPool() // no CA: nobody is accepted
		}
	}
	return c, nil
}

// ClientConfig dials with the Source's certificate (when it has one) and
// verifies the server's certificate against its CAs (the system roots when
// it has none), including the host name when the dialer sets ServerName.
func (s *Source) ClientConfig() *tls.Config {
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	s.setClient(c)
	return c
}

func (s *Source) setClient(c *tls.Config) {
	// Verification happens in VerifyConnection against the pool in force
	// at that handshake; RootCAs could not follow a reload.
	c.InsecureSkipVerify = true
	c.VerifyConnection = func(cs tls.ConnectionState) error {
		return s.verify(cs, x509.ExtKeyUsageServerAuth)
	}
	c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		if m := s.current(); m.cert != nil {
			return m.cert, nil
		}
		return &tls.Certificate{}, nil // none: the server decides
	}
}

// PeerConfig is one config for both ends of a member-to-member connection:
// as a server it requires a client certificate the CAs signed; as a client
// it presents the same certificate and verifies the server's.
func (s *Source) PeerConfig() *tls.Config {
	c := s.ServerConfig(true)
	s.setClient(c)
	return c
}

func (s *Source) verify(cs tls.ConnectionState, usage x509.ExtKeyUsage) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("tls: the server presented no certificate")
	}
	m := s.current()
	opts := x509.VerifyOptions{
		Roots:         m.pool, // nil: the system roots
		DNSName:       cs.ServerName,
		Intermediates: x509.NewCertPool(),
		KeyUsages:     []x509.ExtKeyUsage{usage},
	}
	for _, c := range cs.PeerCertificates[1:] {
		opts.Intermediates.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(opts)
	return err
}
