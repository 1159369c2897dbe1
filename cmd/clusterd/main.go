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
	"strings"
	"syscall"
	"time"

	"github.com/clusterd/clusterd/auth"
	"github.com/clusterd/clusterd/node"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil && !errors.Is(err, errHelpShown) {
		fmt.Fprintln(os.Stderr, "clusterd:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "token":
			return tokenCmd(args[1:], stdout, stderr)
		case "config":
			return configCmd(args[1:], stdout, stderr)
		case "demo":
			return demoCmd(args[1:], stdout, stderr)
		case "status":
			return statusCmd(args[1:], stdout, stderr)
		case "replicate":
			return replicateCmd(args[1:], stdout, stderr)
		case "version":
			if len(args) > 1 && strings.TrimLeft(args[1], "-") == "help" || len(args) > 1 && args[1] == "-h" {
				fmt.Fprintln(stdout, "Usage: clusterd version\n\nPrints clusterd's version.")
				return errHelpShown
			}
			if len(args) > 1 {
				return fmt.Errorf("version: unexpected argument %q", args[1])
			}
			fmt.Fprintln(stdout, node.Version)
			return nil
		case "help", "-h", "-help", "--help":
			return helpCmd(args[1:], stdout, stderr)
		default:
			if !strings.HasPrefix(args[0], "-") {
				return unknownCommand(args[0])
			}
		}
	}
	return serve(args, stdout, stderr)
}

func serve(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("clusterd", flag.ContinueOnError)
	cfgPath := fs.String("config", "", "YAML config file (optional; env overrides apply either way)")
	logFormat := fs.String("log-format", "", "json or console (default: logging.format, else json)")
	logLevel := fs.String("log-level", "", "debug, info, warn or error (default: logging.level, else info)")
	beginAnew := fs.Bool(strings.TrimPrefix(node.BeginAnewFlag, "--"), false, "start even though the state store is damaged (it is moved aside) or lost while the node has history: begins with an empty state store")
	if err := parseFlags(fs, args, stdout, "clusterd [--config FILE] [--log-format json|console] [--log-level LEVEL] [--begin-anew]  (runs a node; clusterd help lists the commands)"); err != nil {
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
	n, err := node.Start(ctx, cfg, node.Options{Log: log, Stdout: stdout, BeginAnew: *beginAnew})
	if errors.Is(err, node.ErrStartInterrupted) {
		log.Info("start interrupted", zap.String("node", cfg.Clustering.NodeName), zap.String("reason", "signal"))
		return nil // stopped on request before it was up: nothing failed
	}
	if err != nil {
		return err
	}
	<-ctx.Done()
	log.Info("shutting down", zap.String("node", cfg.Clustering.NodeName), zap.String("reason", "signal"))
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

func tokenCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("clusterd token", flag.ContinueOnError)
	cfgPath := fs.String("config", "", "YAML config file of the node that must trust the token")
	role := fs.String("role", auth.SuperUser, "role claim")
	user := fs.String("user", "", "user (sub claim)")
	ttl := fs.Duration("ttl", time.Hour, "lifetime, at most auth.maxTokenTTL (24h unless configured)")
	createKey := fs.Bool("create-key", false, "create the issuer key file when it does not exist (a new key no node trusts yet)")
	examples := fs.Bool("examples", stderrIsTerminal(stderr), "print curl and nats commands that use the token on stderr (default: when stderr is a terminal)")
	if err := parseFlags(fs, args, stdout, "clusterd token [--config FILE] --user NAME [--role super_user] [--ttl 1h] [--create-key] [--examples]"); err != nil {
		return err
	}
	if *user == "" {
		return errors.New("token: --user is required")
	}
	cfg, err := node.Load(*cfgPath, os.Environ())
	if err != nil {
		return err
	}
	if max := cfg.Auth.Limits().MaxTTL; *ttl > max {
		return fmt.Errorf("token: --ttl %v is longer than auth.maxTokenTTL (%v): nodes refuse such tokens; mint a shorter one, or raise auth.maxTokenTTL in every node's config", *ttl, max)
	}
	if *ttl <= 0 {
		return fmt.Errorf("token: --ttl must be positive, got %v", *ttl)
	}
	key, err := tokenIssuerKey(cfg, *createKey, stderr)
	if err != nil {
		return err
	}
	tok, err := auth.Mint(key, *user, *role, *ttl)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	if *examples {
		printTokenUsage(stderr, cfg)
	}
	return nil
}
