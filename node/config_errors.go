package node

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config errors speak in config keys, not Go types: yaml.v3 reports "line 3:
// field nodename not found in type node.Clustering" or "cannot unmarshal
// !!int `604800` into time.Duration"; the user wrote clustering.nodename and
// maxAge: 604800 (HarperDB's maxAge is in seconds). describeYAML maps the
// line numbers back to key paths through the YAML's own node tree.

var (
	reUnknownField = regexp.MustCompile("^line (\\d+): field (.+) not found in type (\\S+)$")
	reCannot       = regexp.MustCompile("^line (\\d+): cannot unmarshal (!!\\w+)(?: `(.*)`)? into (.+)$")
)

// yamlEntry is one key or value of a YAML document, with its key path.
type yamlEntry struct {
	line  int
	path  string // clustering.hubServer.cluster.network.routes[0].port
	key   string // set for a key
	value string // scalar value (values only)
	kind  yaml.Kind
	isKey bool
}

func yamlEntries(src []byte) []yamlEntry {
	var doc yaml.Node
	if yaml.Unmarshal(src, &doc) != nil || len(doc.Content) == 0 {
		return nil
	}
	var out []yamlEntry
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := k.Value
				if path != "" {
					p = path + "." + k.Value
				}
				out = append(out, yamlEntry{line: k.Line, path: p, key: k.Value, isKey: true})
				out = append(out, yamlEntry{line: v.Line, path: p, value: v.Value, kind: v.Kind})
				walk(v, p)
			}
		case yaml.SequenceNode:
			for i, v := range n.Content {
				p := fmt.Sprintf("%s[%d]", path, i)
				out = append(out, yamlEntry{line: v.Line, path: p, value: v.Value, kind: v.Kind})
				walk(v, p)
			}
		}
	}
	walk(doc.Content[0], "")
	return out
}

// describeYAML turns a yaml.v3 decoding error of src into one message per
// problem, naming key paths; withLines adds "(line N)" (for a file the user
// wrote, not for YAML generated from environment variables).
func describeYAML(src []byte, err error, withLines bool) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return err
	}
	entries := yamlEntries(src)
	msgs := make([]string, len(te.Errors))
	for i, m := range te.Errors {
		msgs[i] = describeOne(entries, m, withLines)
	}
	return errors.New(strings.Join(msgs, "; "))
}

func describeOne(entries []yamlEntry, m string, withLines bool) string {
	where := func(path string, line int) string {
		if withLines {
			return fmt.Sprintf("%s (line %d)", path, line)
		}
		return path
	}
	if g := reUnknownField.FindStringSubmatch(m); g != nil {
		line, _ := strconv.Atoi(g[1])
		for _, e := range entries {
			if e.isKey && e.line == line && e.key == g[2] {
				msg := where(e.path, line) + " is not a configuration key"
				if s := suggestKey(e.path); s != "" {
					msg += " (did you mean " + s + "?)"
				}
				return msg
			}
		}
		return fmt.Sprintf("line %d: %s is not a configuration key", line, g[2])
	}
	if g := reCannot.FindStringSubmatch(m); g != nil {
		line, _ := strconv.Atoi(g[1])
		tag, shown, goType := g[2], g[3], g[4]
		var hit *yamlEntry
		for i := range entries {
			e := &entries[i]
			if e.isKey || e.line != line {
				continue
			}
			switch tag {
			case "!!map":
				if e.kind != yaml.MappingNode {
					continue
				}
			case "!!seq":
				if e.kind != yaml.SequenceNode {
					continue
				}
			default:
				if e.kind != yaml.ScalarNode || !strings.HasPrefix(e.value, strings.TrimSuffix(shown, "...")) {
					continue
				}
			}
			hit = e // the last (deepest) one on the line wins
		}
		if hit == nil {
			return fmt.Sprintf("line %d: %s must be %s", line, shown, expectation(goType))
		}
		got := hit.value
		switch tag {
		case "!!map":
			got = "a mapping"
		case "!!seq":
			got = "a list"
		}
		msg := fmt.Sprintf("%s must be %s, got %s", where(hit.path, line), expectation(goType), got)
		if goType == "time.Duration" && tag == "!!int" {
			if secs, err := strconv.ParseInt(hit.value, 10, 64); err == nil && secs > 0 {
				msg += fmt.Sprintf(" (a number without a unit; HarperDB's value is in seconds: for %d seconds write %s)", secs, shortDuration(time.Duration(secs)*time.Second))
			}
		}
		return msg
	}
	return m
}

// expectation says what a Go type accepts, in a config author's words.
func expectation(goType string) string {
	switch {
	case goType == "time.Duration":
		return "a duration with a unit, like 90s, 30m or 168h"
	case goType == "bool":
		return "true or false"
	case goType == "string":
		return "a string"
	case strings.HasPrefix(goType, "int") || strings.HasPrefix(goType, "uint"):
		return "a whole number"
	case strings.HasPrefix(goType, "[]"):
		return "a list"
	default:
		return "a mapping of keys"
	}
}

// shortDuration renders d without zero trailing units: 168h, 2m, 1m30s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// suggestKey returns the configuration key closest to the unknown path
// (same parent, same letters in another case, or one or two typos), or "".
func suggestKey(path string) string {
	clean := regexp.MustCompile(`\[\d+\]`).ReplaceAllString(path, "")
	parent, name := "", clean
	if i := strings.LastIndex(clean, "."); i >= 0 {
		parent, name = clean[:i], clean[i+1:]
	}
	best, bestD := "", 3
	for _, k := range configPaths() {
		kp, kn := "", k
		if i := strings.LastIndex(k, "."); i >= 0 {
			kp, kn = k[:i], k[i+1:]
		}
		if kp != parent {
			continue
		}
		d := EditDistance(strings.ToLower(name), strings.ToLower(kn))
		if strings.EqualFold(name, kn) {
			d = 0
		}
		if d < bestD {
			best, bestD = kn, d
		}
	}
	if best == "" {
		return ""
	}
	// Keep the user's own prefix (with its list indexes).
	if i := strings.LastIndex(path, "."); i >= 0 {
		return path[:i+1] + best
	}
	return best
}

// configPaths lists every key path of Config, inner keys included
// (clustering, clustering.hubServer, …), with list items' keys under the
// list's path.
func configPaths() []string {
	var out []string
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
			if tag == "" || tag == "-" {
				continue
			}
			p := tag
			if prefix != "" {
				p = prefix + "." + tag
			}
			out = append(out, p)
			ft := f.Type
			if ft.Kind() == reflect.Slice {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct && ft != reflect.TypeOf(time.Duration(0)) {
				walk(ft, p)
			}
		}
	}
	walk(reflect.TypeOf(Config{}), "")
	return out
}

// EditDistance is the Levenshtein distance of a and b, for "did you mean"
// hints on config keys here and on commands in cmd/clusterd.
func EditDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
