package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.uber.org/zap"

	"github.com/tollgate-gw/tollgate/internal/config"
	"github.com/tollgate-gw/tollgate/internal/store"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1 // the command failed (validate: a definition has problems)
	exitUsage   = 2 // unknown command, flag or argument
	exitDenied  = 3 // check: the enforcer denied the request
)

// usageError is a command line the command cannot take; it exits 2 with the usage.
type usageError struct{ error }

// exitCode ends the command with a code and no message (it printed what it had to say).
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit %d", int(e)) }

// errReported means the command printed its own errors already.
var errReported = exitCode(exitFailure)

// execute runs the command line and returns the process's exit code.
func execute(ctx context.Context, args []string) int {
	root := newRoot()
	root.SetArgs(args)
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, root.UsageString())
		return exitUsage
	}
	cmd, err := root.ExecuteContextC(ctx)
	var code exitCode
	var usage usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &code):
		return int(code)
	case errors.As(err, &usage) || strings.HasPrefix(err.Error(), "unknown command") || strings.HasPrefix(err.Error(), "unknown flag"):
		fmt.Fprintf(os.Stderr, "%s: %v\n\n%s", cmd.CommandPath(), err, cmd.UsageString())
		return exitUsage
	default:
		fmt.Fprintf(os.Stderr, "%s: %v\n", cmd.CommandPath(), err)
		return exitFailure
	}
}

