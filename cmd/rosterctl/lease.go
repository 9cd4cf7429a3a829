package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/rosterhq/roster/client"
	"github.com/spf13/cobra"
)

func (a *app) leaseCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "lease",
		Short: "Grant, renew, revoke and inspect leases",
		Long: `Leases give keys a lifetime: a key put with --lease ID is deleted when the
lease expires (no keep-alive for its TTL) or is revoked.
Exit code 4: the lease does not exist (or expired).`,
		Args: groupArgs,
		RunE: groupRun,
	}
	cmd.AddCommand(a.leaseGrantCmd(), a.leaseKeepAliveCmd(), a.leaseRevokeCmd(), a.leaseTTLCmd(), a.leaseListCmd())
	return cmd
}

func (a *app) leaseGrantCmd() *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "grant TTL",
		Short: "Create a lease of TTL seconds",
		Long: `Create a lease of TTL whole seconds (2 to 2592000) and print its ID. The
lease expires TTL seconds after its last keep-alive unless renewed
("rosterctl lease keepalive ID") or revoked.`,
		Example: `  rosterctl lease grant 10 --name /services/api/n1
  ID=$(rosterctl -o json lease grant 30 | jq -r .id)`,
		Args: exactArgs(1),
	}
	cmd.Flags().StringVar(&name, "name", "", "a name for the lease, shown by ttl and list")
	cmd.RunE = a.action(func(ctx context.Context, args []string) error {
		ttl, err := strconv.ParseInt(args[0], 10, 64)
		if err != nil || ttl <= 0 {
			return usageError(fmt.Sprintf("invalid TTL %q: want whole seconds, e.g. 10", args[0]))
		}
		var opts []client.OpOption
		if name != "" {
			opts = append(opts, client.WithName(name))
		}
		cli, err := a.client()
		if err != nil {
			return err
		}
		resp, err := cli.Grant(ctx, ttl, opts...)
		if err != nil {
			return err
		}
		if a.jsonOut() {
			return a.printJSON(resp)
		}
		return a.printFields(field{"id", resp.ID.String()}, field{"ttl", itoa(resp.TTL)}, field{"name", nameCell(resp.Name)})
	})
	return cmd
}

func (a *app) leaseKeepAliveCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keepalive ID",
		Short: "Keep a lease alive until interrupted",
		Long: `Renew lease ID at once and then every third of its TTL, printing each
renewal, until interrupted (Ctrl-C: exit code 0; the lease then expires after
its TTL unless revoked). Exit code 4 when the lease does not exist or was
lost; 6 when no renewal got through before it could have expired.`,
		Example: `  rosterctl lease keepalive 1728394857362391040`,
		Args:    exactArgs(1),
	}
	cmd.RunE = a.action(func(ctx context.Context, args []string) error {
		id, err := parseLease(args[0])
		if err != nil {
			return err
		}
		cli, err := a.client()
		if err != nil {
			return err
		}
		// One renewal bounded by --timeout first: the loop below gives a
		// lease whose TTL it has not learnt 5 s and then only closes its
		// channel, so an unknown lease (exit 4) or no member reachable
		// (exit 6) would otherwise go unreported as such.
		if _, err := cli.KeepAliveOnce(ctx, id); errors.Is(err, client.ErrLeaseNotFound) {
			return leaseNotFound(id, err)
		} else if err != nil {
			return err
		}
		ch, err := cli.KeepAlive(ctx, id)
		if err != nil {
			return err
		}
		for r := range ch {
			if a.jsonOut() {
				err = a.printJSONLine(r)
			} else {
				_, err = fmt.Fprintf(a.stdout, "lease %s renewed: ttl %d, remaining %d\n", r.ID, r.TTL, r.Remaining)
			}
			if err != nil {
				return err
			}
		}
		if ctx.Err() != nil {
			return nil // interrupted: the normal end
		}
		// The channel closed on its own: the lease is gone, or no renewal
		// got through in time. Ask once which.
		_, err = cli.TimeToLive(context.WithoutCancel(ctx), id)
		switch {
		case err == nil:
			return &codedError{code: exitUnavailable, msg: fmt.Sprintf("lease %s: no renewal got through before it could have expired", id)}
		case errors.Is(err, client.ErrLeaseNotFound):
			return leaseNotFound(id, err)
		}
		return err
	})
	return cmd
}

