package main

import (
	"bytes"
	"os"
	"regexp"
	"strings"
	"testing"
)

var (
	inlineCode = regexp.MustCompile("`([^`]+)`")
	invocation = regexp.MustCompile(`(?:^|[\s($]|bin/)clusterd((?:[ \t]+[^\s|;&)` + "`" + `]+)*)`)
)

// docCommands returns the clusterd command lines the docs show: inline code
// and lines of code blocks, with the file they are in.
func docCommands(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, f := range []string{"../../README.md", "../../docs/operations.md", "../../docs/migration.md", "../../deploy/README.md", "../../Taskfile.yml"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		inBlock := strings.HasSuffix(f, ".yml")
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "```") {
				inBlock = !inBlock
				continue
			}
			var spans []string
			if inBlock {
				spans = []string{line}
			} else {
				for _, m := range inlineCode.FindAllStringSubmatch(line, -1) {
					spans = append(spans, m[1])
				}
			}
			for _, s := range spans {
				if strings.Contains(s, "micro ") { // nats micro info clusterd: the service's name
					continue
				}
				for _, m := range invocation.FindAllStringSubmatch(s, -1) {
					line := strings.TrimSpace(m[1])
					if rest, ok := strings.CutPrefix(line, "-- "); ok { // kubectl exec -c clusterd -- clusterd …
						if m2 := invocation.FindStringSubmatch(rest); m2 != nil {
							line = strings.TrimSpace(m2[1])
						}
					}
					out[line] = append(out[line], f)
				}
			}
		}
	}
	return out
}

// Every clusterd command and flag the docs show exists: a renamed flag or
// command fails this test instead of a reader's first try.
func TestDocsShowRealCommandsAndFlags(t *testing.T) {
	commands := map[string]bool{"token": true, "config": true, "demo": true, "status": true, "replicate": true, "version": true, "help": true}
	helps := map[string]string{}
	help := func(cmd []string) string {
		key := strings.Join(cmd, " ")
		if h, ok := helps[key]; ok {
			return h
		}
		args := append(append([]string{}, cmd...), "--help")
		if len(cmd) == 0 {
			args = []string{"--log-format", "json", "--help"} // the node's own flags
		}
		var out, errb bytes.Buffer
		_ = run(args, &out, &errb)
		helps[key] = out.String()
		return helps[key]
	}
	seen := 0
	for line, files := range docCommands(t) {
		tokens := strings.Fields(line)
		var cmd []string
		i := 0
		if len(tokens) > 0 && !strings.HasPrefix(tokens[0], "-") {
			w := tokens[0]
			if w != strings.ToLower(w) || strings.HasPrefix(w, "<") || strings.ContainsAny(w, "[]{}") {
				continue // a placeholder such as COMMAND
			}
			if !commands[w] {
				continue // prose, not a command line ("clusterd is ...")
			}
			cmd, i = []string{w}, 1
			if w == "config" && len(tokens) > 1 && tokens[1] == "check" {
				cmd, i = []string{"config", "check"}, 2
			}
		}
		for _, tok := range tokens[i:] {
			if !strings.HasPrefix(tok, "--") || strings.ContainsAny(tok, "[]<>…") {
				continue
			}
			name, _, _ := strings.Cut(strings.TrimPrefix(tok, "--"), "=")
			if name == "" || name == "help" {
				continue
			}
			seen++
			if !strings.Contains(help(cmd), "  -"+name+" ") && !strings.Contains(help(cmd), "  -"+name+"\n") {
				t.Errorf("%v shows `clusterd %s` but clusterd %s has no flag --%s", files, line, strings.Join(cmd, " "), name)
			}
		}
	}
	if seen < 10 {
		t.Fatalf("found only %d flags in the docs: the scan is broken", seen)
	}
}
