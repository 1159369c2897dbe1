package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/clusterd/clusterd/node"
)

// errHelpShown means a command printed its help on request: exit 0.
var errHelpShown = errors.New("help shown")

// commands are clusterd's subcommands, for `clusterd --help` and for
// naming the closest one when a user mistypes.
var commands = []struct{ name, args, what string }{
	{"", "[--config FILE] [--log-format json|console] [--log-level LEVEL]", "run a node (the default when no command is given)"},
	{"token", "[--config FILE] --user NAME [--role super_user] [--ttl 1h] [--create-key]", "print a role token the node with this config trusts"},
	{"config check", "[--config FILE]", "validate a config as the node would and print the effective values (secrets redacted)"},
	{"status", "[--server URL | --context NAME | --http URL] [--node NAME] [--watch] [--json]", "show the cluster at a glance: nodes, routes, links, link problems, replication per peer and table"},
	{"replicate", "--tables db.t[,db.t…] [--start-time TIME] [--nodes a,b,…] [--server URL | --context NAME]", "replicate tables on every node of the mesh: every pair, both ways (replication is not transitive)"},
	{"demo", "[--dir DIR] [--base-port 19100]", "run a local 3-node cluster in one process until Ctrl-C"},
	{"version", "", "print clusterd's version"},
	{"help", "[COMMAND]", "show this help, or a command's"},
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "clusterd: HarperDB-style clustering over embedded NATS.")
	fmt.Fprintln(w, "\nUsage:")
	for _, c := range commands {
		name := "clusterd"
		if c.name != "" {
			name += " " + c.name
		}
		if c.args != "" {
			name += " " + c.args
		}
		fmt.Fprintf(w, "  %s\n      %s\n", name, c.what)
	}
	fmt.Fprintln(w, "\n`clusterd COMMAND --help` lists a command's flags. Configuration keys can also be set by")
	fmt.Fprintln(w, "environment variables named after their path (CLUSTERING_NODENAME=n1); see README.md.")
}

// unknownCommand refuses a first argument that is no command, naming the
// closest one: a typo must never start a server on the default ports.
func unknownCommand(arg string) error {
	best, bestD := "", 3
	for _, c := range commands {
		name, _, _ := strings.Cut(c.name, " ")
		if name == "" {
			continue
		}
		if d := node.EditDistance(arg, name); d < bestD {
			best, bestD = name, d
		}
	}
	hint := ""
	if best != "" {
		hint = fmt.Sprintf(" (did you mean '%s'?)", best)
	}
	names := make([]string, 0, len(commands))
	for _, c := range commands {
		if name, _, _ := strings.Cut(c.name, " "); name != "" {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return fmt.Errorf("unknown command %q%s; commands are %s, and no command runs a node (clusterd --help)",
		arg, hint, strings.Join(names, ", "))
}

// parseFlags parses args into fs. --help prints the command's usage and
// flags to stdout (errHelpShown); a bad flag or a stray argument is an
// error that says where to look.
func parseFlags(fs *flag.FlagSet, args []string, stdout io.Writer, usage string) error {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(stdout, "Usage: %s\n\nFlags:\n", usage)
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		return errHelpShown
	}
	if err != nil {
		return fmt.Errorf("%s: %v (%s --help lists the flags)", fs.Name(), err, fs.Name())
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected argument %q (%s --help lists the flags)", fs.Name(), fs.Arg(0), fs.Name())
	}
	return nil
}

// helpCmd runs `clusterd help [COMMAND]`.
func helpCmd(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		printUsage(stdout)
		return errHelpShown
	}
	if args[0] == "help" {
		printUsage(stdout)
		return errHelpShown
	}
	for _, c := range commands {
		if name, _, _ := strings.Cut(c.name, " "); name == args[0] {
			return run(append(append([]string{}, args...), "--help"), stdout, stderr)
		}
	}
	return unknownCommand(args[0])
}
