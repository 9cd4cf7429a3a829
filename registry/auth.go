package registry

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/rosterhq/roster/fsm"
)

// Access control (API.md "Security"). Tokens and roles are replicated
// state (fsm/auth.go); a request is checked on the member that receives it
// against that member's applied state, without a round trip, unless that
// state does not know its token (tokenwait.go).
var (
	// ErrUnauthenticated: no token, or one that no applied token matches.
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrPermissionDenied: the token is valid but its roles do not allow
	// the request.
	ErrPermissionDenied = errors.New("permission denied")
	// ErrUnknownToken (an ErrUnauthenticated): no token of the state
	// matches. A front end asks the leader before it refuses one
	// (ReadForUnknownToken): the token may be new.
	ErrUnknownToken = fmt.Errorf("%w: unknown token", ErrUnauthenticated)
)

// tokenPrefix starts every secret this package makes, so that a leaked one
// is recognisable (secret scanners, logs).
const tokenPrefix = "roster_"

// MinRootTokenLength bounds the root token an operator chooses: it is the
// only secret not drawn from crypto/rand.
const MinRootTokenLength = 16

// HashToken is the hash under which a secret is stored: SHA-256 suffices
// for secrets of 256 random bits (nothing to brute-force), and nothing but
// the hash is ever written down.
func HashToken(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// newSecret draws a token secret: 256 random bits, base64url.
func newSecret() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return tokenPrefix + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// Principal is who a request's token says the caller is, resolved against
// one applied state.
type Principal struct {
	TokenID string
	Name    string
	Roles   []string
	admin   bool
	rules   []fsm.Rule // of every role the token names that exists
}

// Admin reports whether one of the token's roles is admin.
func (p *Principal) Admin() bool { return p.admin }

// CanRead reports whether the token may read key.
func (p *Principal) CanRead(key string) bool { return p.covers(key, false, false) }

// CanWrite reports whether the token may write key.
func (p *Principal) CanWrite(key string) bool { return p.covers(key, false, true) }

// CanReadPrefix reports whether the token may list or watch every key
// under prefix: one rule must cover the whole prefix (a listing wider than
// the rule is refused, never filtered).
func (p *Principal) CanReadPrefix(prefix string) bool { return p.covers(prefix, true, false) }

// CanWritePrefix reports whether the token may delete every key under
// prefix.
func (p *Principal) CanWritePrefix(prefix string) bool { return p.covers(prefix, true, true) }

// covers: a key (or every key under a prefix) starts with a rule's prefix.
// Every key begins with "/", so a prefix that is itself a prefix of "/"
// (the empty one) means all keys.
func (p *Principal) covers(s string, prefix, write bool) bool {
	if p.admin {
		return true
	}
	if prefix && s == "" {
		s = "/"
	}
	for _, r := range p.rules {
		if (write && r.Write || !write && r.Read) && strings.HasPrefix(s, r.Prefix) {
			return true
		}
	}
	return false
}

// Authenticate resolves a bearer token against this member's applied state.
func (n *Node) Authenticate(token string) (*Principal, error) {
	return Authenticate(n.fsm.State(), token)
}

// Authenticate resolves a bearer token against st.
func Authenticate(st *fsm.State, token string) (*Principal, error) {
	if token == "" {
		return nil, fmt.Errorf("%w: a token is required (Authorization: Bearer <token>)", ErrUnauthenticated)
	}
	t, ok := st.TokenByHash(HashToken(token))
	if !ok {
		return nil, ErrUnknownToken
	}
	return principalOf(st, t), nil
}

// principalOf is what t may do in st.
func principalOf(st *fsm.State, t fsm.Token) *Principal {
	p := &Principal{TokenID: t.ID, Name: t.Name, Roles: t.Roles}
	for _, name := range t.Roles {
		r, ok := st.Role(name)
		if !ok {
			continue // deleted: grants nothing
		}
		p.admin = p.admin || r.Admin
		p.rules = append(p.rules, r.Rules...)
	}
	return p
}

// PutRole creates or replaces a role.
func (n *Node) PutRole(ctx context.Context, r fsm.Role) error {
	if err := fsm.ValidateRole(r); err != nil {
		return err
	}
	_, err := n.write(ctx, fsm.PutRole{Role: r})
	return err
}

// DeleteRole removes a role. The built-in role root is refused as
// PutRole refuses it: the state machine keeps it in no table, so its
// delete would otherwise be answered "role not found" for a role that
// Role shows and the root token holds.
func (n *Node) DeleteRole(ctx context.Context, name string) error {
	if name == fsm.RootRole {
		return fsm.ErrRootRoleBuiltIn
	}
	_, err := n.write(ctx, fsm.DeleteRole{Name: name})
	return err
}

// CreateToken creates a token naming roles and returns its record and its
// secret, which exists nowhere else: only its hash is proposed.
func (n *Node) CreateToken(ctx context.Context, name string, roles []string) (fsm.Token, string, error) {
	var idb [8]byte
	if _, err := rand.Read(idb[:]); err != nil {
		return fsm.Token{}, "", err
	}
	secret, err := newSecret()
	if err != nil {
		return fsm.Token{}, "", err
	}
	t := fsm.Token{ID: hex.EncodeToString(idb[:]), Name: name, Roles: roles, Hash: HashToken(secret)}
	if err := fsm.ValidateToken(t); err != nil {
		return fsm.Token{}, "", err
	}
	// Roles made just before, through any member, must count: read them
	// linearizably (a follower's replica may not have them yet).
	st, err := n.Read(ctx, false)
	if err != nil {
		return fsm.Token{}, "", err
	}
	for _, r := range roles {
		if _, ok := st.Role(r); !ok {
			return fsm.Token{}, "", fmt.Errorf("%w: role %q does not exist", fsm.ErrInvalidArgument, r)
		}
	}
	if _, err := n.write(ctx, fsm.PutToken{Token: t}); err != nil {
		return fsm.Token{}, "", err
	}
	return t, secret, nil
}

// DeleteToken removes a token.
func (n *Node) DeleteToken(ctx context.Context, id string) error {
	_, err := n.write(ctx, fsm.DeleteToken{ID: id})
	return err
}

// bootstrapRoot runs on a new leader: when the cluster has no token yet
// and this member was given a root token (Config.RootTokenHash), it
// proposes it, conditional on the tables still being empty, so that of
// several members started with the same root token exactly one write
// takes. A cluster that has tokens already keeps them: the root token
// given at start is then ignored.
func (n *Node) bootstrapRoot(ctx context.Context) {
	st := n.fsm.State()
	switch {
	case st.TokenCount() > 0:
		if len(n.cfg.RootTokenHash) > 0 {
			n.log.Debug("root token given, but the cluster has tokens already: ignored")
		}
		return
	case len(n.cfg.RootTokenHash) == 0:
		if n.cfg.Auth {
			n.log.Error("access control is on but the cluster has no token: no request but /healthz, /readyz and /metrics can succeed; restart a member with ROSTER_ROOT_TOKEN or -root-token-file to create the root token")
		}
		return
	}
	t := fsm.Token{ID: "root", Name: "root", Roles: []string{fsm.RootRole}, Hash: n.cfg.RootTokenHash}
	_, err := n.propose(ctx, "auth", fsm.PutToken{Token: t, IfNone: true})
	switch {
	case err == nil:
		n.log.Info("access control: root token created")
	case errors.Is(err, fsm.ErrTokenExists):
	default:
		n.log.Warn("access control: could not create the root token; the next leader retries", "error", err)
	}
}

// watchAccessControl warns, once, when this member was started without
// access control (Config.Auth off) but has applied a state that has it on
// (fsm.State.AccessControlled): its front ends then enforce it all the
// same, as one mis-started member must not open an access-controlled
// cluster, and the operator should know why requests need tokens and
// that the flag is missing. A member restarted so sees it as soon as it
// has loaded its state.
func (n *Node) watchAccessControl() {
	defer n.wg.Done()
	if n.cfg.Auth {
		return
	}
	for {
		changed := n.fsm.Changed()
		if n.fsm.State().AccessControlled() {
			n.log.Warn("access control is on in the cluster's replicated state (it has an admin token): this member enforces it on every port although it was started without -auth; start it with -auth")
			return
		}
		select {
		case <-n.stop:
			return
		case <-changed:
		}
	}
}
