package node_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clusterd/clusterd/node"
	"github.com/clusterd/clusterd/node/nodetest"
)

// A restart that fails (a port in use) keeps what the node's earlier start
// wrote: its password, issuer key and data stay, and it starts again later.
func TestFailedRestartKeepsTheNodesFiles(t *testing.T) {
	cfg := nodetest.Config(t, "keep1")
	cfg.Clustering.Password = ""
	n, err := node.Start(context.Background(), cfg, node.Options{})
	if err != nil {
		t.Fatal(err)
	}
	n.Close()
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	busy := cfg
	busy.OperationsAPI.Network.Port = held.Addr().(*net.TCPAddr).Port
	if _, err := node.Start(context.Background(), busy, node.Options{}); err == nil || !strings.Contains(err.Error(), "cannot start: operationsApi.network.port") {
		t.Fatalf("err = %v", err)
	}
	held.Close()
	for _, f := range []string{"cluster-password", "issuer.key", "node-name", "state"} {
		if _, err := os.Stat(filepath.Join(cfg.RootPath, f)); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
	n, err = node.Start(context.Background(), cfg, node.Options{})
	if err != nil {
		t.Fatal(err)
	}
	n.Close()
}

// A rootPath keeps its node's name: another nodeName on the same data is
// refused with what to do, the data is untouched, and the old name starts.
func TestRenamedNodeOnItsDataIsRefused(t *testing.T) {
	cfg := nodetest.Config(t, "first")
	n := nodetest.Start(t, cfg)
	nodetest.Op(t, n, "create_table", map[string]any{"table": "t"})
	n.Close()

	renamed := cfg
	renamed.Clustering.NodeName = "second"
	_, err := node.Start(context.Background(), renamed, node.Options{})
	want := "cannot start: rootPath " + cfg.RootPath + " holds the data of node 'first' (its JetStream domain and transaction subjects carry that name), but clustering.nodeName is 'second'. Start it as 'first'"
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "or give 'second' its own rootPath") {
		t.Fatalf("err = %v", err)
	}
	n = nodetest.Start(t, cfg)
	if got := nodetest.Op(t, n, "describe_all", map[string]any{}).JSON(t); got["data"] == nil {
		t.Fatalf("the table is gone after the refused rename: %v", got)
	}
}
