package main

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/clusterd/clusterd/client"
	"github.com/clusterd/clusterd/node"
	"github.com/clusterd/clusterd/node/nodetest"
)

// messages is how many transactions of dev.dog n holds (describe_all).
func messages(t *testing.T, n *node.Node) int {
	t.Helper()
	r := nodetest.Op(t, n, "describe_all", map[string]any{})
	m := r.JSON(t)
	dev, _ := m["dev"].(map[string]any)
	dog, _ := dev["dog"].(map[string]any)
	f, _ := dog["messages"].(float64)
	return int(f)
}

func publish(t *testing.T, n *node.Node, data string) {
	t.Helper()
	tx, err := client.New(nodetest.Connect(t, n)).Transactions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Publish(context.Background(), "dev", "dog", []byte(data)); err != nil {
		t.Fatal(err)
	}
}

// clusterd replicate at 5 nodes: every pair both ways, history included
// (start_time before transactions written before the command), exactly once
// per node and origin; a second run changes nothing; later writes arrive
// once each.
func TestReplicateAcrossFiveNodes(t *testing.T) {
	key := filepath.Join(t.TempDir(), "issuer.key") // one issuer: one token for the whole mesh
	var nodes []*node.Node
	for i := 1; i <= 5; i++ {
		cfg := nodetest.Config(t, fmt.Sprintf("r%d", i))
		cfg.Auth.IssuerKeyFile = key
		nodes = append(nodes, nodetest.Start(t, cfg))
	}
	for _, n := range nodes[1:] {
		nodetest.Op(t, n, "cluster_set_routes", map[string]any{"server": "hub", "routes": []any{nodetest.ClusterRoute(nodes[0])}})
	}
	nodetest.Eventually(t, 30*time.Second, "a full mesh", func() bool {
		for _, n := range nodes {
			if len(n.Servers.RoutedPeers()) != 4 {
				return false
			}
		}
		return true
	})
	// History: one transaction per node, written before the command.
	before := time.Now().UTC().Add(-time.Second)
	for _, n := range nodes {
		nodetest.Op(t, n, "create_table", map[string]any{"database": "dev", "table": "dog"})
		publish(t, n, `{"from":"`+n.Name()+`"}`)
	}
	tok := nodetest.SuperUser(t, nodes[0])
	args := append([]string{"replicate", "--tables", "dev.dog", "--start-time", before.Format(time.RFC3339Nano), "--token", tok}, natsArgs(nodes[0])...)
	var out, errb bytes.Buffer
	nodetest.Eventually(t, 30*time.Second, "cluster_network to see all five", func() bool {
		out.Reset()
		return run(args, &out, &errb) == nil
	})
	if !strings.Contains(out.String(), "Replicating dev.dog on r1, r2, r3, r4, r5: 10 pairs, both ways, from ") ||
		strings.Count(out.String(), " ok\n") != 10 || !strings.Contains(out.String(), "All 10 pairs set.") {
		t.Fatalf("output:\n%s", out.String())
	}
	allHold := func(want int) func() bool {
		return func() bool {
			for _, n := range nodes {
				if messages(t, n) != want {
					return false
				}
			}
			return true
		}
	}
	nodetest.Eventually(t, 60*time.Second, "every node to hold the five nodes' history", allHold(5))
	nodetest.Consistently(t, 2*time.Second, "no duplicates", allHold(5))

	// Again: nothing changes.
	out.Reset()
	if err := run(args, &out, &errb); err != nil || strings.Count(out.String(), " ok\n") != 10 {
		t.Fatalf("second run: %v\n%s", err, out.String())
	}
	nodetest.Consistently(t, 2*time.Second, "still once each", allHold(5))

	// New writes on every node arrive once on every node.
	for _, n := range nodes {
		publish(t, n, `{"again":"`+n.Name()+`"}`)
	}
	nodetest.Eventually(t, 60*time.Second, "the new writes everywhere", allHold(10))
	nodetest.Consistently(t, 2*time.Second, "once each", allHold(10))
	// A healthy mesh reports no link problem anywhere (no false alarms from
	// the log lines of routes forming, pooling and gossiping).
	for _, n := range nodes {
		if lp := nodetest.Op(t, n, "cluster_status", map[string]any{}).JSON(t)["link_problems"]; lp != nil {
			t.Errorf("%s reports link problems in a healthy mesh: %v", n.Name(), lp)
		}
	}
}

// A node that does not answer fails its pairs (exit 1, named); the others
// are set. Bad flags are refused before anything is done.
func TestReplicateNamesWhatFailed(t *testing.T) {
	key := filepath.Join(t.TempDir(), "issuer.key")
	var nodes []*node.Node
	for _, name := range []string{"f1", "f2"} {
		cfg := nodetest.Config(t, name)
		cfg.Auth.IssuerKeyFile = key
		nodes = append(nodes, nodetest.Start(t, cfg))
	}
	nodetest.Op(t, nodes[1], "cluster_set_routes", map[string]any{"server": "hub", "routes": []any{nodetest.ClusterRoute(nodes[0])}})
	nodetest.Eventually(t, 30*time.Second, "mesh", func() bool { return len(nodes[0].Servers.RoutedPeers()) == 1 })
	tok := nodetest.SuperUser(t, nodes[0])
	var out, errb bytes.Buffer
	var err error
	nodetest.Eventually(t, 30*time.Second, "f1 <-> f2 set", func() bool {
		out.Reset()
		err = run(append([]string{"replicate", "--tables", "dev.dog", "--nodes", "f1,f2,ghost", "--token", tok, "--timeout", "2s"}, natsArgs(nodes[0])...), &out, &errb)
		return regexp.MustCompile(`(?m)^  f1 <-> f2 +ok$`).MatchString(out.String())
	})
	if err == nil || !strings.Contains(err.Error(), "2 of 3 pairs failed (f1 <-> ghost, f2 <-> ghost); the others are set") ||
		!regexp.MustCompile(`(?m)^  ghost +FAILED: create table dev\.dog: .*no responders`).MatchString(out.String()) {
		t.Fatalf("err %v\n%s", err, out.String())
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"replicate"}, "--tables is required"},
		{[]string{"replicate", "--tables", "a.b.c"}, `"a.b.c" is not database.table`},
		{[]string{"replicate", "--tables", "dev.dog", "--start-time", "yesterday"}, `--start-time "yesterday": want RFC 3339`},
	} {
		if err := run(c.args, &out, &errb); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v", c.args, err)
		}
	}
}
