// Command clusterbench measures clusterd against the floor NATS, Badger and
// the machine set, in one run: first the floors, then clusterd, each figure
// as an absolute and as a ratio to its floor (see package bench).
//
//	clusterbench [--quick] [--out DIR] [--clusterd BIN] [--only STEPS] [--cpuprofile FILE] [--trace FILE]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"runtime/trace"
	"strings"
	"syscall"

	"github.com/clusterd/clusterd/bench"
)

func main() {
	if bench.IsChild() {
		bench.RunChild()
		return
	}
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "clusterbench:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("clusterbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	quick := fs.Bool("quick", false, "run every scenario small (proves the harness works; the figures mean little)")
	out := fs.String("out", "bench-results", "directory for results.json and results.md")
	bin := fs.String("clusterd", "", "clusterd binary for the process scenarios (default: build ./cmd/clusterd)")
	only := fs.String("only", "", "comma-separated steps to run ("+strings.Join(bench.Steps(), ", ")+"); default all")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file")
	traceFile := fs.String("trace", "", "write a runtime trace of the run to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var steps []string
	if *only != "" {
		steps = strings.Split(*only, ",")
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if *traceFile != "" {
		f, err := os.Create(*traceFile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := trace.Start(f); err != nil {
			return err
		}
		defer trace.Stop()
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	cmd := "go run ./cmd/clusterbench"
	if len(args) > 0 {
		cmd += " " + strings.Join(args, " ")
	}
	rep, err := bench.Run(ctx, bench.Options{Quick: *quick, Clusterd: *bin, Command: cmd, Only: steps, Log: stderr})
	if err != nil {
		return err
	}
	rep.WriteText(stdout)
	if err := rep.Save(*out); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "results written to %s/results.json and %s/results.md\n", *out, *out)
	if len(rep.Failures) > 0 {
		return fmt.Errorf("%d scenario(s) failed", len(rep.Failures))
	}
	return nil
}
