package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/rosterhq/roster/client"
	"github.com/spf13/cobra"
)

func (a *app) snapshotCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "snapshot",
		Short: "Make a member take a raft snapshot",
		Long: `Make the answering member take a raft snapshot, which compacts its log, and
print the raft index the snapshot covers. Give a single --endpoints to choose
the member.`,
		Example: `  rosterctl --endpoints 10.0.0.2:7370 snapshot`,
		Args:    exactArgs(0),
	}
	cmd.RunE = a.action(func(ctx context.Context, _ []string) error {
		cli, err := a.client()
		if err != nil {
			return err
		}
		resp, err := cli.Snapshot(ctx)
		if err != nil {
			return err
		}
		if a.jsonOut() {
			return a.printJSON(resp)
		}
		return a.printFields(field{"index", utoa(resp.Index)})
	})
	return cmd
}

// memberStatus is one member in the output of status: the member, how its
// /readyz answered, and its raft state as it reports it itself.
type memberStatus struct {
	client.Member
	// Health is "ready", the code of a /readyz refusal ("no_leader",
	// "not_ready"), "unreachable", or "unknown" (no HTTP address).
	Health       string  `json:"health"`
	Error        string  `json:"error,omitempty"`
	Term         *uint64 `json:"term,omitempty"`
	CommitIndex  *uint64 `json:"commit_index,omitempty"`
	AppliedIndex *uint64 `json:"applied_index,omitempty"`
}

// statusJSON is the output of status with -o json: GET /v1/cluster as the
// answering member sees it, each member with its own health and state.
type statusJSON struct {
	Leader       *client.Member `json:"leader"`
	Term         uint64         `json:"term"`
	CommitIndex  uint64         `json:"commit_index"`
	AppliedIndex uint64         `json:"applied_index"`
	ClusterID    string         `json:"cluster_id"`
	Members      []memberStatus `json:"members"`
}

func (a *app) statusCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the leader, raft state and health of every member",
		Long: `Show the cluster as one member sees it (leader, term, commit and applied
index), then ask every member itself for its health (GET /readyz: "ready",
"no_leader", "not_ready" or "unreachable") and its own term and indexes.

Exit code 0 when a leader is known (check the HEALTH column or the json
"health" fields for the members); 6 when no leader is known or no member
answers.`,
		Example: `  rosterctl --endpoints 10.0.0.1:7370,10.0.0.2:7370 status
  rosterctl -o json status | jq -r '.members[] | select(.health != "ready") | .id'`,
		Args: exactArgs(0),
	}
	cmd.RunE = a.action(func(ctx context.Context, _ []string) error {
		cli, err := a.client()
		if err != nil {
			return err
		}
		cr, err := cli.Cluster(ctx)
		if err != nil {
			return err
		}
		out := statusJSON{
			Leader: cr.Leader, Term: cr.Term, CommitIndex: cr.CommitIndex, AppliedIndex: cr.AppliedIndex,
			ClusterID: cr.ClusterID,
			Members:   a.probeMembers(ctx, cli, cr.Members),
		}
		if a.jsonOut() {
			err = a.printJSON(out)
		} else {
			err = a.printStatus(out)
		}
		if err != nil {
			return err
		}
		if out.Leader == nil {
			return &codedError{code: exitUnavailable, msg: "no leader"}
		}
		return nil
	})
	return cmd
}

func (a *app) printStatus(s statusJSON) error {
	leader := "(none)"
	clusterID := "(none)" // a member of a cluster created before the ID existed
	if s.ClusterID != "" {
		clusterID = s.ClusterID
	}
	if s.Leader != nil {
		leader = displayString(s.Leader.ID)
		if s.Leader.HTTPAddr != "" {
			leader += " (" + s.Leader.HTTPAddr + ")"
		}
	}
	if err := a.printFields(
		field{"leader", leader},
		field{"term", utoa(s.Term)},
		field{"commit_index", utoa(s.CommitIndex)},
		field{"applied_index", utoa(s.AppliedIndex)},
		field{"cluster_id", clusterID},
	); err != nil {
		return err
	}
	fmt.Fprintln(a.stdout)
	tw := newTable(a.stdout)
	row(tw, "ID", "HTTP_ADDR", "VOTER", "LEADER", "HEALTH", "TERM", "COMMIT_INDEX", "APPLIED_INDEX")
	num := func(p *uint64) string {
		if p == nil {
			return "-"
		}
		return utoa(*p)
	}
	for _, m := range s.Members {
		row(tw, displayString(m.ID), nameCell(m.HTTPAddr), btoa(m.Voter), btoa(m.Leader), m.Health,
			num(m.Term), num(m.CommitIndex), num(m.AppliedIndex))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, m := range s.Members {
		if m.Error != "" {
			fmt.Fprintf(a.stdout, "%s: %s\n", displayString(m.ID), m.Error)
		}
	}
	return nil
}

// probeMembers asks every member, at once, for its /readyz and
// /v1/cluster. The client talks to "any member", so these per-member calls
// use a plain HTTP client with the scheme of the first endpoint.
func (a *app) probeMembers(ctx context.Context, cli *client.Client, members []client.Member) []memberStatus {
	out := make([]memberStatus, len(members))
	var err error
	scheme := "http"
	if eps := cli.Endpoints(); len(eps) > 0 {
		if u, err := url.Parse(eps[0]); err == nil && u.Scheme != "" {
			scheme = u.Scheme
		}
	}
	tr := &http.Transport{}
	if a.cacert != "" || a.cert != "" {
		if tr.TLSClientConfig, err = client.LoadTLS(a.cacert, a.cert, a.key); err != nil {
			for i, m := range members {
				out[i] = memberStatus{Member: m, Health: "unknown", Error: err.Error()}
			}
			return out
		}
	}
	hc := &http.Client{Timeout: a.timeout, Transport: tr}
	defer hc.CloseIdleConnections()
	var wg sync.WaitGroup
	for i, m := range members {
		out[i] = memberStatus{Member: m}
		if m.HTTPAddr == "" {
			out[i].Health, out[i].Error = "unknown", "no HTTP address known"
			continue
		}
		base := m.HTTPAddr // https://host:port when the member serves TLS
		if !strings.Contains(base, "://") {
			base = scheme + "://" + base
		}
		wg.Go(func() { probe(ctx, hc, a.tokenOrEnv(), base, &out[i]) })
	}
	wg.Wait()
	return out
}

// probe fills in one member's health and raft state.
func probe(ctx context.Context, hc *http.Client, token, base string, st *memberStatus) {
	status, body, err := httpGet(ctx, hc, "", base+"/readyz")
	if err != nil {
		st.Health, st.Error = "unreachable", err.Error()
		return
	}
	if status == http.StatusOK {
		st.Health = "ready"
	} else {
		var env struct {
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		st.Health = "not_ready"
		if json.Unmarshal(body, &env) == nil && env.Error.Code != "" {
			st.Health, st.Error = env.Error.Code, env.Error.Message
		} else {
			st.Error = fmt.Sprintf("/readyz answered %d", status)
		}
	}
	status, body, err = httpGet(ctx, hc, token, base+"/v1/cluster")
	if err != nil || status != http.StatusOK {
		return
	}
	var cr client.ClusterResponse
	if json.Unmarshal(body, &cr) == nil {
		st.Term, st.CommitIndex, st.AppliedIndex = &cr.Term, &cr.CommitIndex, &cr.AppliedIndex
	}
}

func httpGet(ctx context.Context, hc *http.Client, token, u string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, body, err
}
