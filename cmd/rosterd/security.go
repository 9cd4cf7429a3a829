package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"strings"

	"github.com/rosterhq/roster/internal/tlsutil"
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
}

// securityFlags are the flags behind Security.
type securityFlags struct {
	certFile, keyFile, clientCAFile       string
	peerCertFile, peerKeyFile, peerCAFile string
}

func (f *securityFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.certFile, "cert-file", "", "serve HTTP over TLS with this PEM certificate `file` (with -key-file)")
	fs.StringVar(&f.keyFile, "key-file", "", "PEM private key `file` of -cert-file")
	fs.StringVar(&f.clientCAFile, "client-ca-file", "", "require HTTP clients to present a certificate signed by this PEM CA `file`")
	fs.StringVar(&f.peerCertFile, "peer-cert-file", "", "PEM certificate `file` this member presents to other members (with -peer-key-file, -peer-ca-file)")
	fs.StringVar(&f.peerKeyFile, "peer-key-file", "", "PEM private key `file` of -peer-cert-file")
	fs.StringVar(&f.peerCAFile, "peer-ca-file", "", "PEM CA `file` that signs the members' certificates; verifies other members")
}

// parse checks that the TLS files come in the combinations that make sense.
func (f *securityFlags) parse(environment) (Security, error) {
	s := Security{
		CertFile: f.certFile, KeyFile: f.keyFile, ClientCAFile: f.clientCAFile,
		PeerCertFile: f.peerCertFile, PeerKeyFile: f.peerKeyFile, PeerCAFile: f.peerCAFile,
	}
	var errs []error
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
