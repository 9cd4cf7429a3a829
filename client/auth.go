package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"

	"github.com/rosterhq/roster/api"
)

// Access control (API.md "Security"): TLS settings and the bearer token
// of Config, and the /v1/auth routes.

// Types of the access control routes.
type (
	Rule       = api.Rule
	Role       = api.Role
	TokenInfo  = api.TokenInfo
	NewToken   = api.CreatedToken
	WhoAmIResp = api.WhoAmI
)

// clientTLS is the TLS configuration of the client's own transport:
// Config.TLS, or one built from its files; nil when none is set.
func clientTLS(cfg Config) (*tls.Config, error) {
	if cfg.TLS != nil {
		return cfg.TLS, nil
	}
	if cfg.CAFile == "" && cfg.CertFile == "" && cfg.KeyFile == "" {
		return nil, nil
	}
	return LoadTLS(cfg.CAFile, cfg.CertFile, cfg.KeyFile)
}

// LoadTLS builds a client TLS configuration from PEM files: caFile the CA
// that signed the members' certificates ("": the system roots), certFile
// and keyFile a client certificate to present ("": none).
func LoadTLS(caFile, certFile, keyFile string) (*tls.Config, error) {
	t := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		b, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("%w: client: CA file: %v", ErrInvalidArgument, err)
		}
		t.RootCAs = x509.NewCertPool()
		if !t.RootCAs.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("%w: client: CA file %s holds no PEM certificate", ErrInvalidArgument, caFile)
		}
	}
	if (certFile == "") != (keyFile == "") {
		return nil, fmt.Errorf("%w: client: a certificate file and a key file go together", ErrInvalidArgument)
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("%w: client: certificate: %v", ErrInvalidArgument, err)
		}
		t.Certificates = []tls.Certificate{cert}
	}
	return t, nil
}

// authorize adds the bearer token to a request.
func (c *Client) authorize(req *http.Request) {
	if c.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.cfg.Token)
	}
}

// PutRole creates or replaces the role name (admin only). Like every
// write it is not sent again after an unknown outcome (ErrTimeout, a
// connection cut after sending): putting the same role twice is harmless
// on its own, but a retry sent after another admin's change of the role
// would silently undo that change.
func (c *Client) PutRole(ctx context.Context, name string, rules []Rule, admin bool) (*Role, error) {
	if rules == nil {
		rules = []Rule{}
	}
	res, err := c.do(ctx, &call{method: http.MethodPut, path: "/v1/auth/roles/" + name,
		json: api.PutRoleRequest{Rules: rules, Admin: admin}, class: mutating})
	if err != nil {
		return nil, err
	}
	var r Role
	return &r, res.decode(&r)
}

// Role reads one role (admin only); ErrKeyNotFound when it does not exist.
func (c *Client) Role(ctx context.Context, name string) (*Role, error) {
	res, err := c.do(ctx, &call{method: http.MethodGet, path: "/v1/auth/roles/" + name, class: idempotent})
	if err != nil {
		return nil, err
	}
	var r Role
	return &r, res.decode(&r)
}

// Roles lists the roles, sorted by name (admin only).
func (c *Client) Roles(ctx context.Context) ([]Role, error) {
	res, err := c.do(ctx, &call{method: http.MethodGet, path: "/v1/auth/roles", class: idempotent})
	if err != nil {
		return nil, err
	}
	var l api.RoleList
	return l.Roles, res.decode(&l)
}

// DeleteRole deletes a role (admin only).
func (c *Client) DeleteRole(ctx context.Context, name string) error {
	_, err := c.do(ctx, &call{method: http.MethodDelete, path: "/v1/auth/roles/" + name, class: mutating})
	return err
}

// CreateToken creates a token naming roles (admin only). The answer holds
// the secret (NewToken.Token): it is shown this once.
func (c *Client) CreateToken(ctx context.Context, name string, roles []string) (*NewToken, error) {
	res, err := c.do(ctx, &call{method: http.MethodPost, path: "/v1/auth/tokens",
		json: api.CreateTokenRequest{Name: name, Roles: roles}, class: mutating})
	if err != nil {
		return nil, err
	}
	var t NewToken
	return &t, res.decode(&t)
}

// Tokens lists the tokens without their secrets, sorted by ID (admin only).
func (c *Client) Tokens(ctx context.Context) ([]TokenInfo, error) {
	res, err := c.do(ctx, &call{method: http.MethodGet, path: "/v1/auth/tokens", class: idempotent})
	if err != nil {
		return nil, err
	}
	var l api.TokenList
	return l.Tokens, res.decode(&l)
}

// DeleteToken revokes a token by its ID (admin only).
func (c *Client) DeleteToken(ctx context.Context, id string) error {
	_, err := c.do(ctx, &call{method: http.MethodDelete, path: "/v1/auth/tokens/" + id, class: mutating})
	return err
}

// WhoAmI describes the client's token.
func (c *Client) WhoAmI(ctx context.Context) (*WhoAmIResp, error) {
	res, err := c.do(ctx, &call{method: http.MethodGet, path: "/v1/auth/whoami", class: idempotent})
	if err != nil {
		return nil, err
	}
	var w WhoAmIResp
	return &w, res.decode(&w)
}
