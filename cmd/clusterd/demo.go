package main

import (
	"context"
	"flag"
	"io"
	"os/signal"
	"syscall"

	"github.com/clusterd/clusterd/node"
	"github.com/clusterd/clusterd/node/demo"
)

// demoCmd runs `clusterd demo`: a local 3-node cluster until Ctrl-C.
func demoCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("clusterd demo", flag.ContinueOnError)
	dir := fs.String("dir", "", "keep the nodes' data here and resume it on the next run (default: a temporary directory removed on exit)")
	base := fs.Int("base-port", demo.DefaultBasePort, "first of the ports: node i takes base+10(i-1) … +4; 0 picks free ports")
	logLevel := fs.String("log-level", "warn", "level of the nodes' logs on stderr")
	if err := parseFlags(fs, args, stdout, "clusterd demo [--dir DIR] [--base-port 19100] [--log-level warn]"); err != nil {
		return err
	}
	log, err := newLogger(node.Logging{Level: *logLevel, Format: "console"}, stderr)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return demo.Run(ctx, demo.Options{Dir: *dir, BasePort: *base, Log: log}, stdout)
}
