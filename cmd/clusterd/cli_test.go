package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// What a user sees for each command line that does not run a node: help on
// stdout with exit 0, and refusals that say what to run instead. None of
// these may start a server (run would block if one did).
func TestCommandLine(t *testing.T) {
	t.Setenv("ROOTPATH", t.TempDir())
	cases := []struct {
		args    []string
		help    bool   // printed help: exit 0
		stdout  string // in stdout
		errWant string // in the error (exit 1); "" = success
	}{
		{args: []string{"--help"}, help: true, stdout: "clusterd config check"},
		{args: []string{"-h"}, help: true, stdout: "clusterd token"},
		{args: []string{"help"}, help: true, stdout: "clusterd demo"},
		{args: []string{"help", "token"}, help: true, stdout: "--create-key"},
		{args: []string{"help", "config"}, help: true, stdout: "clusterd config check [--config FILE]"},
		{args: []string{"help", "nope"}, errWant: `unknown command "nope"`},
		{args: []string{"token", "--help"}, help: true, stdout: "-ttl"},
		{args: []string{"config", "--help"}, help: true, stdout: "Usage: clusterd config check"},
		{args: []string{"config", "check", "--help"}, help: true, stdout: "-config"},
		{args: []string{"demo", "--help"}, help: true, stdout: "-base-port"},
		{args: []string{"version", "--help"}, help: true, stdout: "Usage: clusterd version"},
		{args: []string{"--config", "x.yaml", "--help"}, help: true, stdout: "-log-format"},
		{args: []string{"version"}, stdout: "0."},
		{args: []string{"tokn"}, errWant: `unknown command "tokn" (did you mean 'token'?); commands are config, demo, help, replicate, status, token, version`},
		{args: []string{"serve"}, errWant: `unknown command "serve"; commands are`},
		{args: []string{"config", "check", "extra"}, errWant: `clusterd config check: unexpected argument "extra" (clusterd config check --help lists the flags)`},
		{args: []string{"config", "chek"}, errWant: "usage: clusterd config check [--config FILE]"},
		{args: []string{"token", "--user", "a", "extra"}, errWant: `clusterd token: unexpected argument "extra"`},
		{args: []string{"--bogus"}, errWant: "clusterd: flag provided but not defined: -bogus (clusterd --help lists the flags)"},
		{args: []string{"demo", "--base-port", "x"}, errWant: `clusterd demo: invalid value "x" for flag -base-port`},
		{args: []string{"version", "2"}, errWant: `version: unexpected argument "2"`},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			err := run(c.args, &out, &errb)
			switch {
			case c.help:
				if !errors.Is(err, errHelpShown) {
					t.Fatalf("err = %v, want help shown", err)
				}
			case c.errWant != "":
				if err == nil || !strings.Contains(err.Error(), c.errWant) {
					t.Fatalf("err = %v, want %q", err, c.errWant)
				}
			case err != nil:
				t.Fatalf("err = %v", err)
			}
			if !strings.Contains(out.String(), c.stdout) {
				t.Fatalf("stdout lacks %q:\n%s", c.stdout, out.String())
			}
			if c.errWant != "" && out.Len() > 0 {
				t.Fatalf("a refusal printed to stdout:\n%s", out.String())
			}
		})
	}
}

// The binary's exit codes: help is a success, an unknown command a failure
// that starts nothing.
func TestBinaryHelpAndUnknownCommand(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	for _, c := range []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{[]string{"--help"}, 0, "clusterd token", ""},
		{[]string{"help"}, 0, "clusterd demo", ""},
		{[]string{"tokn"}, 1, "", `clusterd: unknown command "tokn" (did you mean 'token'?)`},
	} {
		cmd := exec.Command(bin, c.args...)
		cmd.Dir = dir
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != c.code || !strings.Contains(out.String(), c.stdout) || !strings.Contains(errb.String(), c.stderr) {
			t.Fatalf("clusterd %v: exit %d (want %d)\nstdout:\n%s\nstderr:\n%s", c.args, code, c.code, out.String(), errb.String())
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("the commands left %v behind", entries)
	}
}

// clusterd token run where no issuer key exists refuses, creates nothing, and
// says how to get a token a node trusts; --create-key makes one on purpose.
func TestTokenRefusesAMissingIssuerKey(t *testing.T) {
	root := t.TempDir()
	t.Setenv("ROOTPATH", root)
	var out, errb bytes.Buffer
	err := run([]string{"token", "--user", "admin"}, &out, &errb)
	key := filepath.Join(root, "issuer.key")
	if err == nil || !strings.Contains(err.Error(), "no issuer key at "+key) ||
		!strings.Contains(err.Error(), "auth.trustedIssuers") || !strings.Contains(err.Error(), "--create-key") {
		t.Fatalf("err = %v", err)
	}
	if out.Len() > 0 {
		t.Fatalf("printed a token: %s", out.String())
	}
	if _, err := os.Stat(key); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("issuer key written anyway: %v", err)
	}
	if err := run([]string{"token", "--user", "admin", "--create-key"}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	if strings.Count(out.String(), ".") != 2 || !strings.Contains(errb.String(), "created issuer key "+key) {
		t.Fatalf("stdout %q stderr %q", out.String(), errb.String())
	}
	out.Reset()
	errb.Reset()
	if err := run([]string{"token", "--user", "admin"}, &out, &errb); err != nil || errb.Len() > 0 {
		t.Fatalf("with the key present: %v %q", err, errb.String())
	}
}

// `clusterd demo` on a port another demo (here: the test) holds: exit 1 at
// once with what to pass, no panic, nothing left in TMPDIR.
func TestBinaryDemoOnPortsInUse(t *testing.T) {
	bin := buildBinary(t)
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	base := held.Addr().(*net.TCPAddr).Port
	if base > 65535-24 {
		t.Skip("free port too high to be a base")
	}
	tmp := t.TempDir()
	cmd := exec.Command(bin, "demo", "--base-port", strconv.Itoa(base))
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("exit: %v\n%s", err, errb.String())
	}
	want := fmt.Sprintf("clusterd: port %d on 127.0.0.1 is in use (is another demo or node running?); the demo needs ports %d to %d: stop what holds them, or pass --base-port with another base (0 picks free ports)\n", base, base, base+24)
	if errb.String() != want || out.Len() != 0 {
		t.Fatalf("stderr %q\nwant   %q\nstdout %q", errb.String(), want, out.String())
	}
	if entries, _ := os.ReadDir(tmp); len(entries) != 0 {
		t.Fatalf("left in TMPDIR: %v", entries)
	}
}
