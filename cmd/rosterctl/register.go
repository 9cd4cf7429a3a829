package main

import (
	"context"
	"fmt"
	"time"

	"github.com/rosterhq/roster/client"
	"github.com/spf13/cobra"
)

// registrationJSON is one line of register -o json.
type registrationJSON struct {
	Type     string         `json:"type"` // registered, lost, reregistered, deregistered
	Key      string         `json:"key"`
	Lease    client.LeaseID `json:"lease"`
	Revision int64          `json:"revision,omitempty"`
	Time     time.Time      `json:"time"`
}

func (a *app) registerCmd() *cobra.Command {
	var ttl int64
	cmd := &cobra.Command{
		Use:   "register KEY VALUE --ttl N",
		Short: "Register a service instance and keep it registered until interrupted",
		Long: `Register a service instance: grant a lease of --ttl seconds named KEY, put
KEY = VALUE attached to it, and keep the lease alive until interrupted. If
the lease is lost (the registry was unreachable for longer than the TTL),
the key is registered again under a new lease. VALUE "-" reads standard
input.

One line is printed per state change: registered, lost, reregistered, and
deregistered at the end. Interrupting (Ctrl-C) revokes the lease, so the key
disappears at once, and exits with code 0.`,
		Example: `  rosterctl register /services/api/n1 10.0.0.1:8080 --ttl 10
  rosterctl -o json register /services/api/n1 '{"addr":"10.0.0.1:8080"}' --ttl 10`,
		Args: exactArgs(2),
	}
	cmd.Flags().Int64Var(&ttl, "ttl", 0, "lease TTL in whole `seconds` (2 to 2592000; required)")
	_ = cmd.MarkFlagRequired("ttl")
	cmd.RunE = a.action(func(ctx context.Context, args []string) error {
		key := args[0]
		if ttl <= 0 {
			return usageError("--ttl must be a positive number of seconds")
		}
		value, err := a.readValue(args[1])
		if err != nil {
			return err
		}
		cli, err := a.client()
		if err != nil {
			return err
		}
		reg, err := client.NewRegistrar(cli).Register(ctx, key, value, ttl)
		if err != nil {
			return err
		}
		events := reg.Events()
	loop:
		for {
			select {
			case <-ctx.Done():
				break loop
			case ev, ok := <-events:
				if !ok {
					break loop
				}
				if err := a.printRegistration(registrationJSON{
					Type: ev.Type.String(), Key: ev.Key, Lease: ev.Lease, Revision: ev.Revision, Time: ev.Time,
				}); err != nil {
					a.closeRegistration(ctx, reg)
					return err
				}
			}
		}
		lease := reg.Lease()
		if err := a.closeRegistration(ctx, reg); err != nil {
			return fmt.Errorf("deregistering %s: revoking lease %s: %w", key, lease, err)
		}
		return a.printRegistration(registrationJSON{Type: "deregistered", Key: key, Lease: lease, Time: time.Now()})
	})
	return cmd
}

// closeRegistration revokes the registration's lease. ctx is usually done
// by now (Ctrl-C), so the revoke gets a fresh --timeout of its own.
func (a *app) closeRegistration(ctx context.Context, reg *client.Registration) error {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.timeout)
	defer cancel()
	return reg.Close(cctx)
}

func (a *app) printRegistration(r registrationJSON) error {
	if a.jsonOut() {
		r.Time = r.Time.UTC()
		return a.printJSONLine(r)
	}
	line := fmt.Sprintf("%s %s lease %s", r.Type, displayString(r.Key), r.Lease)
	if r.Revision != 0 {
		line += fmt.Sprintf(" revision %d", r.Revision)
	}
	_, err := fmt.Fprintln(a.stdout, line)
	return err
}
