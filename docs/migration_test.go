package docs_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/clusterd/clusterd/node"
)

// The migration note's clusterd config loads, and every environment
// variable it names is a real key.
func TestMigrationNote(t *testing.T) {
	b, err := os.ReadFile("migration.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	blocks := regexp.MustCompile("(?s)<!-- clusterd config -->\n```yaml\n(.*?)```").FindAllStringSubmatch(doc, -1)
	if len(blocks) == 0 {
		t.Fatal("no <!-- clusterd config --> block")
	}
	for _, blk := range blocks {
		p := filepath.Join(t.TempDir(), "clusterd.yaml")
		if err := os.WriteFile(p, []byte(blk[1]), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := node.Load(p, []string{"CLUSTERING_PASSWORD=secret"})
		if err != nil {
			t.Fatalf("the example config does not load: %v\n%s", err, blk[1])
		}
		if err := cfg.Check(); err != nil {
			t.Fatal(err)
		}
	}
	var env []string
	for _, name := range regexp.MustCompile(`\b(?:CLUSTERING|OPERATIONSAPI|AUTH|LOGGING|TLS)_[A-Z_]+|\bROOTPATH\b`).FindAllString(doc, -1) {
		env = append(env, name+"=x")
	}
	if len(env) < 5 {
		t.Fatalf("found %d environment variables in the note", len(env))
	}
	unknown := node.UnknownEnv(env)
	// The note names CLUSTERING_NODE_NAME as the example of a misspelling.
	if len(unknown) != 1 || unknown[0] != "CLUSTERING_NODE_NAME" {
		t.Fatalf("the note names variables that are not keys: %s", strings.Join(unknown, ", "))
	}
}
