// Command tollgate is the Tollgate API gateway for Envoy: one binary, roles as subcommands.
// This package turns flags and the config file into constructed components; the logic lives
// in the packages it wires together. The command line is spf13/cobra's (root.go).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/tollgate-gw/tollgate/internal/config"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := execute(ctx, os.Args[1:])
	stop()
	os.Exit(code)
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
