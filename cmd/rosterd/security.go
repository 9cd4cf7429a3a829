package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"

	"github.com/rosterhq/roster/internal/tlsutil"
	"github.com/rosterhq/roster/registry"
)

// Security is the TLS part of rosterd's configuration (API.md "Security:
// TLS and access control"). Empty fields leave that part off.
type Security struct {
	// CertFile and KeyFile serve HTTP over TLS.
	CertFile, KeyFile string
	// ClientCAFile makes the HTTP port require client certificates signed
	// by this CA (or by the peer CA: members dial each other's HTTP port
	// with their peer certificates).
	ClientCAFile string
	// PeerCertFile, PeerKeyFile and PeerCAFile: mutual TLS between members.
	PeerCertFile, PeerKeyFile, PeerCAFile string

	// Auth turns access control on (-auth).
	Auth bool
	// RootTokenHash is the hash of the root token (ROSTER_ROOT_TOKEN or
	// -root-token-file); the secret itself is dropped once hashed.
	RootTokenHash []byte
	// JoinToken (ROSTER_TOKEN) is presented when asking to join a cluster
	// that enforces access control: an admin token.
	JoinToken string
}

// Environment variables of secrets: never flags, which ps shows.
const (
	envRootToken = "ROSTER_ROOT_TOKEN"
	envToken     = "ROSTER_TOKEN"
)

// securityFlags are the flags behind Security.
type securityFlags struct {
	certFile, keyFile, clientCAFile       string
	peerCertFile, peerKeyFile, peerCAFile string
	auth                                  bool
	rootTokenFile                         string
}

func (f *securityFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.certFile, "cert-file", "", "serve HTTP over TLS with this PEM certificate `file` (with -key-file)")
	fs.StringVar(&f.keyFile, "key-file", "", "PEM private key `file` of -cert-file")
	fs.StringVar(&f.clientCAFile, "client-ca-file", "", "require HTTP clients to present a certificate signed by this PEM CA `file`")
	fs.StringVar(&f.peerCertFile, "peer-cert-file", "", "PEM certificate `file` this member presents to other members (with -peer-key-file, -peer-ca-file)")
	fs.StringVar(&f.peerKeyFile, "peer-key-file", "", "PEM private key `file` of -peer-cert-file")
	fs.StringVar(&f.peerCAFile, "peer-ca-file", "", "PEM CA `file` that signs the members' certificates; verifies other members")
	fs.BoolVar(&f.auth, "auth", false, "access control: every request but /healthz, /readyz and /metrics needs a token (enforced anyway once the cluster has access control on: its root token exists)")
	fs.StringVar(&f.rootTokenFile, "root-token-file", "", "`file` holding the root token a new access-controlled cluster starts with (or "+envRootToken+")")
}

// parse checks that the TLS files come in the combinations that make sense.
func (f *securityFlags) parse(env environment) (Security, error) {
	s := Security{
		CertFile: f.certFile, KeyFile: f.keyFile, ClientCAFile: f.clientCAFile,
		PeerCertFile: f.peerCertFile, PeerKeyFile: f.peerKeyFile, PeerCAFile: f.peerCAFile,
		Auth: f.auth, JoinToken: strings.TrimSpace(env.getenv(envToken)),
	}
	var errs []error
	root, err := f.rootToken(env)
	if err != nil {
		errs = append(errs, err)
	} else if root != "" {
		s.RootTokenHash = registry.HashToken(root)
	}
	if (s.CertFile == "") != (s.KeyFile == "") {
		errs = append(errs, errors.New("-cert-file and -key-file go together"))
	}
	if s.ClientCAFile != "" && s.CertFile == "" {
		errs = append(errs, errors.New("-client-ca-file needs -cert-file and -key-file: client certificates are checked over TLS"))
	}
	if (s.PeerCertFile == "") != (s.PeerKeyFile == "") {
		errs = append(errs, errors.New("-peer-cert-file and -peer-key-file go together"))
	}
	if s.PeerCertFile != "" && s.PeerCAFile == "" {
		errs = append(errs, errors.New("-peer-cert-file needs -peer-ca-file to verify the other members"))
	}
	return s, errors.Join(errs...)
}

