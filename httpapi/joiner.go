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

var _ registry.Joiner = Joiner{}

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

func (j Joiner) send(ctx context.Context, method, addr, path string, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	base := addr
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	hr, err := http.NewRequestWithContext(ctx, method, base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	hr.Header.Set("Content-Type", contentJSON)
	if j.Token != "" {
		hr.Header.Set("Authorization", "Bearer "+j.Token)
	}
	client := j.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(hr)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		err := fmt.Errorf("%s %s via %s: %d %s", method, path, addr, resp.StatusCode, strings.TrimSpace(string(b)))
		var e api.ErrorResponse
		if resp.StatusCode == http.StatusConflict && json.Unmarshal(b, &e) == nil && e.Error != nil && e.Error.Code == api.CodeClusterMismatch {
			// The joining node stops rather than retry (registry.joinLoop).
			err = fmt.Errorf("%w: %w", registry.ErrClusterMismatch, err)
		}
		return err
	}
	return nil
}
