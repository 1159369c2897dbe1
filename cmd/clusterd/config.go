package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/clusterd/clusterd/node"
)

// configCmd runs `clusterd config check --config FILE`: load the file with
// the environment's overrides, validate it, and print the effective
// configuration with secrets redacted. Nothing is started or written.
func configCmd(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && (args[0] == "--help" || args[0] == "-h" || args[0] == "-help" || args[0] == "help") {
		fmt.Fprintln(stdout, "Usage: clusterd config check [--config FILE]\n\nValidates a configuration as the node would and prints the effective values (secrets redacted).")
		return errHelpShown
	}
	if len(args) == 0 || args[0] != "check" {
		return errors.New("usage: clusterd config check [--config FILE]")
	}
	fs := flag.NewFlagSet("clusterd config check", flag.ContinueOnError)
	cfgPath := fs.String("config", "", "YAML config file (env overrides apply either way)")
	if err := parseFlags(fs, args[1:], stdout, "clusterd config check [--config FILE]"); err != nil {
		return err
	}
	env := os.Environ()
	for _, k := range node.UnknownEnv(env) {
		fmt.Fprintf(stderr, "clusterd: warning: environment variable %s names no configuration key and is ignored\n", k)
	}
	cfg, err := node.Load(*cfgPath, env)
	if err != nil {
		return err
	}
	if err := cfg.Check(); err != nil {
		return err
	}
	out, err := cfg.Redacted().Effective().YAML()
	if err != nil {
		return err
	}
	source := "defaults"
	if *cfgPath != "" {
		source = *cfgPath
	}
	fmt.Fprintf(stdout, "# clusterd configuration: valid. Effective values from %s with environment overrides; secrets redacted.\n", source)
	for _, l := range cfg.OperationsListeners() {
		fmt.Fprintf(stdout, "# operations API: %s (%s)\n", l.URL, l.About)
	}
	_, err = stdout.Write(out)
	return err
}
