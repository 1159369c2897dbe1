package node_test

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/clusterd/clusterd/node"
	"github.com/clusterd/clusterd/node/nodetest"
)

// TestScaleFullMesh runs 5 nodes with every table replicated between every
// pair, and reports how long convergence takes. CLUSTERD_SCALE_TABLES sets the
// table count (default 1000; 200 under the race detector, 50 with -short).
func TestScaleFullMesh(t *testing.T) {
	tables := 1000
	if raceEnabled {
		tables = 200
	}
	if testing.Short() {
		tables = 50
	}
	if v := os.Getenv("CLUSTERD_SCALE_TABLES"); v != "" {
		tables, _ = strconv.Atoi(v)
	}
	names := []string{"n1", "n2", "n3", "n4", "n5"}
	start := time.Now()
	nodes := mesh(t, names...)
	t.Logf("mesh of %d up in %v", len(nodes), time.Since(start))

	start = time.Now()
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Add(1)
		go func(n *node.Node) {
			defer wg.Done()
			nc := nodetest.Connect(t, n)
			tok := nodetest.SuperUser(t, n)
			for i := 0; i < tables; i++ {
				r := nodetest.Request(t, nc, "ops.cluster.create_table", tok, map[string]any{"table": fmt.Sprintf("t%04d", i)})
				if r.Status != 200 {
					t.Errorf("create_table: %s", r.Body)
					return
				}
			}
		}(n)
	}
	wg.Wait()
	t.Logf("%d tables on each node in %v", tables, time.Since(start))

	subs := make([]any, tables)
	for i := range subs {
		subs[i] = sub(fmt.Sprintf("t%04d", i), true, true)
	}
	start = time.Now()
	for i, a := range nodes {
		for _, b := range nodes[i+1:] {
			op(t, a, "add_node", map[string]any{"node_name": b.Name(), "subscriptions": subs}, 200)
		}
	}
	recorded := time.Since(start)
	nodetest.Eventually(t, 60*time.Second, "every node sourcing from every peer", func() bool {
		for _, n := range nodes {
			st := n.Repl.Status()
			if len(st) != len(nodes)-1 {
				return false
			}
			for _, p := range st {
				if !p.Converged || p.Sources != 1 {
					return false
				}
			}
		}
		return true
	})
	t.Logf("add_node for %d pairs × %d tables answered in %v; sources converged %v after the first request", len(nodes)*(len(nodes)-1)/2, tables, recorded, time.Since(start))

	// A transaction on each node for the last table reaches all the others.
	start = time.Now()
	last := fmt.Sprintf("t%04d", tables-1)
	for _, n := range nodes {
		publish(t, n, "data", last, 1, "x")
	}
	for _, n := range nodes {
		for _, o := range nodes {
			if o == n {
				continue
			}
			subj := "txn.data." + last + "." + o.Name()
			nodetest.Eventually(t, 30*time.Second, subj+" on "+n.Name(), func() bool { return count(t, n, subj) == 1 })
		}
	}
	t.Logf("first transactions flowing everywhere %v after publishing", time.Since(start))
}
