package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/rosterhq/roster/api"
	"github.com/rosterhq/roster/client"
	"github.com/spf13/cobra"
)

func (a *app) putCmd() *cobra.Command {
	var (
		lease      string
		cas        int64
		createOnly bool
		prev       bool
	)
	cmd := &cobra.Command{
		Use:   "put KEY VALUE",
		Short: "Store a value under a key",
		Long: `Store VALUE under KEY (keys begin with "/"). VALUE "-" reads the value
from standard input, byte for byte. A value that begins with "-" goes after
"--": rosterctl put /n -- -5

Prints the revision of the write; with --prev also the previous value.
Exit code 4: the --lease does not exist; 5: the --cas or --create-only
condition failed (the message ends with the key's current mod revision).`,
		Example: `  rosterctl put /config/mode blue
  rosterctl put /services/api/n1 10.0.0.1:8080 --lease 1728394857362391040
  rosterctl put /config/mode green --cas 7
  rosterctl put /locks/job --create-only me
  cat cert.pem | rosterctl put /certs/api -`,
		Args: exactArgs(2),
	}
	f := cmd.Flags()
	f.StringVar(&lease, "lease", "", "attach the key to lease `ID` (it goes when the lease ends)")
	f.Int64Var(&cas, "cas", 0, "write only if the key's mod revision is `REV` (0: only if absent)")
	f.BoolVar(&createOnly, "create-only", false, "write only if the key does not exist (same as --cas 0)")
	f.BoolVar(&prev, "prev", false, "print the previous value")
	cmd.RunE = a.action(func(ctx context.Context, args []string) error {
		key := args[0]
		if err := exclusive(cmd, "cas", "create-only"); err != nil {
			return err
		}
		var opts []client.OpOption
		if lease != "" {
			id, err := parseLease(lease)
			if err != nil {
				return err
			}
			opts = append(opts, client.WithLease(id))
		}
		switch {
		case createOnly:
			opts = append(opts, client.WithCreateOnly())
		case cmd.Flags().Changed("cas"):
			if cas < 0 {
				return usageError("--cas must not be negative")
			}
			opts = append(opts, client.WithCAS(cas))
		}
		if prev {
			opts = append(opts, client.WithPrevKV())
		}
		value, err := a.readValue(args[1])
		if err != nil {
			return err
		}
		cli, err := a.client()
		if err != nil {
			return err
		}
		resp, err := cli.Put(ctx, key, value, opts...)
		if err != nil {
			if errors.Is(err, client.ErrLeaseNotFound) {
				id, _ := client.ParseLeaseID(lease)
				return leaseNotFound(id, err)
			}
			return err
		}
		if a.jsonOut() {
			out := struct {
				Revision int64   `json:"revision"`
				Prev     *api.KV `json:"prev,omitempty"`
			}{Revision: resp.Revision}
			if resp.PrevKV != nil {
				p := toKVJSON(*resp.PrevKV, true)
				out.Prev = &p
			}
			return a.printJSON(out)
		}
		fields := []field{{"revision", itoa(resp.Revision)}}
		if prev {
			if p := resp.PrevKV; p != nil {
				fields = append(fields,
					field{"prev_value", display(p.Value)},
					field{"prev_mod_revision", itoa(p.ModRevision)},
					field{"prev_version", itoa(p.Version)})
			} else {
				fields = append(fields, field{"prev_value", "(none: the key did not exist)"})
			}
		}
		return a.printFields(fields...)
	})
	return cmd
}

func (a *app) getCmd() *cobra.Command {
	var (
		prefix, keysOnly, countOnly, stale, raw bool
		limit                                   int64
	)
	cmd := &cobra.Command{
		Use:   "get KEY",
		Short: "Read a key, or every key under a prefix",
		Long: `Read KEY, or with --prefix every key that starts with KEY (a plain byte
prefix: /p matches /pq), sorted by key.

The table shows each key's value and metadata; --raw prints only the value's
bytes (no newline added), for scripts. With -o json a single key is printed
as the API's kv object and a prefix as {"revision","kvs","more"}.
Exit code 3: KEY does not exist (a prefix that matches nothing is not an
error: it prints an empty list).`,
		Example: `  rosterctl get /config/mode
  rosterctl get /config/mode --raw > mode.txt
  rosterctl get --prefix /services/api/
  rosterctl get --prefix /services/ --count-only
  rosterctl -o json get --prefix /services/ --keys-only`,
		Args: exactArgs(1),
	}
	f := cmd.Flags()
	f.BoolVar(&prefix, "prefix", false, "read every key that starts with KEY")
	f.Int64Var(&limit, "limit", 0, "with --prefix: at most `N` keys (0: all)")
	f.BoolVar(&keysOnly, "keys-only", false, "omit the values")
	f.BoolVar(&countOnly, "count-only", false, "print only the number of keys")
	f.BoolVar(&stale, "stale", false, "read the answering member's copy without asking the leader (faster, may be behind)")
	f.BoolVar(&raw, "raw", false, "print only the value's bytes, no newline (single key; ignores -o)")
	cmd.RunE = a.action(func(ctx context.Context, args []string) error {
		key := args[0]
		if err := exclusive(cmd, "raw", "prefix", "keys-only", "count-only"); err != nil {
			return err
		}
		if err := exclusive(cmd, "keys-only", "count-only"); err != nil {
			return err
		}
		if limit < 0 {
			return usageError("--limit must not be negative")
		}
		if limit > 0 && !prefix {
			return usageError("--limit needs --prefix")
		}
		var opts []client.OpOption
		if prefix {
			opts = append(opts, client.WithPrefix(), client.WithLimit(limit))
		}
		if keysOnly {
			opts = append(opts, client.WithKeysOnly())
		}
		if countOnly {
			opts = append(opts, client.WithCountOnly())
		}
		if stale {
			opts = append(opts, client.WithStale())
		}
		cli, err := a.client()
		if err != nil {
			return err
		}
		resp, err := cli.Get(ctx, key, opts...)
		if errors.Is(err, client.ErrKeyNotFound) {
			return keyNotFound(key, err)
		}
		if err != nil {
			return err
		}
		switch {
		case raw:
			_, err := a.stdout.Write(resp.KVs[0].Value)
			return err
		case countOnly:
			if a.jsonOut() {
				return a.printJSON(struct {
					Revision int64 `json:"revision"`
					Count    int64 `json:"count"`
				}{resp.Revision, resp.Count})
			}
			return a.printFields(field{"count", itoa(resp.Count)})
		case a.jsonOut() && !prefix:
			return a.printJSON(toKVJSON(resp.KVs[0], !keysOnly))
		case a.jsonOut():
			kvs := make([]api.KV, 0, len(resp.KVs))
			for _, kv := range resp.KVs {
				kvs = append(kvs, toKVJSON(kv, !keysOnly))
			}
			return a.printJSON(struct {
				Revision int64    `json:"revision"`
				KVs      []api.KV `json:"kvs"`
				More     bool     `json:"more"`
			}{resp.Revision, kvs, resp.More})
		}
		return a.printKVs(resp, keysOnly)
	})
	return cmd
}

