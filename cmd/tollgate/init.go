package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/tollgate-gw/tollgate/internal/config"
	"github.com/tollgate-gw/tollgate/internal/definitions"
)

// initCmd writes a starting configuration and API definition.
func initCmd() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "init [DIR]",
		Short: "Write a tollgate.yaml with every field and a starter API definition",
		Long: `Write DIR/tollgate.yaml (DIR defaults to the current directory) holding every
configuration field with its default and what it does — the same text as the README's
configuration reference — and DIR/api.yaml, a starter API definition that validates. Files
that exist are left alone unless --force. Commands run in DIR find tollgate.yaml by
themselves.`,
		Example: `  tollgate init my-gateway && cd my-gateway && tollgate validate -f api.yaml
  tollgate init . --force`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usageError{fmt.Errorf("%s takes at most one directory", cmd.CommandPath())}
			}
			return nil
		},
		RunE: func(_ *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			files := []struct {
				name string
				data []byte
			}{{"tollgate.yaml", config.Reference}, {"api.yaml", definitions.Starter}}
			for _, f := range files {
				if _, err := os.Stat(filepath.Join(dir, f.name)); err == nil && !force {
					return fmt.Errorf("%s exists: nothing written (--force overwrites)", filepath.Join(dir, f.name))
				} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
					return err
				}
			}
			for _, f := range files {
				p := filepath.Join(dir, f.name)
				if err := os.WriteFile(p, f.data, 0o644); err != nil {
					return err
				}
				fmt.Printf("wrote %s\n", p)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "overwrite files that exist")
	return cmd
}
