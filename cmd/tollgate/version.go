package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/tollgate-gw/tollgate/internal/buildinfo"
)

func versionCmd() *cobra.Command {
	var output string
	c := &cobra.Command{
		Use:   "version",
		Short: "Print the build: module version, VCS revision and time, Go version",
		Long: `Print which build of Tollgate this is: the module version ("(devel)" for a local
build), the VCS revision and commit time it was built from (with "+modified" when the tree
had uncommitted changes) and the Go version. The servers export the same as the
tollgate_build_info metric.`,
		Example: "  tollgate version\n  tollgate version -o json",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			i := buildinfo.Read()
			switch output {
			case "json":
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(i)
			case "text":
				rev := i.Revision
				if rev == "" {
					rev = "unknown"
				}
				if i.Modified {
					rev += "+modified"
				}
				fmt.Printf("tollgate %s\nrevision %s", i.Version, rev)
				if i.Time != "" {
					fmt.Printf(" (%s)", i.Time)
				}
				fmt.Printf("\n%s\n", i.GoVersion)
				return nil
			default:
				return usageError{fmt.Errorf("-o %q: want text or json", output)}
			}
		},
	}
	c.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	return c
}
