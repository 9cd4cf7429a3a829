package main

import (
	"context"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is set at build time:
//
//	go build -ldflags "-X main.version=v1.2.3" ./cmd/rosterctl
//
// Without it, the module version recorded in the binary is used (set by
// "go install ...@version"), else "(devel)".
var version string

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

func (a *app) versionCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version of rosterctl",
		Long:  `Print the version of rosterctl, the Go version it was built with and its platform.`,
		Args:  exactArgs(0),
	}
	cmd.RunE = a.action(func(context.Context, []string) error {
		v := struct {
			Version   string `json:"version"`
			GoVersion string `json:"go_version"`
			Platform  string `json:"platform"`
		}{buildVersion(), runtime.Version(), runtime.GOOS + "/" + runtime.GOARCH}
		if a.jsonOut() {
			return a.printJSON(v)
		}
		return a.printFields(field{"version", v.Version}, field{"go_version", v.GoVersion}, field{"platform", v.Platform})
	})
	return cmd
}
