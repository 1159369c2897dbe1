// Command clusterd runs a clusterd node, or mints a role token for one.
//
//	clusterd [--config FILE] [--log-format json|console] [--log-level info]
//	clusterd token [--config FILE] --role super_user --user admin --ttl 1h
//	clusterd config check [--config FILE]
//	clusterd demo [--dir DIR] [--base-port 19100]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/clusterd/clusterd/events"
	"github.com/clusterd/clusterd/node"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "clusterd:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "token":
			return tokenCmd(args[1:], stdout)
		case "config":
			return configCmd(args[1:], stdout, stderr)
		case "demo":
			return demoCmd(args[1:], stdout, stderr)
		case "version":
			fmt.Fprintln(stdout, node.Version)
			return nil
		}
	}
	return serve(args, stdout, stderr)
}

func serve(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("clusterd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "YAML config file (optional; env overrides apply either way)")
	logFormat := fs.String("log-format", "", "json or console (default: logging.format, else json)")
	logLevel := fs.String("log-level", "", "debug, info, warn or error (default: logging.level, else info)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := node.Load(*cfgPath, os.Environ())
	if err != nil {
		return err
	}
	if *logFormat != "" {
		cfg.Logging.Format = *logFormat
	}
	if *logLevel != "" {
		cfg.Logging.Level = *logLevel
	}
	log, err := newLogger(cfg.Logging, stderr)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	n, err := node.Start(ctx, cfg, node.Options{Log: log, Stdout: stdout})
	if err != nil {
		return err
	}
	<-ctx.Done()
	log.Info("shutting down", zap.String("reason", "signal"))
	return n.Close()
}

func newLogger(l node.Logging, w io.Writer) (*zap.Logger, error) {
	level := zapcore.InfoLevel
	if l.Level != "" {
		if err := level.Set(l.Level); err != nil {
			return nil, fmt.Errorf("logging.level: %w", err)
		}
	}
	ec := zap.NewProductionEncoderConfig()
	ec.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	switch l.Format {
	case "", "json":
		enc = zapcore.NewJSONEncoder(ec)
	case "console":
		ec.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(ec)
	default:
		return nil, fmt.Errorf("logging.format must be json or console, got %q", l.Format)
	}
	return zap.New(zapcore.NewCore(enc, zapcore.AddSync(w), level)), nil
}

func tokenCmd(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("clusterd token", flag.ContinueOnError)
	cfgPath := fs.String("config", "", "YAML config file of the node that must trust the token")
	role := fs.String("role", events.SuperUser, "role claim")
	user := fs.String("user", "", "user (sub claim)")
	ttl := fs.Duration("ttl", time.Hour, "lifetime")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *user == "" {
		return errors.New("token: --user is required")
	}
	cfg, err := node.Load(*cfgPath, os.Environ())
	if err != nil {
		return err
	}
	keyFile := cfg.Auth.IssuerKeyFile
	if keyFile == "" {
		keyFile = filepath.Join(cfg.RootPath, "issuer.key")
	}
	key, _, err := events.LoadOrCreateIssuerKey(keyFile)
	if err != nil {
		return err
	}
	tok, err := events.Mint(key, *user, *role, *ttl)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}