func newRoot() *cobra.Command {
	var g globals
	root := &cobra.Command{
		Use:   "tollgate",
		Short: "An API gateway for Envoy",
		Long: `Tollgate is an API gateway for Envoy: APIs defined by OpenAPI (and WSO2's x-wso2-*
extensions), served to Envoy by an xDS control plane that follows etcd, and enforced by an
ext_authz service — tokens, scopes, mutual TLS, basic auth, API keys, revocation and
throttling. One binary; the roles are its commands.

Every command reads its configuration from --config, else $TOLLGATE_CONFIG, else
./tollgate.yaml when present, else the defaults.

Exit codes: 0 done, 1 failed (validate: a definition has problems), 2 a command line
Tollgate cannot take, 3 check: the request was denied.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          noArgs,
		RunE:          func(cmd *cobra.Command, _ []string) error { return usageError{errors.New("a command is needed")} },
	}
	root.PersistentFlags().StringVar(&g.config, "config", "", "configuration file (default: $TOLLGATE_CONFIG, else ./tollgate.yaml when present, else the defaults)")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.CompletionOptions.HiddenDefaultCmd = false
	root.AddGroup(&cobra.Group{ID: "serve", Title: "Servers:"}, &cobra.Group{ID: "define", Title: "APIs and policies:"},
		&cobra.Group{ID: "creds", Title: "Credentials and revocation:"}, &cobra.Group{ID: "try", Title: "Trying and wiring:"})
	for _, c := range []*cobra.Command{serveCmd(&g, roleRun), serveCmd(&g, roleAuthz), serveCmd(&g, roleXDS)} {
		c.GroupID = "serve"
		root.AddCommand(c)
	}
	for _, c := range []*cobra.Command{validateCmd(&g), testCmd(&g), applyCmd(&g), getCmd(&g), describeCmd(&g), deleteCmd(&g), endpointsCmd(&g), secretCmd(&g)} {
		c.GroupID = "define"
		root.AddCommand(c)
	}
	for _, c := range []*cobra.Command{revokeCmd(&g), userCmd(&g), apikeyCmd(&g), hashCmd()} {
		c.GroupID = "creds"
		root.AddCommand(c)
	}
	for _, c := range []*cobra.Command{initCmd(), tokenCmd(&g), checkCmd(&g), bootstrapCmd(&g)} {
		c.GroupID = "try"
		root.AddCommand(c)
	}
	root.AddCommand(versionCmd())
	root.SetHelpCommandGroupID("")
	return root
}

// noArgs refuses arguments as a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		if cmd.HasSubCommands() {
			return usageError{fmt.Errorf("unknown command %q for %q", args[0], cmd.CommandPath())}
		}
		return usageError{fmt.Errorf("%s takes no arguments, got %q", cmd.CommandPath(), args)}
	}
	return nil
}

// exactArgs wants n arguments, as a usage error otherwise.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError{fmt.Errorf("%s takes %d argument(s), got %d", cmd.CommandPath(), n, len(args))}
		}
		return nil
	}
}

// minArgs wants at least n arguments.
func minArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < n {
			return usageError{fmt.Errorf("%s takes at least %d argument(s), got %d", cmd.CommandPath(), n, len(args))}
		}
		return nil
	}
}

// group is a command made of verbs: alone, or with an unknown verb, it is a usage error.
func group(use, short, long, example string, verbs ...*cobra.Command) *cobra.Command {
	c := &cobra.Command{Use: use + " VERB", Short: short, Long: long, Example: example, Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageError{fmt.Errorf("%s needs a verb", cmd.CommandPath())}
		}}
	c.AddCommand(verbs...)
	return c
}

// globals are the flags every command has.
type globals struct {
	config string
}

// configFile is the configuration a command reads: --config, else $TOLLGATE_CONFIG, else
// ./tollgate.yaml when present, else none (the defaults).
func (g *globals) configFile() string {
	switch {
	case g.config != "":
		return g.config
	case os.Getenv("TOLLGATE_CONFIG") != "":
		return os.Getenv("TOLLGATE_CONFIG")
	}
	if _, err := os.Stat("tollgate.yaml"); err == nil {
		return "tollgate.yaml"
	}
	return ""
}

// loadConfig reads the configuration the lookup finds.
func (g *globals) loadConfig() (config.Config, error) { return config.Load(g.configFile()) }

// common are the flags of the commands that talk to etcd.
type common struct {
	g          *globals
	etcd       string
	dataDir    string
	logLevel   string
	etcdCA     string
	etcdCert   string
	etcdKey    string
	etcdUser   string
	etcdPass   string
	configPath string // the file load read, "" for the defaults
}

func addCommon(fs *pflag.FlagSet, g *globals) *common {
	c := &common{g: g}
	fs.StringVar(&c.etcd, "etcd", "", "etcd endpoints, comma-separated host:port (overrides etcd.endpoints)")
	fs.StringVar(&c.dataDir, "data-dir", "", "data directory (overrides dataDir)")
	fs.StringVar(&c.logLevel, "log-level", "", "debug, info, warn or error (overrides log.level)")
	fs.StringVar(&c.etcdCA, "etcd-ca", "", "CA file to verify etcd's TLS certificate (overrides etcd.caFile)")
	fs.StringVar(&c.etcdCert, "etcd-cert", "", "client certificate for etcd (overrides etcd.certFile)")
	fs.StringVar(&c.etcdKey, "etcd-key", "", "client key for etcd (overrides etcd.keyFile)")
	fs.StringVar(&c.etcdUser, "etcd-user", "", "etcd user name (overrides etcd.username)")
	fs.StringVar(&c.etcdPass, "etcd-password-file", "", "file holding the etcd password (overrides etcd.passwordFile)")
	return c
}

func (c *common) load() (config.Config, error) {
	c.configPath = c.g.configFile()
	cfg, err := config.Load(c.configPath)
	if err != nil {
		return cfg, err
	}
	if c.etcd != "" {
		cfg.Etcd.Endpoints = nil
		for _, e := range strings.Split(c.etcd, ",") {
			if e = strings.TrimSpace(e); e != "" {
				cfg.Etcd.Endpoints = append(cfg.Etcd.Endpoints, e)
			}
		}
	}
	if c.dataDir != "" {
		cfg.DataDir = c.dataDir
	}
	for _, o := range []struct {
		flag  string
		field *string
	}{
		{c.etcdCA, &cfg.Etcd.CAFile}, {c.etcdCert, &cfg.Etcd.CertFile}, {c.etcdKey, &cfg.Etcd.KeyFile},
		{c.etcdUser, &cfg.Etcd.Username}, {c.etcdPass, &cfg.Etcd.PasswordFile},
	} {
		if o.flag != "" {
			*o.field = o.flag
		}
	}
	if c.logLevel != "" {
		if err := cfg.Log.Level.Set(c.logLevel); err != nil {
			return cfg, err
		}
	}
	return cfg, cfg.Validate()
}

// reach are the flags another command needs to reach this instance: the configuration it
// read (as an absolute path) and a --data-dir given on the command line.
func (c *common) reach() string {
	var out []string
	if c.configPath != "" {
		abs, err := filepath.Abs(c.configPath)
		if err != nil {
			abs = c.configPath
		}
		out = append(out, "--config "+shellQuote(abs))
	}
	if c.dataDir != "" {
		out = append(out, "--data-dir "+shellQuote(c.dataDir))
	}
	return strings.Join(out, " ")
}

func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-:") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// withStore is a command's RunE: f gets the store the command's flags name (closed after),
// the arguments, and 15 s.
func withStore(c *common, f func(ctx context.Context, st *store.Store, args []string) error) func(*cobra.Command, []string) error {
	return withConfigStore(c, func(ctx context.Context, _ config.Config, st *store.Store, args []string) error {
		return f(ctx, st, args)
	})
}

// withConfigStore is withStore for a command that also needs the configuration it read.
func withConfigStore(c *common, f func(ctx context.Context, cfg config.Config, st *store.Store, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		cfg, st, err := c.open()
		if err != nil {
			return err
		}
		defer st.Close()
		ctx, cancel := context.WithTimeout(cmd.Context(), 15*time.Second)
		defer cancel()
		return f(ctx, cfg, st, args)
	}
}

// notSet notes a delete that found nothing.
func notSet(deleted int64) string {
	if deleted == 0 {
		return " (it was not set)"
	}
	return ""
}

// open loads the configuration and connects to its etcd.
func (c *common) open() (config.Config, *store.Store, error) {
	cfg, err := c.load()
	if err != nil {
		return cfg, nil, err
	}
	st, err := connect(cfg, zap.NewNop())
	return cfg, st, err
}