// rootToken reads the root token from ROSTER_ROOT_TOKEN or the file of
// -root-token-file (surrounding white space dropped).
func (f *securityFlags) rootToken(env environment) (string, error) {
	tok := strings.TrimSpace(env.getenv(envRootToken))
	if f.rootTokenFile != "" {
		if tok != "" {
			return "", fmt.Errorf("-root-token-file and %s both give a root token: give one", envRootToken)
		}
		b, err := os.ReadFile(f.rootTokenFile)
		if err != nil {
			return "", fmt.Errorf("-root-token-file: %w", err)
		}
		tok = strings.TrimSpace(string(b))
		if tok == "" {
			return "", fmt.Errorf("-root-token-file %s is empty", f.rootTokenFile)
		}
	}
	if tok != "" && (len(tok) < registry.MinRootTokenLength || strings.ContainsAny(tok, " \t\r\n")) {
		return "", fmt.Errorf("the root token must be at least %d characters without white space (e.g. openssl rand -hex 32)", registry.MinRootTokenLength)
	}
	return tok, nil
}

// httpURL normalises an HTTP address given as host:port, http://host:port
// or https://host:port: http is written host:port (as members always
// recorded it), https keeps its scheme. A bare host:port is https when tls
// is set.
func httpURL(addr string, tls bool) (string, error) {
	switch {
	case strings.HasPrefix(addr, "http://"):
		return strings.TrimPrefix(addr, "http://"), nil
	case strings.HasPrefix(addr, "https://"):
		return addr, nil
	case strings.Contains(addr, "://"):
		return "", fmt.Errorf("%q: only http:// and https:// addresses are supported", addr)
	case tls:
		return "https://" + addr, nil
	}
	return addr, nil
}

// hostPort strips the scheme httpURL may have left.
func hostPort(addr string) string {
	return strings.TrimPrefix(strings.TrimPrefix(addr, "https://"), "http://")
}

// tlsSources are the certificates rosterd loaded, reloadable.
type tlsSources struct {
	log *slog.Logger
	// http serves the HTTP port; nil without -cert-file.
	http       *tlsutil.Source
	clientAuth bool
	// member is this member's identity towards the others (-peer-*): it
	// dials their HTTP ports (join, forwarding) and, for raft, both ends.
	// Without -peer-ca-file it verifies with the system roots.
	member *tlsutil.Source
}

// loadTLS loads the files named in sec. The HTTP port's client CAs include
// the peer CA: members dial each other's HTTP port with their peer
// certificates.
func loadTLS(sec Security, log *slog.Logger) (*tlsSources, error) {
	t := &tlsSources{log: log, clientAuth: sec.ClientCAFile != ""}
	if sec.CertFile != "" {
		f := tlsutil.Files{CertFile: sec.CertFile, KeyFile: sec.KeyFile}
		if sec.ClientCAFile != "" {
			f.CAFiles = append(f.CAFiles, sec.ClientCAFile)
			if sec.PeerCAFile != "" && sec.PeerCAFile != sec.ClientCAFile {
				f.CAFiles = append(f.CAFiles, sec.PeerCAFile)
			}
		}
		var err error
		if t.http, err = tlsutil.Load(f, tlsutil.Options{Name: "http", Logger: log}); err != nil {
			return nil, err
		}
	}
	f := tlsutil.Files{CertFile: sec.PeerCertFile, KeyFile: sec.PeerKeyFile}
	if sec.PeerCAFile != "" {
		f.CAFiles = []string{sec.PeerCAFile}
	}
	var err error
	if t.member, err = tlsutil.Load(f, tlsutil.Options{Name: "peer", Logger: log}); err != nil {
		return nil, err
	}
	return t, nil
}

// listener wraps the HTTP listener in TLS when -cert-file is set.
func (t *tlsSources) listener(ln net.Listener) net.Listener {
	if t.http == nil {
		return ln
	}
	return tls.NewListener(ln, t.http.ServerConfig(t.clientAuth))
}

// reloadOn reloads every source each time reload fires, until the
// returned stop is called (it waits for the goroutine to end).
func (t *tlsSources) reloadOn(reload <-chan struct{}) (stop func()) {
	done, quit := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-quit:
				return
			case <-reload:
				t.log.Info("SIGHUP: reloading TLS certificates")
				for _, s := range []*tlsutil.Source{t.http, t.member} {
					if s != nil {
						_ = s.Reload() // logs its own outcome; the old files stay in force on failure
					}
				}
			}
		}
	}()
	return func() {
		close(quit)
		<-done
	}
}
