package node_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clusterd/clusterd/node"
	"github.com/clusterd/clusterd/node/nodetest"
)

// A node that cannot start returns why (and what it started is stopped),
// rather than panicking in its own cleanup.
func TestStartFailureReturnsTheError(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := nodetest.Config(t, "x")
	cfg.RootPath = filepath.Join(file, "root") // under a regular file: cannot be created
	n, err := node.Start(context.Background(), cfg, node.Options{})
	// The refusal names the path that cannot be used (the config checks reach
	// it through the issuer key under rootPath, Start through rootPath itself).
	if err == nil || n != nil || !strings.Contains(err.Error(), cfg.RootPath) {
		t.Fatalf("Start = %v, %v; want no node and an error naming %s", n, err, cfg.RootPath)
	}
}
