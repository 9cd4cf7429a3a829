package main

import (
	"bytes"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/rosterhq/roster/registry"
)

func TestParseConfigTLS(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		edit func(*Config)
	}{
		{
			name: "tls flags: https advertised, bare joins are https",
			args: []string{
				"-cert-file", "s.crt", "-key-file", "s.key", "-client-ca-file", "ca.crt",
				"-peer-cert-file", "p.crt", "-peer-key-file", "p.key", "-peer-ca-file", "pca.crt",
				"-join", "10.0.0.2:7370,http://10.0.0.3:7370,https://10.0.0.4:7370/",
			},
			edit: func(c *Config) {
				c.Security = Security{CertFile: "s.crt", KeyFile: "s.key", ClientCAFile: "ca.crt",
					PeerCertFile: "p.crt", PeerKeyFile: "p.key", PeerCAFile: "pca.crt"}
				c.Registry.HTTPAdvertise = "https://127.0.0.1:7370"
				c.Registry.Join = []string{"https://10.0.0.2:7370", "10.0.0.3:7370", "https://10.0.0.4:7370"}
			},
		},
		{
			name: "tls from the environment, explicit advertise",
			env: map[string]string{"ROSTER_CERT_FILE": "s.crt", "ROSTER_KEY_FILE": "s.key",
				"ROSTER_ADVERTISE_HTTP": "roster-1.internal:7370"},
			edit: func(c *Config) {
				c.Security = Security{CertFile: "s.crt", KeyFile: "s.key"}
				c.Registry.HTTPAdvertise = "https://roster-1.internal:7370"
			},
		},
		{
			name: "https join without tls here",
			args: []string{"-join", "https://a:1"},
			edit: func(c *Config) { c.Registry.Join = []string{"https://a:1"} },
		},
		{
			name: "peer tls only: plain http",
			args: []string{"-peer-cert-file", "p.crt", "-peer-key-file", "p.key", "-peer-ca-file", "ca.crt"},
			edit: func(c *Config) {
				c.Security = Security{PeerCertFile: "p.crt", PeerKeyFile: "p.key", PeerCAFile: "ca.crt"}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseConfig(tt.args, fakeEnv(tt.env))
			if err != nil {
				t.Fatalf("parseConfig: %v", err)
			}
			want := defaultConfig()
			tt.edit(&want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("parseConfig(%q)\n got %+v\nwant %+v", tt.args, got, want)
			}
		})
	}
}

func TestParseConfigTLSErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"cert without key", []string{"-cert-file", "a"}, "-cert-file and -key-file go together"},
		{"client ca without tls", []string{"-client-ca-file", "ca"}, "-client-ca-file needs -cert-file"},
		{"peer key without cert", []string{"-peer-key-file", "k", "-peer-ca-file", "ca"}, "-peer-cert-file and -peer-key-file go together"},
		{"peer cert without ca", []string{"-peer-cert-file", "c", "-peer-key-file", "k"}, "needs -peer-ca-file"},
		{"advertise scheme", []string{"-advertise-http", "ftp://h:1"}, "only http:// and https://"},
		{"advertise https wildcard", []string{"-advertise-http", "https://0.0.0.0:1"}, "wildcard"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseConfig(tt.args, fakeEnv(nil))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("parseConfig(%q) error = %v, want it to contain %q", tt.args, err, tt.want)
			}
		})
	}
}

func TestParseConfigAuth(t *testing.T) {
	dir := t.TempDir()
	file := dir + "/root"
	if err := os.WriteFile(file, []byte("  file-root-token-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		args []string
		env  map[string]string
		root string // the root token whose hash is expected ("" none)
		join string
	}{
		{name: "flag and file", args: []string{"-auth", "-root-token-file", file}, root: "file-root-token-0123456789"},
		{name: "environment", env: map[string]string{"ROSTER_AUTH": "true", "ROSTER_ROOT_TOKEN": "env-root-token-0123456789", "ROSTER_TOKEN": "join-token"},
			root: "env-root-token-0123456789", join: "join-token"},
		{name: "file from the environment", env: map[string]string{"ROSTER_AUTH": "1", "ROSTER_ROOT_TOKEN_FILE": file}, root: "file-root-token-0123456789"},
		{name: "auth without a root token (a joining member)", args: []string{"-auth"}, env: map[string]string{"ROSTER_TOKEN": "t"}, join: "t"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseConfig(tt.args, fakeEnv(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			if !cfg.Security.Auth || !cfg.Registry.Auth {
				t.Error("auth is off")
			}
			var want []byte
			if tt.root != "" {
				want = registry.HashToken(tt.root)
			}
			if !bytes.Equal(cfg.Security.RootTokenHash, want) || !bytes.Equal(cfg.Registry.RootTokenHash, want) {
				t.Errorf("root token hash %x, want %x", cfg.Registry.RootTokenHash, want)
			}
			if cfg.Security.JoinToken != tt.join {
				t.Errorf("join token %q, want %q", cfg.Security.JoinToken, tt.join)
			}
			if strings.Contains(fmt.Sprintf("%+v", cfg), "root-token-0123456789") {
				t.Error("the configuration holds the root token itself")
			}
		})
	}
	for _, tt := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"short root token", nil, map[string]string{"ROSTER_ROOT_TOKEN": "short"}, "at least 16 characters"},
		{"both root tokens", []string{"-root-token-file", file}, map[string]string{"ROSTER_ROOT_TOKEN": "env-root-token-0123456789"}, "give one"},
		{"missing file", []string{"-root-token-file", dir + "/absent"}, nil, "-root-token-file"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := parseConfig(tt.args, fakeEnv(tt.env)); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want it to contain %q", err, tt.want)
			}
		})
	}
}
