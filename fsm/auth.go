package fsm

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
)

// Access control state (API.md "Security"): roles hold rules on key
// prefixes and an admin flag; tokens name roles and are known only by the
// SHA-256 hash of their secret. Both are replicated like keys, but live in
// their own bucket, never in the user keyspace, and never move the store
// revision.

// RootRole is the built-in role of the root token: admin, no rules needed
// (admin reads and writes everything). It cannot be defined or deleted.
const RootRole = "root"

// Limits of the access control tables.
const (
	MaxRoleName     = 64
	MaxRules        = 256
	MaxTokenName    = 128
	MaxTokenRoles   = 16
	MaxTokenID      = 64
	TokenHashLength = 32 // SHA-256
)

// Errors of the access control commands, returned as values.
var (
	ErrRoleNotFound  = errors.New("role not found")
	ErrTokenNotFound = errors.New("token not found")
	ErrTokenExists   = errors.New("token already exists")
)

// Rule grants read and/or write on every key that starts with Prefix.
type Rule struct {
	Prefix string
	Read   bool
	Write  bool
}

// Role is a named set of rules; Admin grants everything.
type Role struct {
	Name  string
	Rules []Rule
	Admin bool
}

// Token is a bearer token's record. Hash is the SHA-256 of its secret: the
// secret itself is never stored or replicated.
type Token struct {
	ID    string
	Name  string
	Roles []string
	Hash  []byte
}

// PutRole creates or replaces a role.
type PutRole struct{ Role Role }

// DeleteRole removes a role. With Detach (DetachDeletedRoles: every
// proposal now) the role's name also goes from every token that names it,
// as etcd takes a deleted role off every user, so a role defined later
// under the same name grants nothing to tokens made before. Entries
// written before the flag lack it and apply as they did then: tokens keep
// the name, and a role of that name defined again applies to them.
type DeleteRole struct {
	Name   string
	Detach bool
}

// DetachDeletedRoles gives a DeleteRole the rule that the role leaves
// every token (Detach). Proposers apply it to what they propose; a
// replica too old to know the flag cannot decode such an entry and stops,
// rather than keep granting the name the others forgot.
func DetachDeletedRoles(c Command) Command {
	if d, ok := c.(DeleteRole); ok {
		d.Detach = true
		return d
	}
	return c
}

// PutToken creates a token. With IfNone it applies only while no token
// exists at all: the first leader of a new access-controlled cluster
// proposes the root token that way, so it is created exactly once.
type PutToken struct {
	Token  Token
	IfNone bool
}

// DeleteToken removes a token: it stops working on each member as soon as
// that member applies this.
type DeleteToken struct{ ID string }

func (PutRole) cmdType() byte     { return typePutRole }
func (DeleteRole) cmdType() byte  { return typeDeleteRole }
func (PutToken) cmdType() byte    { return typePutToken }
func (DeleteToken) cmdType() byte { return typeDeleteToken }

// authTables is one immutable version of the access control state; a
// batch that changes it works on a copy.
type authTables struct {
	roles  map[string]Role
	tokens map[string]Token // by ID
	byHash map[string]string
	// admins counts the tokens with admin rights (adminTokens), kept so
	// that AccessControlled, asked on every request, costs nothing. Set
	// when the tables are committed or loaded; a clone being changed
	// has it stale until then.
	admins int
}

func newAuthTables() *authTables {
	return &authTables{roles: map[string]Role{}, tokens: map[string]Token{}, byHash: map[string]string{}}
}

func (a *authTables) clone() *authTables {
	c := &authTables{
		roles:  make(map[string]Role, len(a.roles)),
		tokens: make(map[string]Token, len(a.tokens)),
		byHash: make(map[string]string, len(a.byHash)),
	}
	for k, v := range a.roles {
		c.roles[k] = v
	}
	for k, v := range a.tokens {
		c.tokens[k] = v
	}
	for k, v := range a.byHash {
		c.byHash[k] = v
	}
	return c
}

// AccessControlled reports whether the replicated state has access
// control on: some token has admin rights. The first one is the root token
// a member started with access control bootstraps (registry), and the
// tables never lose their last admin token again (commitAuth), so once on
// it stays on, on every member that has applied as far, whatever that
// member's own flag says: a member started without it must not serve an
// access-controlled cluster to anyone. Derived from the tables alone, it
// needs no replicated marker: entries of every version replay as before.
func (s *State) AccessControlled() bool { return s.auth.admins > 0 }