func (a *app) leaseRevokeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "revoke ID",
		Short: "Delete a lease and every key attached to it",
		Long: `Revoke lease ID: the lease and all its keys are deleted at once (watchers
see the keys go without waiting for the TTL). Prints the store revision
after the deletes. Exit code 4: the lease does not exist.`,
		Example: `  rosterctl lease revoke 1728394857362391040`,
		Args:    exactArgs(1),
	}
	cmd.RunE = a.action(func(ctx context.Context, args []string) error {
		id, err := parseLease(args[0])
		if err != nil {
			return err
		}
		cli, err := a.client()
		if err != nil {
			return err
		}
		resp, err := cli.Revoke(ctx, id)
		if errors.Is(err, client.ErrLeaseNotFound) {
			return leaseNotFound(id, err)
		}
		if err != nil {
			return err
		}
		if a.jsonOut() {
			return a.printJSON(struct {
				Revision int64 `json:"revision"`
			}{resp.Revision})
		}
		return a.printFields(field{"revision", itoa(resp.Revision)})
	})
	return cmd
}

func (a *app) leaseTTLCmd() *cobra.Command {
	var keys bool
	cmd := &cobra.Command{
		Use:     "ttl ID",
		Aliases: []string{"timetolive"},
		Short:   "Show a lease's TTL and remaining time",
		Long: `Show lease ID: its name, TTL and the seconds remaining (rounded up); with
--keys also the keys attached to it. Exit code 4: the lease does not exist.`,
		Example: `  rosterctl lease ttl 1728394857362391040 --keys`,
		Args:    exactArgs(1),
	}
	cmd.Flags().BoolVar(&keys, "keys", false, "list the keys attached to the lease")
	cmd.RunE = a.action(func(ctx context.Context, args []string) error {
		id, err := parseLease(args[0])
		if err != nil {
			return err
		}
		var opts []client.OpOption
		if keys {
			opts = append(opts, client.WithKeys())
		}
		cli, err := a.client()
		if err != nil {
			return err
		}
		resp, err := cli.TimeToLive(ctx, id, opts...)
		if errors.Is(err, client.ErrLeaseNotFound) {
			return leaseNotFound(id, err)
		}
		if err != nil {
			return err
		}
		if a.jsonOut() {
			if !keys {
				return a.printJSON(resp.LeaseStatus)
			}
			ks := resp.Keys
			if ks == nil {
				ks = []string{}
			}
			return a.printJSON(struct {
				client.LeaseStatus
				Keys []string `json:"keys"`
			}{resp.LeaseStatus, ks})
		}
		fields := []field{
			{"id", resp.ID.String()},
			{"name", nameCell(resp.Name)},
			{"ttl", itoa(resp.TTL)},
			{"remaining", itoa(resp.Remaining)},
		}
		if keys {
			if len(resp.Keys) == 0 {
				fields = append(fields, field{"keys", "-"})
			}
			for i, k := range resp.Keys {
				name := ""
				if i == 0 {
					name = "keys"
				}
				fields = append(fields, field{name, displayString(k)})
			}
		}
		return a.printFields(fields...)
	})
	return cmd
}

func (a *app) leaseListCmd() *cobra.Command {
	var limit int64
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the leases",
		Long:    `List the leases in ascending ID order, with their names, TTLs and remaining seconds.`,
		Example: `  rosterctl lease list
  rosterctl -o json lease list --limit 100`,
		Args: exactArgs(0),
	}
	cmd.Flags().Int64Var(&limit, "limit", 0, "at most `N` leases (0: all)")
	cmd.RunE = a.action(func(ctx context.Context, _ []string) error {
		if limit < 0 {
			return usageError("--limit must not be negative")
		}
		cli, err := a.client()
		if err != nil {
			return err
		}
		resp, err := cli.Leases(ctx, client.WithLimit(limit))
		if err != nil {
			return err
		}
		if a.jsonOut() {
			return a.printJSON(struct {
				Leases []client.LeaseStatus `json:"leases"`
				More   bool                 `json:"more"`
			}{resp.Leases, resp.More})
		}
		tw := newTable(a.stdout)
		row(tw, "ID", "NAME", "TTL", "REMAINING")
		for _, l := range resp.Leases {
			row(tw, l.ID.String(), nameCell(l.Name), itoa(l.TTL), itoa(l.Remaining))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if resp.More {
			_, err = fmt.Fprintln(a.stdout, "(more leases: raise --limit)")
		}
		return err
	})
	return cmd
}
