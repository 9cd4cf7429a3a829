package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/rosterhq/roster/api"
	"github.com/rosterhq/roster/registry"
)

// Joiner asks an existing member, over this API, to add a new one: it is
// the registry.Joiner that rosterd hands its node. Any member accepts the
// request (a follower forwards it to the leader).
type Joiner struct {
	Client *http.Client
	// Token is presented as a bearer token: joining a cluster that
	// enforces access control needs an admin token.
	Token string
}

var (
	_ registry.Joiner         = Joiner{}
	_ registry.ClusterIDAsker = Joiner{}
)

// Join posts req to addr's /v1/cluster/members.
func (j Joiner) Join(ctx context.Context, addr string, req registry.JoinRequest) error {
	return j.send(ctx, http.MethodPost, addr, "/v1/cluster/members",
		api.AddMemberRequest{ID: req.ID, RaftAddr: req.RaftAddr, HTTPAddr: req.HTTPAddr, Voter: &req.Voter, ClusterID: req.ClusterID})
}

// UpdateMember puts req to addr's /v1/cluster/members/{id}.
func (j Joiner) UpdateMember(ctx context.Context, addr string, req registry.JoinRequest) error {
	return j.send(ctx, http.MethodPut, addr, "/v1/cluster/members/"+url.PathEscape(req.ID),
		api.AddMemberRequest{ID: req.ID, RaftAddr: req.RaftAddr, HTTPAddr: req.HTTPAddr})
}

// AskClusterID gets addr's /v1/cluster and answers its cluster_id ("" from
// a member that has none, or of a build before cluster IDs).
func (j Joiner) AskClusterID(ctx context.Context, addr string) (string, error) {
	resp, b, err := j.do(ctx, http.MethodGet, addr, "/v1/cluster", nil)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET /v1/cluster via %s: %d %s", addr, resp.StatusCode, snippet(b))
	}
	var cr api.ClusterResponse
	if err := json.Unmarshal(b, &cr); err != nil {
		return "", fmt.Errorf("GET /v1/cluster via %s: %w", addr, err)
	}
	return cr.ClusterID, nil
}

// do sends one request with body (nil: none) and reads up to 1 MiB of
// its answer (a large cluster's /v1/cluster).
func (j Joiner) do(ctx context.Context, method, addr, path string, body []byte) (*http.Response, []byte, error) {
	base := addr
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	hr, err := http.NewRequestWithContext(ctx, method, base+path, rd)
	if err != nil {
		return nil, nil, err
	}
	if body != nil {
		hr.Header.Set("Content-Type", contentJSON)
	}
	if j.Token != "" {
		hr.Header.Set("Authorization", "Bearer "+j.Token)
	}
	client := j.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(hr)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp, b, nil
}

func (j Joiner) send(ctx context.Context, method, addr, path string, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	resp, b, err := j.do(ctx, method, addr, path, body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		err := fmt.Errorf("%s %s via %s: %d %s", method, path, addr, resp.StatusCode, snippet(b))
		var e api.ErrorResponse
		if resp.StatusCode == http.StatusConflict && json.Unmarshal(b, &e) == nil && e.Error != nil && e.Error.Code == api.CodeClusterMismatch {
			// The joining node stops rather than retry (registry.joinLoop).
			err = fmt.Errorf("%w: %w", registry.ErrClusterMismatch, err)
		}
		return err
	}
	return nil
}

// snippet is the start of an answer's body, for an error message.
func snippet(b []byte) string { return strings.TrimSpace(string(b[:min(len(b), 4096)])) }
