package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/rosterhq/roster/api"
	"github.com/rosterhq/roster/client"
	"github.com/spf13/cobra"
)

func (a *app) watchCmd() *cobra.Command {
	var (
		prefix bool
		rev    int64
		prevKV bool
	)
	cmd := &cobra.Command{
		Use:   "watch KEY",
		Short: "Print the changes of a key or prefix as they happen",
		Long: `Follow KEY, or with --prefix every key that starts with KEY, and print one
line per change until interrupted (Ctrl-C), which ends it with exit code 0.

Without --rev the watch starts now; --rev N prints the changes after revision
N first (pass the revision a "get -o json" answered with to miss nothing).
The watch survives member failures, and members cut off from the cluster: it
resumes on another member without losing or repeating an event.

Table lines read "<revision> <type> <key> [<value>]" (type put or delete);
with -o json each line is {"type","revision","kv"[,"prev_kv"]}.
Exit code 1: the history the watch needs is gone (compacted); get the
current state and watch again from its revision.`,
		Example: `  rosterctl watch --prefix /services/
  rosterctl watch /config/mode --rev 41
  rosterctl -o json watch --prefix /services/ | jq .kv.key`,
		Args: exactArgs(1),
	}
	f := cmd.Flags()
	f.BoolVar(&prefix, "prefix", false, "follow every key that starts with KEY")
	f.Int64Var(&rev, "rev", 0, "print the changes after revision `N` first (0: from now)")
	f.BoolVar(&prevKV, "prev-kv", false, "with each event, the key as it was before (json only: prev_kv)")
	cmd.RunE = a.action(func(ctx context.Context, args []string) error {
		key := args[0]
		if rev < 0 {
			return usageError("--rev must not be negative")
		}
		var opts []client.OpOption
		if prefix {
			opts = append(opts, client.WithPrefix())
		}
		if rev > 0 {
			opts = append(opts, client.WithRev(rev))
		}
		if prevKV {
			opts = append(opts, client.WithPrevKV())
		}
		cli, err := a.client()
		if err != nil {
			return err
		}
		// One read of this member's copy of KEY, bounded by --timeout,
		// first: the watch below reconnects for as long as it runs, so with
		// no member reachable (or a token that may not read KEY) it would
		// print nothing and never end. This read needs no leader (the
		// watch waits for one, on any member); whether the key exists
		// does not matter.
		if _, err := cli.Get(ctx, key, client.WithStale(), client.WithKeysOnly()); err != nil && !errors.Is(err, client.ErrKeyNotFound) {
			return err
		}
		ctx, cancel := context.WithCancel(ctx)
		defer cancel() // stop the watch if printing fails
		for resp := range cli.Watch(ctx, key, opts...) {
			if resp.Err != nil {
				return resp.Err
			}
			for _, ev := range resp.Events {
				if err := a.printEvent(ev); err != nil {
					return err
				}
			}
		}
		if err := cmd.Context().Err(); err != nil {
			return nil // interrupted: the normal end of a watch
		}
		return errors.New("the watch ended")
	})
	return cmd
}

// eventJSON is one watch event in -o json: the API's event with its
// revision.
type eventJSON struct {
	Type     string  `json:"type"`
	Revision int64   `json:"revision"`
	KV       api.KV  `json:"kv"`
	PrevKV   *api.KV `json:"prev_kv,omitempty"`
}

func (a *app) printEvent(ev client.Event) error {
	if a.jsonOut() {
		j := eventJSON{Type: ev.Type.String(), Revision: ev.Revision, KV: toKVJSON(ev.KV, ev.Type == client.EventPut)}
		if ev.PrevKV != nil {
			p := toKVJSON(*ev.PrevKV, true)
			j.PrevKV = &p
		}
		return a.printJSONLine(j)
	}
	parts := []string{itoa(ev.Revision), ev.Type.String(), displayString(ev.KV.Key)}
	if ev.Type == client.EventPut {
		parts = append(parts, display(ev.KV.Value))
	}
	_, err := fmt.Fprintln(a.stdout, strings.Join(parts, " "))
	return err
}
