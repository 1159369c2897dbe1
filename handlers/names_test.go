package handlers

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/clusterd/clusterd/storage"
)

// Every name that becomes a subject token follows one rule: what nats-server
// refuses, and every control, format or separator character.
func TestNamesRefusedByOneRule(t *testing.T) {
	o := newOps(t)
	sub := func(table string) string {
		return fmt.Sprintf(`{"node_name":"n2","subscriptions":[{"table":%s,"subscribe":true,"publish":true}]}`, mustJSON(t, table))
	}
	cases := []struct {
		name, table, want string
	}{
		{"form feed", "bad\fname", "invalid, must not contain ., *, > or whitespace"},
		{"vertical tab", "bad\vname", "invalid, must not contain ., *, > or whitespace"},
		{"NBSP", "bad\u00a0name", "invalid, must not contain ., *, > or whitespace"},
		{"line separator", "bad\u2028name", "invalid, must not contain ., *, > or whitespace"},
		{"paragraph separator", "bad\u2029name", "invalid, must not contain ., *, > or whitespace"},
		{"ideographic space", "bad\u3000name", "invalid, must not contain ., *, > or whitespace"},
		{"NUL", "bad\x00name", "invalid, must not contain control, format or unassigned characters (found U+0000)"},
		{"DEL", "bad\x7fname", "invalid, must not contain control, format or unassigned characters (found U+007F)"},
		{"escape", "bad\x1bname", "invalid, must not contain control, format or unassigned characters (found U+001B)"},
		{"zero width space", "bad\u200bname", "invalid, must not contain control, format or unassigned characters (found U+200B)"},
		{"bidi override", "bad\u202ename", "invalid, must not contain control, format or unassigned characters (found U+202E)"},
		{"BOM", "\ufeffname", "invalid, must not contain control, format or unassigned characters (found U+FEFF)"},
		{"replacement char", "bad\ufffdname", "invalid, must be valid UTF-8"},
		{"transform function", "{{wildcard(1)}}", "invalid, must not contain {{ or }}"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := reject(t, o, o.run("create_table"), fmt.Sprintf(`{"table":%s}`, mustJSON(t, c.table))); got != "'table' "+c.want {
				t.Fatalf("create_table: %s", got)
			}
			if got := reject(t, o, o.run("create_table"), fmt.Sprintf(`{"database":%s,"table":"ok"}`, mustJSON(t, c.table))); got != "'database' "+c.want {
				t.Fatalf("create_table database: %s", got)
			}
			if got := reject(t, o, o.run("add_node"), sub(c.table)); got != "'subscriptions[0].table' "+c.want {
				t.Fatalf("add_node: %s", got)
			}
			if got := reject(t, o, o.run("update_node"), sub(c.table)); got != "'subscriptions[0].table' "+c.want {
				t.Fatalf("update_node: %s", got)
			}
			if got := reject(t, o, o.run("add_node"), fmt.Sprintf(`{"node_name":%s,"subscriptions":[{"table":"t","subscribe":true,"publish":true}]}`, mustJSON(t, c.table))); !strings.HasPrefix(got, "'node_name' invalid, must") {
				t.Fatalf("add_node node_name: %s", got)
			}
		})
	}
	// Invalid UTF-8 cannot be written as a Go string literal in JSON: raw bytes.
	if got := reject(t, o, o.run("create_table"), "{\"table\":\"bad\xffname\"}"); got != "'table' invalid, must be valid UTF-8" {
		t.Fatalf("invalid UTF-8: %s", got)
	}
	tables, err := o.Store.Tables()
	if err != nil || len(tables) != 0 {
		t.Fatalf("refused names were stored: %v %v", tables, err)
	}
	// Names nats-server and terminals have no trouble with stay accepted.
	for _, ok := range []string{"dog", "Hund_2", "chien-é", "犬", "a$b", "emoji🐕"} {
		accept(t, o.run("create_table"), fmt.Sprintf(`{"table":%q}`, ok))
	}
}

func TestNameProblem(t *testing.T) {
	for name, want := range map[string]string{
		"":                               "must not be empty",
		strings.Repeat("a", 251):         "must be at most 250 bytes long",
		"ok":                             "",
		"a b":                            "must not contain whitespace (found U+0020)",
		"a\u0085b":                       "must not contain whitespace (found U+0085)",
		"a\u00adb":                       "must not contain control, format or unassigned characters (found U+00AD)",
		"a\U000f0000b":                   "must not contain control, format or unassigned characters (found U+F0000)",
		"a\u0378b":                       "must not contain control, format or unassigned characters (found U+0378)",
		"a>":                             "must not contain ., * or >",
		string([]byte{'a', 0xc3}):        "must be valid UTF-8",
		string([]byte{0xed, 0xa0, 0x80}): "must be valid UTF-8",
	} {
		if got := storage.NameProblem(name); got != want {
			t.Errorf("NameProblem(%q) = %q, want %q", name, got, want)
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestPurgeFilterOriginFollowsTheNameRule(t *testing.T) {
	k := storage.TableKey{Database: "data", Table: "dog"}
	for filter, want := range map[string]bool{
		"txn.data.dog.n1": true, "txn.data.dog.*": true, "txn.data.dog.>": true,
		"txn.data.dog.n\f1": false, "txn.data.dog.n\u00a01": false, "txn.data.dog.n\x001": false, "txn.data.dog.": false,
	} {
		if got := filterWithin(filter, k); got != want {
			t.Errorf("filterWithin(%q) = %v, want %v", filter, got, want)
		}
	}
}
