// Command tollgate is the Tollgate API gateway for Envoy: one binary, roles as subcommands.
// This package turns flags and the config file into constructed components; the logic lives
// in the packages it wires together.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/tollgate-gw/tollgate/internal/config"
	"github.com/tollgate-gw/tollgate/internal/store"
)

const usage = `tollgate — an API gateway for Envoy

Usage: tollgate COMMAND [flags]

Commands:
  run        everything in one process: embedded etcd (unless etcd.endpoints is set),
             the xDS control plane, the ext_authz enforcer, the admin port; -f applies
             definitions at start
  xds        the xDS control plane alone, against an etcd cluster
  authz      the ext_authz enforcer alone, against an etcd cluster
  bootstrap  print the Envoy bootstrap that connects an Envoy to the control plane
  endpoints  service discovery: tollgate endpoints set KEY URL [URL...] | get KEY | delete KEY
  revoke     revoke a token (--jti/--token) or every token of a subject or client issued
             before a time (--subject/--client-id with --issued-before)
  hash       print a bcrypt (or --argon2id) hash of a password read from standard input
  user       store a basic-auth user in etcd: tollgate user put NAME (password on stdin)
  apikey     API keys: tollgate apikey create --app APP --api NAME/VERSION | list | revoke ID
  secret     store TLS material for Envoy in etcd: tollgate secret put NAME --cert F --key F | --ca F
  validate   check API definitions offline: tollgate validate -f FILE...
  apply      validate definitions and store them in etcd: tollgate apply -f FILE...
  token      mint a token from the development issuer (of tollgate run --dev)
  check      send one Envoy-shaped CheckRequest to the enforcer and print the decision

Run "tollgate COMMAND -h" for a command's flags.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmd, args := os.Args[1], os.Args[2:]
	var err error
	switch cmd {
	case "run":
		err = serveCmd(ctx, args, roleRun)
	case "authz":
		err = serveCmd(ctx, args, roleAuthz)
	case "xds":
		err = serveCmd(ctx, args, roleXDS)
	case "bootstrap":
		err = bootstrapCmd(args)
	case "endpoints":
		err = endpointsCmd(ctx, args)
	case "revoke":
		err = revokeCmd(ctx, args)
	case "hash":
		err = hashCmd(args)
	case "user":
		err = userCmd(ctx, args)
	case "apikey":
		err = apikeyCmd(ctx, args)
	case "secret":
		err = secretCmd(ctx, args)
	case "validate":
		err = validateCmd(args)
	case "apply":
		err = applyCmd(ctx, args)
	case "token":
		err = tokenCmd(args)
	case "check":
		err = checkCmd(ctx, args)
	case "-h", "--help", "help":
		fmt.Print(usage)
		return
	default:
		fmt.Fprintf(os.Stderr, "tollgate: unknown command %q\n\n%s", cmd, usage)
		os.Exit(2)
	}
	if err != nil {
		if err != errReported {
			fmt.Fprintln(os.Stderr, "tollgate "+cmd+": "+err.Error())
		}
		os.Exit(1)
	}
}

// errReported means the command printed its own errors already.
var errReported = fmt.Errorf("reported")

// files collects -f values; it is repeatable, and positional arguments join it.
type files []string

func (f *files) String() string     { return strings.Join(*f, ",") }
func (f *files) Set(v string) error { *f = append(*f, v); return nil }

// common are the flags every etcd-facing command takes.
type common struct {
	configFile string
	etcd       string
	dataDir    string
	logLevel   string
	etcdCA     string
	etcdCert   string
	etcdKey    string
	etcdUser   string
	etcdPass   string
}

func (c *common) register(fs *flag.FlagSet) {
	fs.StringVar(&c.configFile, "config", "", "config file (tollgate.yaml); defaults apply without one")
	fs.StringVar(&c.etcd, "etcd", "", "etcd endpoints, comma-separated host:port (overrides etcd.endpoints)")
	fs.StringVar(&c.dataDir, "data-dir", "", "data directory (overrides dataDir)")
	fs.StringVar(&c.logLevel, "log-level", "", "debug, info, warn or error (overrides log.level)")
	fs.StringVar(&c.etcdCA, "etcd-ca", "", "CA file to verify etcd's TLS certificate (overrides etcd.caFile)")
	fs.StringVar(&c.etcdCert, "etcd-cert", "", "client certificate for etcd (overrides etcd.certFile)")
	fs.StringVar(&c.etcdKey, "etcd-key", "", "client key for etcd (overrides etcd.keyFile)")
	fs.StringVar(&c.etcdUser, "etcd-user", "", "etcd user name (overrides etcd.username)")
	fs.StringVar(&c.etcdPass, "etcd-password-file", "", "file holding the etcd password (overrides etcd.passwordFile)")
}

func (c *common) load() (config.Config, error) {
	cfg, err := config.Load(c.configFile)
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

func newLogger(l config.Log) (*zap.Logger, error) {
	level, err := zapcore.ParseLevel(string(l.Level))
	if err != nil {
		return nil, err
	}
	zc := zap.NewProductionConfig()
	if l.Format == "console" {
		zc = zap.NewDevelopmentConfig()
		zc.DisableStacktrace = true
	}
	zc.Level = zap.NewAtomicLevelAt(level)
	zc.Sampling = nil
	return zc.Build()
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
