package main

import (
	"context"

	"github.com/rosterhq/roster/client"
	"github.com/spf13/cobra"
)

func (a *app) memberCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "member",
		Short: "List, add and remove cluster members",
		Args:  groupArgs,
		RunE:  groupRun,
	}
	cmd.AddCommand(a.memberListCmd(), a.memberAddCmd(), a.memberRemoveCmd())
	return cmd
}

func (a *app) memberListCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the members of the cluster",
		Long: `List the members of the cluster as the answering member sees them: ID,
raft and HTTP addresses, whether each votes and which one leads.
With -o json: {"members":[{"id","raft_addr","http_addr","voter","leader"}]}.`,
		Args: exactArgs(0),
	}
	cmd.RunE = a.action(func(ctx context.Context, _ []string) error {
		cli, err := a.client()
		if err != nil {
			return err
		}
		resp, err := cli.Cluster(ctx)
		if err != nil {
			return err
		}
		if a.jsonOut() {
			return a.printJSON(struct {
				Members []client.Member `json:"members"`
			}{resp.Members})
		}
		tw := newTable(a.stdout)
		row(tw, "ID", "RAFT_ADDR", "HTTP_ADDR", "VOTER", "LEADER")
		for _, m := range resp.Members {
			row(tw, displayString(m.ID), nameCell(m.RaftAddr), nameCell(m.HTTPAddr), btoa(m.Voter), btoa(m.Leader))
		}
		return tw.Flush()
	})
	return cmd
}

// memberJSON is the answer to POST /v1/cluster/members.
type memberJSON struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	HTTPAddr string `json:"http_addr"`
	Voter    bool   `json:"voter"`
}

func (a *app) memberAddCmd() *cobra.Command {
	var nonVoter bool
	cmd := &cobra.Command{
		Use:   "add ID RAFT_ADDR [HTTP_ADDR]",
		Short: "Add a member to the cluster",
		Long: `Add the member ID, whose raft transport listens on RAFT_ADDR (host:port),
to the cluster; it must have been started with -bootstrap=false. HTTP_ADDR
is where it serves the API (recommended: status and forwarding use it).
Returns once the member is part of the configuration. --nonvoter adds a
member that replicates the data but does not vote.`,
		Example: `  rosterctl member add n4 10.0.0.4:7371 10.0.0.4:7370
  rosterctl member add r1 10.0.0.9:7371 10.0.0.9:7370 --nonvoter`,
		Args: rangeArgs(2, 3),
	}
	cmd.Flags().BoolVar(&nonVoter, "nonvoter", false, "add a non-voting member")
	cmd.RunE = a.action(func(ctx context.Context, args []string) error {
		m := client.Member{ID: args[0], RaftAddr: args[1], Voter: !nonVoter}
		if len(args) == 3 {
			m.HTTPAddr = args[2]
		}
		cli, err := a.client()
		if err != nil {
			return err
		}
		resp, err := cli.MemberAdd(ctx, m)
		if err != nil {
			return err
		}
		out := memberJSON{ID: resp.ID, RaftAddr: resp.RaftAddr, HTTPAddr: resp.HTTPAddr, Voter: resp.Voter}
		if a.jsonOut() {
			return a.printJSON(out)
		}
		return a.printFields(
			field{"id", displayString(out.ID)},
			field{"raft_addr", nameCell(out.RaftAddr)},
			field{"http_addr", nameCell(out.HTTPAddr)},
			field{"voter", btoa(out.Voter)},
		)
	})
	return cmd
}

func (a *app) memberRemoveCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "remove ID",
		Aliases: []string{"rm"},
		Short:   "Remove a member from the cluster",
		Long:    `Remove the member ID from the cluster's configuration.`,
		Example: `  rosterctl member remove n4`,
		Args:    exactArgs(1),
	}
	cmd.RunE = a.action(func(ctx context.Context, args []string) error {
		cli, err := a.client()
		if err != nil {
			return err
		}
		if err := cli.MemberRemove(ctx, args[0]); err != nil {
			return namedNotFound(err)
		}
		if a.jsonOut() {
			return a.printJSON(struct {
				Removed string `json:"removed"`
			}{args[0]})
		}
		return a.printFields(field{"removed", displayString(args[0])})
	})
	return cmd
}
