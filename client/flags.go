package client

import (
	"flag"
	"os"
	"strings"
)

// Flags registers the connection flags most programs want on fs:
// -endpoints (comma-separated), -cacert, -cert, -cert-key and -token (default:
// the environment variable ROSTER_TOKEN, so that the secret need not be
// on the command line). After fs is parsed, the returned function builds
// the Config.
//
//	cfg := client.Flags(flag.CommandLine, "127.0.0.1:7370")
//	flag.Parse()
//	c, err := client.New(cfg())
func Flags(fs *flag.FlagSet, defaultEndpoints string) func() Config {
	endpoints := fs.String("endpoints", defaultEndpoints, "comma-separated member addresses (host:port, http://host:port or https://host:port)")
	ca := fs.String("cacert", "", "PEM CA file that signed the members' certificates (endpoints are then https)")
	cert := fs.String("cert", "", "PEM client certificate file, for members that require one")
	key := fs.String("cert-key", "", "PEM private key file of -cert")
	token := fs.String("token", "", "bearer token for members with access control (default: $ROSTER_TOKEN)")
	return func() Config {
		tok := *token
		if tok == "" {
			tok = strings.TrimSpace(os.Getenv("ROSTER_TOKEN"))
		}
		var eps []string
		for _, e := range strings.Split(*endpoints, ",") {
			if e = strings.TrimSpace(e); e != "" {
				eps = append(eps, e)
			}
		}
		return Config{Endpoints: eps, CAFile: *ca, CertFile: *cert, KeyFile: *key, Token: tok}
	}
}
