package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/rosterhq/roster/client"
	"github.com/spf13/cobra"
)

// Defaults of the global flags.
const (
	defaultEndpoint = "127.0.0.1:7370"
	defaultTimeout  = 5 * time.Second
	envEndpoints    = "ROSTER_ENDPOINTS"
)

// app is one invocation of rosterctl: its streams, environment, global
// flags and, once a command needs it, the client.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string

	endpoints string
	output    string
	timeout   time.Duration
	// TLS and access control: --cacert, --cert, --key, --token.
	cacert, cert, key, token string

	// started is set when a command's own code begins to run: an error
	// that comes before (cobra's flag and argument checks) is a usage
	// error.
	started bool
	cli     *client.Client
}

// run executes rosterctl with args (without the program name) and returns
// the exit code. ctx ending is Ctrl-C: the long-running commands (watch,
// lease keepalive, register) then finish cleanly with exit code 0.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv}
	root := a.rootCmd()
	if args == nil {
		args = []string{} // nil makes cobra read os.Args
	}
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if a.cli != nil {
		a.cli.Close()
	}
	if err == nil {
		return exitOK
	}
	code, msg, hint := a.classify(err)
	fmt.Fprintf(stderr, "rosterctl: %s\n", msg)
	if hint && cmd != nil {
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return code
}

func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "rosterctl",
		Short: "Operate a Roster service-discovery registry",
		Long: `rosterctl is the operator command line of Roster, a lease-based
service-discovery registry: read and write keys, follow them, manage leases
and cluster membership, and check the cluster's health.

The members to talk to come from --endpoints, else $ROSTER_ENDPOINTS, else
` + defaultEndpoint + `. Any member answers anything; list several to fail over.

Output is an aligned table by default; -o json prints the API's field names
(one JSON document per command, one object per line for watch, lease
keepalive and register).
` + exitCodesHelp,
		SilenceErrors:     true,
		SilenceUsage:      true,
		Args:              groupArgs,
		RunE:              groupRun,
		PersistentPreRunE: a.checkGlobals,

		SuggestionsMinimumDistance: 2,
	}
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	def := a.getenv(envEndpoints)
	if strings.TrimSpace(def) == "" {
		def = defaultEndpoint
	}
	pf := root.PersistentFlags()
	pf.StringVar(&a.endpoints, "endpoints", def, "comma-separated member HTTP addresses (host:port, http://host:port or https://host:port; default from $"+envEndpoints+")")
	pf.StringVarP(&a.output, "output", "o", "table", "output format: table or json")
	pf.DurationVar(&a.timeout, "timeout", defaultTimeout, "time limit of each request, retries and fail-over included")
	pf.StringVar(&a.cacert, "cacert", "", "verify members' TLS certificates with this PEM CA `file` (endpoints are then https)")
	pf.StringVar(&a.cert, "cert", "", "present this PEM client certificate `file` (members started with -client-ca-file)")
	pf.StringVar(&a.key, "key", "", "PEM private key `file` of --cert")
	// Not the flag's default: -h would print the secret.
	pf.StringVar(&a.token, "token", "", "bearer `token` for members started with -auth (default: $"+envToken+")")
	_ = root.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"table", "json"}, cobra.ShellCompDirectiveNoFileComp))
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError(err.Error()) })

	root.AddCommand(
		a.putCmd(), a.getCmd(), a.delCmd(), a.watchCmd(),
		a.leaseCmd(), a.memberCmd(), a.snapshotCmd(), a.statusCmd(),
		a.registerCmd(), a.authCmd(), a.versionCmd(),
	)
	// cobra's own completion command (bash, zsh, fish, powershell), added
	// now rather than at Execute so that an unknown shell is a usage error
	// too. It writes to the output set above.
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		if c.Name() == "completion" {
			c.Args, c.RunE = groupArgs, groupRun
		}
	}
	return root
}

// exitCodesHelp ends the root command's long help.
const exitCodesHelp = `
Exit codes:
  0    success
  1    any other error
  2    bad input: a usage error (bad flags, arguments or key; followed by
       "Run '... --help' for usage."), or a request the server refused
       as invalid (the message ends with the server's status and code,
       e.g. removing the last voter)
  3    not found: a key (get; del of a single key that does not exist),
       or the member, role or token the command names (member remove,
       auth role get|delete, auth token revoke, a role of token create)
  4    lease not found
  5    compare-and-swap failed; the message ends with the key's current
       mod revision (0: the key does not exist)
  6    unavailable: no leader, timeout, or no member reachable
  7    access denied: no token, an unknown token, or one whose roles do
       not allow the request
  130  interrupted (Ctrl-C) before a one-shot command finished
Errors are printed to standard error as "rosterctl: <message>".`

// checkGlobals validates the global flags before any command runs.
func (a *app) checkGlobals(*cobra.Command, []string) error {
	switch a.output {
	case "table", "json":
	default:
		return usageError(fmt.Sprintf("invalid output format %q: want table or json", a.output))
	}
	if a.timeout <= 0 {
		return usageError(fmt.Sprintf("--timeout must be positive, not %v", a.timeout))
	}
	return nil
}

// groupArgs refuses an unknown subcommand of the root or of a group
// command (lease, member) as a usage error.
func groupArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += fmt.Sprintf(" (did you mean %q?)", s[0])
	}
	return usageError(msg)
}

// groupRun prints the help of a group command called without a
// subcommand.
func groupRun(cmd *cobra.Command, _ []string) error { return cmd.Help() }

// action wraps a command's code: it marks the start (errors after it are
// not usage errors) and hands it the app.
func (a *app) action(f func(ctx context.Context, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		a.started = true
		return f(cmd.Context(), args)
	}
}

// client returns the client for the endpoints, creating it on first use.
func (a *app) client() (*client.Client, error) {
	if a.cli != nil {
		return a.cli, nil
	}
	var eps []string
	for _, e := range strings.Split(a.endpoints, ",") {
		if e = strings.TrimSpace(e); e != "" {
			eps = append(eps, e)
		}
	}
	if len(eps) == 0 {
		return nil, usageError("no endpoints: set --endpoints or $" + envEndpoints)
	}
	cli, err := client.New(client.Config{
		Endpoints:      eps,
		DialTimeout:    min(client.DefaultDialTimeout, a.timeout),
		RequestTimeout: a.timeout,
		CAFile:         a.cacert,
		CertFile:       a.cert,
		KeyFile:        a.key,
		Token:          a.tokenOrEnv(),
	})
	if err != nil {
		return nil, usageError(strings.TrimPrefix(err.Error(), "roster: "))
	}
	a.cli = cli
	return cli, nil
}

// tokenOrEnv is --token, else $ROSTER_TOKEN.
func (a *app) tokenOrEnv() string {
	if a.token != "" {
		return a.token
	}
	return strings.TrimSpace(a.getenv(envToken))
}

// readValue is a VALUE argument: "-" reads standard input to its end.
func (a *app) readValue(arg string) ([]byte, error) {
	if arg != "-" {
		return []byte(arg), nil
	}
	if a.stdin == nil {
		return []byte{}, nil
	}
	b, err := io.ReadAll(a.stdin)
	if err != nil {
		return nil, fmt.Errorf("reading the value from standard input: %w", err)
	}
	return b, nil
}

// parseLease parses a lease ID argument or flag value.
func parseLease(s string) (client.LeaseID, error) {
	id, err := client.ParseLeaseID(s)
	if err != nil {
		return 0, usageError(fmt.Sprintf("invalid lease ID %q: want a positive decimal number", s))
	}
	return id, nil
}