// adminTokens counts the tokens that hold an admin role (order-free).
func (a *authTables) adminTokens() int {
	n := 0
	for _, t := range a.tokens {
		for _, r := range t.Roles {
			if r == RootRole || a.roles[r].Admin {
				n++
				break
			}
		}
	}
	return n
}

// Roles lists the roles, sorted by name (the built-in root role is not
// listed).
func (s *State) Roles() []Role {
	out := make([]Role, 0, len(s.auth.roles))
	for _, r := range s.auth.roles {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Role returns one role; the built-in root role is admin.
func (s *State) Role(name string) (Role, bool) {
	if name == RootRole {
		return Role{Name: RootRole, Admin: true}, true
	}
	r, ok := s.auth.roles[name]
	return r, ok
}

// Tokens lists the tokens, sorted by ID.
func (s *State) Tokens() []Token {
	out := make([]Token, 0, len(s.auth.tokens))
	for _, t := range s.auth.tokens {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// TokenCount is the number of tokens.
func (s *State) TokenCount() int { return len(s.auth.tokens) }

// SameAuth reports whether s holds the same version of the access control
// tables as o (false when o is nil): a long-lived request checks its token
// again only when they changed.
func (s *State) SameAuth(o *State) bool { return o != nil && s.auth == o.auth }

// Token returns the token with the given ID.
func (s *State) Token(id string) (Token, bool) {
	t, ok := s.auth.tokens[id]
	return t, ok
}

// TokenByHash finds the token whose secret hashes to hash.
func (s *State) TokenByHash(hash []byte) (Token, bool) {
	id, ok := s.auth.byHash[string(hash)]
	if !ok {
		return Token{}, false
	}
	return s.auth.tokens[id], true
}

// commitAuth makes next (a changed copy of the tables) the batch's tables,
// unless the change would leave no token with admin rights (nobody could
// administer the cluster any more). Auth commands are rare and the tables
// small, so every change works on a fresh copy and a refused one simply
// drops it.
func (b *batch) commitAuth(next *authTables) error {
	n := next.adminTokens()
	if b.s.auth.admins > 0 && n == 0 {
		return invalid("the change would leave no token with admin rights")
	}
	next.admins = n
	b.s.auth = next
	return nil
}

func (b *batch) putRole(c PutRole) Result {
	res := Result{Revision: b.s.revision}
	if res.Err = ValidateRole(c.Role); res.Err != nil {
		return res
	}
	next := b.s.auth.clone()
	next.roles[c.Role.Name] = c.Role
	if res.Err = b.commitAuth(next); res.Err == nil {
		b.touch(kindAuth, authRoleKey(c.Role.Name))
	}
	return res
}

func (b *batch) deleteRole(c DeleteRole) Result {
	res := Result{Revision: b.s.revision}
	if _, ok := b.s.auth.roles[c.Name]; !ok {
		res.Err = fmt.Errorf("%w: %q", ErrRoleNotFound, truncate(c.Name))
		return res
	}
	next := b.s.auth.clone()
	delete(next.roles, c.Name)
	var detached []string // token IDs, sorted: touched in one order on every replica
	if c.Detach {
		for id, t := range next.tokens {
			if i := slices.Index(t.Roles, c.Name); i >= 0 {
				t.Roles = slices.Delete(slices.Clone(t.Roles), i, i+1)
				next.tokens[id] = t
				detached = append(detached, id)
			}
		}
		slices.Sort(detached)
	}
	if res.Err = b.commitAuth(next); res.Err == nil {
		b.touch(kindAuth, authRoleKey(c.Name))
		for _, id := range detached {
			b.touch(kindAuth, authTokenKey(id))
		}
	}
	return res
}

func (b *batch) putToken(c PutToken) Result {
	res := Result{Revision: b.s.revision}
	t, a := c.Token, b.s.auth
	switch err := ValidateToken(t); {
	case err != nil:
		res.Err = err
	case c.IfNone && len(a.tokens) > 0:
		res.Err = fmt.Errorf("%w: tokens exist already", ErrTokenExists)
	case a.tokens[t.ID].ID != "":
		res.Err = fmt.Errorf("%w: id %q", ErrTokenExists, t.ID)
	case a.byHash[string(t.Hash)] != "":
		res.Err = fmt.Errorf("%w: the secret is in use", ErrTokenExists)
	}
	if res.Err != nil {
		return res
	}
	for _, r := range t.Roles {
		if _, ok := b.s.Role(r); !ok {
			res.Err = invalid("role %q does not exist", truncate(r))
			return res
		}
	}
	next := a.clone()
	next.tokens[t.ID] = t
	next.byHash[string(t.Hash)] = t.ID
	if res.Err = b.commitAuth(next); res.Err == nil {
		b.touch(kindAuth, authTokenKey(t.ID))
	}
	return res
}

func (b *batch) deleteToken(c DeleteToken) Result {
	res := Result{Revision: b.s.revision}
	t, ok := b.s.auth.tokens[c.ID]
	if !ok {
		res.Err = fmt.Errorf("%w: %q", ErrTokenNotFound, truncate(c.ID))
		return res
	}
	next := b.s.auth.clone()
	delete(next.tokens, c.ID)
	delete(next.byHash, string(t.Hash))
	if res.Err = b.commitAuth(next); res.Err == nil {
		b.touch(kindAuth, authTokenKey(c.ID))
	}
	return res
}

// ErrRootRoleBuiltIn refuses a change or a delete of the built-in role
// root, which no table holds.
var ErrRootRoleBuiltIn = fmt.Errorf("%w: role %q is built in and cannot be changed", ErrInvalidArgument, RootRole)

// ValidateRole checks a role before it is proposed (and again on apply).
func ValidateRole(r Role) error {
	if err := validateName("role name", r.Name, MaxRoleName); err != nil {
		return err
	}
	if r.Name == RootRole {
		return ErrRootRoleBuiltIn
	}
	if len(r.Rules) > MaxRules {
		return invalid("%d rules; at most %d per role", len(r.Rules), MaxRules)
	}
	for i, rule := range r.Rules {
		if err := ValidateKey(rule.Prefix); err != nil {
			return invalid("rules[%d]: prefix: %v", i, strings.TrimPrefix(err.Error(), ErrInvalidArgument.Error()+": "))
		}
		if !rule.Read && !rule.Write {
			return invalid("rules[%d]: grants neither read nor write", i)
		}
	}
	return nil
}

// ValidateToken checks a token record before it is proposed.
func ValidateToken(t Token) error {
	if err := validateName("token id", t.ID, MaxTokenID); err != nil {
		return err
	}
	if err := ValidateTokenName(t.Name); err != nil {
		return err
	}
	if len(t.Hash) != TokenHashLength {
		return invalid("token hash is %d bytes, want %d", len(t.Hash), TokenHashLength)
	}
	if len(t.Roles) == 0 || len(t.Roles) > MaxTokenRoles {
		return invalid("a token names 1 to %d roles, not %d", MaxTokenRoles, len(t.Roles))
	}
	seen := map[string]bool{}
	for _, r := range t.Roles {
		if err := validateName("role name", r, MaxRoleName); err != nil {
			return err
		}
		if seen[r] {
			return invalid("role %q named twice", r)
		}
		seen[r] = true
	}
	return nil
}

// ValidateTokenName checks a token's display name: 1 to MaxTokenName bytes
// of printable UTF-8.
func ValidateTokenName(name string) error {
	switch {
	case name == "" || len(name) > MaxTokenName:
		return invalid("token name must be 1 to %d bytes", MaxTokenName)
	case !utf8.ValidString(name):
		return invalid("token name is not valid UTF-8")
	case strings.IndexFunc(name, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0:
		return invalid("token name has a control character")
	}
	return nil
}

// validateName allows the characters of names that appear in URLs: letters,
// digits, '-', '_' and '.'.
func validateName(what, s string, maxLen int) error {
	if s == "" || len(s) > maxLen {
		return invalid("%s must be 1 to %d characters", what, maxLen)
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return invalid("%s %q: use letters, digits, '-', '_' and '.'", what, truncate(s))
		}
	}
	return nil
}

// Wire encoding of the access control commands (see codec.go).
func encodeAuth(b []byte, c Command) []byte {
	switch c := c.(type) {
	case PutRole:
		b = putString(b, 1, c.Role.Name)
		for _, r := range c.Role.Rules {
			var rb []byte
			rb = protowire.AppendTag(rb, 1, protowire.BytesType)
			rb = protowire.AppendString(rb, r.Prefix) // even when empty: strict decode expects it
			rb = putBool(rb, 2, r.Read)
			rb = putBool(rb, 3, r.Write)
			b = protowire.AppendTag(b, 2, protowire.BytesType)
			b = protowire.AppendBytes(b, rb)
		}
		b = putBool(b, 3, c.Role.Admin)
	case DeleteRole:
		b = putString(b, 1, c.Name)
		b = putBool(b, 2, c.Detach)
	case PutToken:
		b = putString(b, 1, c.Token.ID)
		b = putString(b, 2, c.Token.Name)
		for _, r := range c.Token.Roles {
			b = protowire.AppendTag(b, 3, protowire.BytesType)
			b = protowire.AppendString(b, r)
		}
		b = putBytes(b, 4, c.Token.Hash)
		b = putBool(b, 5, c.IfNone)
	case DeleteToken:
		b = putString(b, 1, c.ID)
	}
	return b
}

func decodeAuth(typ byte, body []byte) (Command, error) {
	switch typ {
	case typePutRole:
		var p PutRole
		err := fields(body, func(n protowire.Number, f field) error {
			switch n {
			case 1:
				return f.str(&p.Role.Name)
			case 2:
				var buf []byte
				if err := f.bytes(&buf); err != nil {
					return err
				}
				var r Rule
				err := fields(buf, func(n protowire.Number, f field) error {
					switch n {
					case 1:
						return f.str(&r.Prefix)
					case 2:
						return f.boolean(&r.Read)
					case 3:
						return f.boolean(&r.Write)
					}
					return errUnknownField
				})
				p.Role.Rules = append(p.Role.Rules, r)
				return err
			case 3:
				return f.boolean(&p.Role.Admin)
			}
			return errUnknownField
		})
		return p, err
	case typeDeleteRole:
		var d DeleteRole
		err := fields(body, func(n protowire.Number, f field) error {
			switch n {
			case 1:
				return f.str(&d.Name)
			case 2:
				return f.boolean(&d.Detach)
			}
			return errUnknownField
		})
		return d, err
	case typePutToken:
		var p PutToken
		err := fields(body, func(n protowire.Number, f field) error {
			switch n {
			case 1:
				return f.str(&p.Token.ID)
			case 2:
				return f.str(&p.Token.Name)
			case 3:
				var r string
				if err := f.str(&r); err != nil {
					return err
				}
				p.Token.Roles = append(p.Token.Roles, r)
				return nil
			case 4:
				return f.bytes(&p.Token.Hash)
			case 5:
				return f.boolean(&p.IfNone)
			}
			return errUnknownField
		})
		return p, err
	case typeDeleteToken:
		var d DeleteToken
		err := fields(body, func(n protowire.Number, f field) error {
			if n == 1 {
				return f.str(&d.ID)
			}
			return errUnknownField
		})
		return d, err
	}
	return nil, fmt.Errorf("unknown command type %d", typ)
}

// The auth bucket holds one record per role ("r/" + name) and per token
// ("t/" + id), each the encoding of the command that creates it; the
// checkpoint writes the ones a batch touched (records.go).
func authRoleKey(name string) string { return "r/" + name }
func authTokenKey(id string) string  { return "t/" + id }

// storedAuth appends the stored form of one auth record as s has it.
func storedAuth(dst []byte, s *State, key string) ([]byte, bool) {
	switch {
	case strings.HasPrefix(key, "r/"):
		r, ok := s.auth.roles[key[2:]]
		if !ok {
			return dst, false
		}
		return append(dst, Encode(PutRole{Role: r})...), true
	case strings.HasPrefix(key, "t/"):
		t, ok := s.auth.tokens[key[2:]]
		if !ok {
			return dst, false
		}
		return append(dst, Encode(PutToken{Token: t})...), true
	}
	return dst, false
}

func (l *loader) auth(k, v []byte) error {
	c, err := Decode(v)
	if err != nil {
		return fmt.Errorf("auth record %q: %w", k, err)
	}
	a := l.s.auth
	switch c := c.(type) {
	case PutRole:
		a.roles[c.Role.Name] = c.Role
	case PutToken:
		a.tokens[c.Token.ID] = c.Token
		a.byHash[string(c.Token.Hash)] = c.Token.ID
	default:
		return fmt.Errorf("auth record %q: unexpected %T", k, c)
	}
	return nil
}
