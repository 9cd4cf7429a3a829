package main

import (
	"context"
	"errors"
	"strings"

	"github.com/rosterhq/roster/client"
	"github.com/spf13/cobra"
)

// envToken is the default of --token.
const envToken = "ROSTER_TOKEN"

func (a *app) authCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "auth",
		Short: "Manage roles and tokens, and show the current token",
		Long: `Access control (members started with -auth): roles hold rules that grant
read and/or write on key prefixes, or admin; tokens name roles. Managing
roles and tokens needs an admin token (--token or $` + envToken + `).`,
		Args: groupArgs,
		RunE: groupRun,
	}
	role := &cobra.Command{Use: "role", Short: "Create, show, list and delete roles", Args: groupArgs, RunE: groupRun}
	role.AddCommand(a.rolePutCmd(), a.roleGetCmd(), a.roleListCmd(), a.roleDeleteCmd())
	token := &cobra.Command{Use: "token", Short: "Create, list and revoke tokens", Args: groupArgs, RunE: groupRun}
	token.AddCommand(a.tokenCreateCmd(), a.tokenListCmd(), a.tokenRevokeCmd())
	cmd.AddCommand(role, token, a.whoamiCmd())
	return cmd
}

func (a *app) rolePutCmd() *cobra.Command {
	var read, write, readwrite []string
	var admin bool
	cmd := &cobra.Command{
		Use:   "put NAME",
		Short: "Create or replace a role",
		Long: `Create the role NAME, or replace it whole, with a rule for each --read,
--write and --readwrite PREFIX (a plain byte prefix: /services/api/ covers
every key that starts with it). --admin grants everything: membership,
snapshots, all leases and keys, and access control itself.`,
		Example: `  rosterctl auth role put api-registrar --readwrite /services/api/
  rosterctl auth role put discoverer --read /services/
  rosterctl auth role put ops --admin`,
		Args: exactArgs(1),
	}
	f := cmd.Flags()
	f.StringArrayVar(&read, "read", nil, "grant read on keys under `PREFIX` (repeatable)")
	f.StringArrayVar(&write, "write", nil, "grant write on keys under `PREFIX` (repeatable)")
	f.StringArrayVar(&readwrite, "readwrite", nil, "grant read and write on keys under `PREFIX` (repeatable)")
	f.BoolVar(&admin, "admin", false, "grant everything")
	cmd.RunE = a.action(func(ctx context.Context, args []string) error {
		rules := []client.Rule{}
		for _, p := range readwrite {
			rules = append(rules, client.Rule{Prefix: p, Read: true, Write: true})
		}
		for _, p := range read {
			rules = append(rules, client.Rule{Prefix: p, Read: true})
		}
		for _, p := range write {
			rules = append(rules, client.Rule{Prefix: p, Write: true})
		}
		cli, err := a.client()
		if err != nil {
			return err
		}
		r, err := cli.PutRole(ctx, args[0], rules, admin)
		if err != nil {
			return err
		}
		return a.printRole(r)
	})
	return cmd
}

func (a *app) printRole(r *client.Role) error {
	if a.jsonOut() {
		return a.printJSON(r)
	}
	fields := []field{{"name", displayString(r.Name)}, {"admin", btoa(r.Admin)}}
	for i, rule := range r.Rules {
		name := ""
		if i == 0 {
			name = "rules"
		}
		fields = append(fields, field{name, ruleText(rule)})
	}
	return a.printFields(fields...)
}

// ruleText is a rule as "read,write /prefix".
func ruleText(r client.Rule) string {
	var perms []string
	if r.Read {
		perms = append(perms, "read")
	}
	if r.Write {
		perms = append(perms, "write")
	}
	return strings.Join(perms, ",") + " " + displayString(r.Prefix)
}

func (a *app) roleGetCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "get NAME", Short: "Show a role", Args: exactArgs(1)}
	cmd.RunE = a.action(func(ctx context.Context, args []string) error {
		cli, err := a.client()
		if err != nil {
			return err
		}
		r, err := cli.Role(ctx, args[0])
		if err != nil {
			return namedNotFound(err)
		}
		return a.printRole(r)
	})
	return cmd
}

func (a *app) roleListCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "list", Aliases: []string{"ls"}, Short: "List the roles", Args: exactArgs(0)}
	cmd.RunE = a.action(func(ctx context.Context, _ []string) error {
		cli, err := a.client()
		if err != nil {
			return err
		}
		roles, err := cli.Roles(ctx)
		if err != nil {
			return err
		}
		if a.jsonOut() {
			return a.printJSON(struct {
				Roles []client.Role `json:"roles"`
			}{roles})
		}
		tw := newTable(a.stdout)
		row(tw, "NAME", "ADMIN", "RULES")
		for _, r := range roles {
			var rules []string
			for _, rule := range r.Rules {
				rules = append(rules, ruleText(rule))
			}
			row(tw, displayString(r.Name), btoa(r.Admin), nameCell(strings.Join(rules, "; ")))
		}
		return tw.Flush()
	})
	return cmd
}

