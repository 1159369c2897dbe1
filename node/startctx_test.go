package node_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/clusterd/clusterd/node"
	"github.com/clusterd/clusterd/node/nodetest"
)

// Start honours its ctx: a start-up whose ctx ends (a signal while starting)
// is undone (nothing of a first start is left), and the same node then
// starts with a live ctx, which it outlives: only Close stops it.
func TestStartInterruptedIsUndone(t *testing.T) {
	cfg := nodetest.Config(t, "interrupted")
	cfg.RootPath = filepath.Join(cfg.RootPath, "root") // made by the start
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if n, err := node.Start(ctx, cfg, node.Options{}); !errors.Is(err, node.ErrStartInterrupted) || n != nil {
		t.Fatalf("Start with an ended ctx = %v, %v; want ErrStartInterrupted", n, err)
	}
	if _, err := os.Stat(cfg.RootPath); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("an interrupted first start left %s behind (%v)", cfg.RootPath, err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	n, err := node.Start(ctx, cfg, node.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	cancel()
	if r := nodetest.Op(t, n, "create_table", map[string]any{"table": "dog"}); r.Status != 200 {
		t.Fatalf("create_table after Start's ctx ended: %d %s", r.Status, r.Body)
	}
	nodetest.Eventually(t, 10*time.Second, "ready after Start's ctx ended", func() bool { ok, _ := n.Ready(); return ok })
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
}