// printKVs prints the kvs of a Get as a table.
func (a *app) printKVs(resp *client.GetResponse, keysOnly bool) error {
	tw := newTable(a.stdout)
	header := []string{"KEY", "VALUE", "CREATE_REVISION", "MOD_REVISION", "VERSION", "LEASE"}
	if keysOnly {
		header = append(header[:1], header[2:]...)
	}
	row(tw, header...)
	for _, kv := range resp.KVs {
		cells := []string{displayString(kv.Key)}
		if !keysOnly {
			cells = append(cells, display(kv.Value))
		}
		cells = append(cells, itoa(kv.CreateRevision), itoa(kv.ModRevision), itoa(kv.Version), leaseCell(kv.Lease))
		row(tw, cells...)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if resp.More {
		_, err := a.stdout.Write([]byte("(more keys match: raise --limit)\n"))
		return err
	}
	return nil
}

func (a *app) delCmd() *cobra.Command {
	var (
		prefix bool
		cas    int64
	)
	cmd := &cobra.Command{
		Use:     "del KEY",
		Aliases: []string{"delete", "rm"},
		Short:   "Delete a key, or every key under a prefix",
		Long: `Delete KEY, or with --prefix every key that starts with KEY.

Prints the store revision after the delete and the number of keys deleted.
Exit code 3: KEY does not exist (a --prefix that matches nothing is not an
error: it prints deleted 0); 5: the --cas condition failed (the message ends
with the key's current mod revision, 0 when it does not exist).`,
		Example: `  rosterctl del /config/mode
  rosterctl del /config/mode --cas 7
  rosterctl del --prefix /services/api/`,
		Args: exactArgs(1),
	}
	f := cmd.Flags()
	f.BoolVar(&prefix, "prefix", false, "delete every key that starts with KEY")
	f.Int64Var(&cas, "cas", 0, "delete only if the key's mod revision is `REV`")
	cmd.RunE = a.action(func(ctx context.Context, args []string) error {
		key := args[0]
		if err := exclusive(cmd, "prefix", "cas"); err != nil {
			return err
		}
		var opts []client.OpOption
		if prefix {
			opts = append(opts, client.WithPrefix())
		}
		if cmd.Flags().Changed("cas") {
			if cas < 0 {
				return usageError("--cas must not be negative")
			}
			opts = append(opts, client.WithCAS(cas))
		}
		cli, err := a.client()
		if err != nil {
			return err
		}
		resp, err := cli.Delete(ctx, key, opts...)
		if err != nil {
			return err
		}
		if resp.Deleted == 0 && !prefix {
			return keyNotFound(key, nil)
		}
		if a.jsonOut() {
			return a.printJSON(struct {
				Revision int64 `json:"revision"`
				Deleted  int64 `json:"deleted"`
			}{resp.Revision, resp.Deleted})
		}
		return a.printFields(field{"revision", itoa(resp.Revision)}, field{"deleted", itoa(resp.Deleted)})
	})
	return cmd
}

// exactArgs is cobra.ExactArgs with a message that names the arguments.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError(argsMessage(cmd, len(args)))
		}
		return nil
	}
}

// rangeArgs is cobra.RangeArgs with a message that names the arguments.
func rangeArgs(lo, hi int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < lo || len(args) > hi {
			return usageError(argsMessage(cmd, len(args)))
		}
		return nil
	}
}

func argsMessage(cmd *cobra.Command, got int) string {
	return fmt.Sprintf("wrong number of arguments (%d); usage: %s", got, cmd.UseLine())
}

// exclusive refuses the first flag together with any of the others.
func exclusive(cmd *cobra.Command, first string, others ...string) error {
	if !cmd.Flags().Changed(first) {
		return nil
	}
	for _, o := range others {
		if cmd.Flags().Changed(o) {
			return usageError(fmt.Sprintf("--%s and --%s cannot be used together", first, o))
		}
	}
	return nil
}