func (a *app) roleDeleteCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "delete NAME", Aliases: []string{"rm"}, Short: "Delete a role", Args: exactArgs(1)}
	cmd.RunE = a.action(func(ctx context.Context, args []string) error {
		cli, err := a.client()
		if err != nil {
			return err
		}
		if err := cli.DeleteRole(ctx, args[0]); err != nil {
			return namedNotFound(err)
		}
		return a.printDeleted(args[0])
	})
	return cmd
}

func (a *app) printDeleted(what string) error {
	if a.jsonOut() {
		return a.printJSON(struct {
			Deleted string `json:"deleted"`
		}{what})
	}
	return a.printFields(field{"deleted", displayString(what)})
}

func (a *app) tokenCreateCmd() *cobra.Command {
	var roles []string
	cmd := &cobra.Command{
		Use:   "create NAME --role ROLE...",
		Short: "Create a token and print its secret (shown this once)",
		Long: `Create a token called NAME with the given roles and print its secret.
The cluster keeps only a hash of it: store it now, it cannot be shown again.`,
		Example: `  rosterctl auth token create api-node-1 --role api-registrar
  TOKEN=$(rosterctl -o json auth token create web --role discoverer | jq -r .token)`,
		Args: exactArgs(1),
	}
	cmd.Flags().StringArrayVar(&roles, "role", nil, "a `ROLE` of the token (repeatable; at least one)")
	cmd.RunE = a.action(func(ctx context.Context, args []string) error {
		if len(roles) == 0 {
			return usageError("give the token at least one --role")
		}
		cli, err := a.client()
		if err != nil {
			return err
		}
		t, err := cli.CreateToken(ctx, args[0], roles)
		if err != nil {
			return missingRole(ctx, cli, roles, err)
		}
		if a.jsonOut() {
			return a.printJSON(t)
		}
		return a.printFields(field{"id", t.ID}, field{"name", displayString(t.Name)},
			field{"roles", strings.Join(t.Roles, ",")}, field{"token", t.Token})
	})
	return cmd
}

// missingRole gives exit code 3 to a token create that names a role that
// does not exist. The server refuses that token as it does any bad field,
// 400 invalid_argument (API.md), so after such a refusal rosterctl asks for
// each role and names the first one not found, as role get would. Any
// other refusal, and the client's own checks, stay what they were.
func missingRole(ctx context.Context, cli *client.Client, roles []string, err error) error {
	var se *client.StatusError
	if !errors.Is(err, client.ErrInvalidArgument) || !errors.As(err, &se) {
		return err
	}
	for _, r := range roles {
		if _, rerr := cli.Role(ctx, r); errors.Is(rerr, client.ErrKeyNotFound) {
			return &codedError{code: exitNotFound, msg: "no token created: " + message(rerr), err: err}
		}
	}
	return err
}

func (a *app) tokenListCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "list", Aliases: []string{"ls"}, Short: "List the tokens (never their secrets)", Args: exactArgs(0)}
	cmd.RunE = a.action(func(ctx context.Context, _ []string) error {
		cli, err := a.client()
		if err != nil {
			return err
		}
		tokens, err := cli.Tokens(ctx)
		if err != nil {
			return err
		}
		if a.jsonOut() {
			return a.printJSON(struct {
				Tokens []client.TokenInfo `json:"tokens"`
			}{tokens})
		}
		tw := newTable(a.stdout)
		row(tw, "ID", "NAME", "ROLES")
		for _, t := range tokens {
			row(tw, t.ID, displayString(t.Name), strings.Join(t.Roles, ","))
		}
		return tw.Flush()
	})
	return cmd
}

func (a *app) tokenRevokeCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "revoke ID", Aliases: []string{"delete", "rm"}, Short: "Revoke a token: it stops working at once", Args: exactArgs(1)}
	cmd.RunE = a.action(func(ctx context.Context, args []string) error {
		cli, err := a.client()
		if err != nil {
			return err
		}
		if err := cli.DeleteToken(ctx, args[0]); err != nil {
			return namedNotFound(err)
		}
		return a.printDeleted(args[0])
	})
	return cmd
}

func (a *app) whoamiCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "whoami", Short: "Show the token in use: its ID, name, roles and whether it is admin", Args: exactArgs(0)}
	cmd.RunE = a.action(func(ctx context.Context, _ []string) error {
		cli, err := a.client()
		if err != nil {
			return err
		}
		w, err := cli.WhoAmI(ctx)
		if err != nil {
			return err
		}
		if a.jsonOut() {
			return a.printJSON(w)
		}
		return a.printFields(field{"id", w.ID}, field{"name", displayString(w.Name)},
			field{"roles", strings.Join(w.Roles, ",")}, field{"admin", btoa(w.Admin)})
	})
	return cmd
}
