package node_test

import (
	"context"
	"fmt"
	"github.com/clusterd/clusterd/storage"
	"github.com/clusterd/clusterd/topology"
	"github.com/nats-io/nats.go/jetstream"
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
	var cfgs []node.Config
	var nodes []*node.Node
	for i, name := range names {
		cfg := nodetest.FixedPorts(t, nodetest.Config(t, name))
		// 1000 subscriptions per call on a loaded 2-core machine (and 5-10x
		// slower under -race) can take longer than the default 2 s.
		cfg.Clustering.RequestTimeout = 10 * time.Second
		if i > 0 {
			cfg.Clustering.HubServer.Cluster.Network.Routes = []node.RouteConfig{{Host: "127.0.0.1", Port: cfgs[0].Clustering.HubServer.Cluster.Network.Port}}
		}
		cfgs = append(cfgs, cfg)
		nodes = append(nodes, nodetest.Start(t, cfg))
	}
	nodetest.Eventually(t, 10*time.Second, "full mesh", func() bool {
		for _, n := range nodes {
			if len(n.Servers.RoutedPeers()) != len(nodes)-1 {
				return false
			}
		}
		return true
	})
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
	var keys []storage.TableKey
	for i := range subs {
		subs[i] = sub(fmt.Sprintf("t%04d", i), true, true)
		keys = append(keys, storage.TableKey{Database: "data", Table: fmt.Sprintf("t%04d", i)})
	}
	wantSources := topology.LaneCount(len(keys))
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
				if !p.Converged || p.Sources != wantSources {
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

	{
		var filters []string
		for i := 0; i < tables; i++ {
			filters = append(filters, fmt.Sprintf("txn.data.t%04d.n1", i))
		}
		js := jsFor(t, nodes[0])
		st, _ := js.Stream(context.Background(), "txn")
		t0 := time.Now()
		c, err := st.CreateConsumer(context.Background(), jetstream.ConsumerConfig{FilterSubjects: filters, AckPolicy: jetstream.AckNonePolicy})
		t.Logf("consumer with %d filters created in %v (err %v)", len(filters), time.Since(t0), err)
		if err == nil {
			_ = st.DeleteConsumer(context.Background(), c.CachedInfo().Name)
		}
	}
	// Restart one node: how long until replication flows both ways again.
	restarted := nodes[len(nodes)-1]
	_ = restarted.Close()
	start = time.Now()
	restarted = nodetest.Start(t, cfgs[len(cfgs)-1])
	serving := time.Since(start)
	for _, n := range nodes[:len(nodes)-1] {
		publish(t, n, "data", last, 1, "y")
	}
	publish(t, restarted, "data", last, 1, "y")
	for _, n := range nodes[:len(nodes)-1] {
		subj := "txn.data." + last + "." + n.Name()
		nodetest.Eventually(t, 60*time.Second, subj+" on the restarted node", func() bool { return count(t, restarted, subj) == 2 })
		t.Logf("%s -> restarted after %v", n.Name(), time.Since(start))
		subj = "txn.data." + last + "." + restarted.Name()
		nodetest.Eventually(t, 60*time.Second, subj+" on "+n.Name(), func() bool { return count(t, n, subj) == 2 })
		t.Logf("restarted -> %s after %v", n.Name(), time.Since(start))
	}
	t.Logf("restart of a node with %d peers × %d tables: serving in %v, all replication flowing in %v", len(nodes)-1, tables, serving, time.Since(start))
}
