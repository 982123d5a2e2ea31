package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/tollgate-gw/tollgate/internal/devissuer"
)

func tokenCmd(g *globals) *cobra.Command {
	var dataDir string
	var c devissuer.Claims
	cmd := &cobra.Command{
		Use:   "token --scope SCOPES",
		Short: "Mint a token from the development issuer (of tollgate run --dev)",
		Long: `Mint an RS256 token signed with the development issuer's key, which ` + "`tollgate run --dev`" + `
keeps in its data directory (dataDir, or --data-dir) and trusts. For trying Tollgate; a
production deployment trusts only the issuers in its configuration.`,
		Example: `  tollgate token --scope "read:menu write:order"
  tollgate token --config tollgate.yaml --sub alice --ttl 10m
  tollgate token --dpop-jkt "$(cat key.jkt)" --scope read:menu`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			if dataDir != "" {
				cfg.DataDir = dataDir
			}
			tok, err := devissuer.Mint(cfg.DataDir, c)
			if err != nil {
				return err
			}
			fmt.Println(tok)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dataDir, "data-dir", "", "data directory of `tollgate run --dev` (default: the configuration's dataDir)")
	f.StringVar(&c.Scope, "scope", "", `space-separated scopes, e.g. "read:menu write:order"`)
	f.StringVar(&c.Subject, "sub", "dev-user", "subject")
	f.StringVar(&c.ClientID, "client-id", "dev-app", "client id (azp)")
	f.DurationVar(&c.TTL, "ttl", time.Hour, "lifetime")
	f.StringVar(&c.DPoPThumbprint, "dpop-jkt", "", "bind the token to the DPoP key with this RFC 7638 thumbprint (cnf.jkt)")
	return cmd
}
