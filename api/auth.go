package api

// Access control wire types (API.md "Security: TLS and access control").

// Rule grants read and/or write on every key that starts with Prefix (a
// plain byte prefix).
type Rule struct {
	Prefix string `json:"prefix"`
	Read   bool   `json:"read"`
	Write  bool   `json:"write"`
}

// Role is a named set of rules; Admin grants everything (membership,
// snapshots, listing all leases, /v1/auth/*, every key).
type Role struct {
	Name  string `json:"name"`
	Rules []Rule `json:"rules"`
	Admin bool   `json:"admin"`
}

// PutRoleRequest is the body of PUT /v1/auth/roles/{name}.
type PutRoleRequest struct {
	Rules []Rule `json:"rules"`
	Admin bool   `json:"admin"`
}

// RoleList answers GET /v1/auth/roles, sorted by name.
type RoleList struct {
	Roles []Role `json:"roles"`
}

// CreateTokenRequest is the body of POST /v1/auth/tokens.
type CreateTokenRequest struct {
	Name  string   `json:"name"`
	Roles []string `json:"roles"`
}

// TokenInfo is a token without its secret.
type TokenInfo struct {
	ID    string   `json:"id"`
	Name  string   `json:"name"`
	Roles []string `json:"roles"`
}

// CreatedToken answers POST /v1/auth/tokens: Token is the secret, shown
// this once and stored nowhere (the cluster keeps only its hash).
type CreatedToken struct {
	ID    string   `json:"id"`
	Name  string   `json:"name"`
	Roles []string `json:"roles"`
	Token string   `json:"token"`
}

// TokenList answers GET /v1/auth/tokens, sorted by ID.
type TokenList struct {
	Tokens []TokenInfo `json:"tokens"`
}

// WhoAmI answers GET /v1/auth/whoami: the token the request carried.
type WhoAmI struct {
	ID    string   `json:"id"`
	Name  string   `json:"name"`
	Roles []string `json:"roles"`
	Admin bool     `json:"admin"`
}

// DeletedResponse answers DELETE /v1/auth/roles/{name} (the name) and
// DELETE /v1/auth/tokens/{id} (the id).
type DeletedResponse struct {
	Deleted string `json:"deleted"`
}
