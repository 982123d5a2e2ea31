package main

import (
	"flag"
	"fmt"
	"time"

	"github.com/tollgate-gw/tollgate/internal/config"
	"github.com/tollgate-gw/tollgate/internal/devissuer"
)

func tokenCmd(args []string) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	configFile := fs.String("config", "", "config file (for dataDir)")
	dataDir := fs.String("data-dir", "", "data directory of `tollgate run --dev` (default: the config's dataDir)")
	scope := fs.String("scope", "", `space-separated scopes, e.g. "read:menu write:order"`)
	sub := fs.String("sub", "dev-user", "subject")
	client := fs.String("client-id", "dev-app", "client id (azp)")
	ttl := fs.Duration("ttl", time.Hour, "lifetime")
	jkt := fs.String("dpop-jkt", "", "bind the token to the DPoP key with this RFC 7638 thumbprint (cnf.jkt)")
	if err := fs.Parse(args); err != nil {
		return errReported
	}
	cfg, err := config.Load(*configFile)
	if err != nil {
		return err
	}
	if *dataDir != "" {
		cfg.DataDir = *dataDir
	}
	tok, err := devissuer.Mint(cfg.DataDir, devissuer.Claims{Subject: *sub, ClientID: *client, Scope: *scope, TTL: *ttl, DPoPThumbprint: *jkt})
	if err != nil {
		return err
	}
	fmt.Println(tok)
	return nil
}
