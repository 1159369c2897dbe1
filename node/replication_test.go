package node_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/clusterd/clusterd/node"
	"github.com/clusterd/clusterd/node/nodetest"
	"github.com/nats-io/nats.go/jetstream"
)

// mesh starts n nodes whose hubs are routed to the first one.
func mesh(t *testing.T, names ...string) []*node.Node {
	t.Helper()
	var nodes []*node.Node
	for _, name := range names {
		nodes = append(nodes, nodetest.StartNamed(t, name))
	}
	for _, n := range nodes[1:] {
		r := nodetest.Op(t, n, "cluster_set_routes", map[string]any{"server": "hub", "routes": []any{nodetest.ClusterRoute(nodes[0])}})
		if r.Status != 200 {
			t.Fatalf("set routes: %s", r.Body)
		}
	}
	nodetest.Eventually(t, 5*time.Second, "full mesh", func() bool {
		for _, n := range nodes {
			if len(n.Servers.RoutedPeers()) != len(nodes)-1 {
				return false
			}
		}
		return true
	})
	return nodes
}

func publish(t *testing.T, n *node.Node, db, table string, count int, tag string) {
	t.Helper()
	js, err := jetstream.New(nodetest.Connect(t, n))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < count; i++ {
		subj := fmt.Sprintf("txn.%s.%s.%s", db, table, n.Name())
		if _, err := js.Publish(context.Background(), subj, []byte(fmt.Sprintf("%s-%d", tag, i))); err != nil {
			t.Fatalf("publish %s: %v", subj, err)
		}
	}
}

// received returns the payloads n's stream holds for subject, in order.
func received(t *testing.T, n *node.Node, subject string) []string {
	t.Helper()
	return streamPayloads(t, nodetest.Connect(t, n), subject)
}

var jsByNode sync.Map // *node.Node -> jetstream.JetStream

func jsFor(t *testing.T, n *node.Node) jetstream.JetStream {
	if js, ok := jsByNode.Load(n); ok {
		return js.(jetstream.JetStream)
	}
	js, err := jetstream.New(nodetest.Connect(t, n))
	if err != nil {
		t.Fatal(err)
	}
	jsByNode.Store(n, js)
	t.Cleanup(func() { jsByNode.Delete(n) })
	return js
}

// jsInternal is n's JetStream as clusterd itself sees it: for tests that
// change the transaction stream behind the node's back, which no app user
// can.
func jsInternal(t *testing.T, n *node.Node) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(nodetest.Internal(t, n))
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// count returns how many messages n's stream holds for subject.
func count(t *testing.T, n *node.Node, subject string) int {
	t.Helper()
	js := jsFor(t, n)
	s, err := js.Stream(context.Background(), "txn")
	if err != nil {
		return 0
	}
	info, err := s.Info(context.Background(), jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, c := range info.State.Subjects {
		total += int(c)
	}
	return total
}

func TestAddNodeReplicatesBothWaysExactlyOnce(t *testing.T) {
	nodes := mesh(t, "a", "b")
	a, b := nodes[0], nodes[1]
	for _, n := range nodes {
		if r := nodetest.Op(t, n, "create_table", map[string]any{"table": "dog"}); r.Status != 200 {
			t.Fatalf("create_table: %s", r.Body)
		}
	}
	r := nodetest.Op(t, a, "add_node", map[string]any{"node_name": "b", "subscriptions": []any{
		map[string]any{"database": "data", "table": "dog", "subscribe": true, "publish": true},
	}})
	if r.Status != 200 {
		t.Fatalf("add_node: %d %s", r.Status, r.Body)
	}
	if got := r.JSON(t)["message"]; got != "Successfully added 'b' to manifest" {
		t.Fatalf("message = %v", got)
	}
	publish(t, a, "data", "dog", 50, "a")
	publish(t, b, "data", "dog", 30, "b")
	nodetest.Eventually(t, 10*time.Second, "a's transactions on b", func() bool { return count(t, b, "txn.data.dog.a") == 50 })
	nodetest.Eventually(t, 10*time.Second, "b's transactions on a", func() bool { return count(t, a, "txn.data.dog.b") == 30 })
	got := received(t, b, "txn.data.dog.a")
	for i, p := range got {
		if p != fmt.Sprintf("a-%d", i) {
			t.Fatalf("message %d on b = %q, want a-%d (order or duplicates)", i, p, i)
		}
	}
	nodetest.Never(t, 200*time.Millisecond, "b received more than a's 50 transactions (duplicates)", func() bool { return count(t, b, "txn.data.dog.a") != 50 })
}

// A subscription starts at the time it was recorded even when the
// subscribing node has newer local writes than the peer's first transaction
// (nats-server would move a source's start time up to them).
func TestSubscriptionStartIgnoresNewerLocalWrites(t *testing.T) {
	nodes := mesh(t, "a", "b")
	a, b := nodes[0], nodes[1]
	for _, n := range nodes {
		nodetest.Op(t, n, "create_table", map[string]any{"table": "dog"})
	}
	publish(t, a, "data", "dog", 5, "before") // local history on a, not to be replicated
	r := nodetest.Op(t, a, "add_node", map[string]any{"node_name": "b", "subscriptions": []any{
		map[string]any{"table": "dog", "subscribe": true, "publish": false},
	}})
	if r.Status != 200 {
		t.Fatalf("add_node: %s", r.Body)
	}
	publish(t, b, "data", "dog", 20, "b")
	publish(t, a, "data", "dog", 20, "a") // a's newest write is now after b's
	nodetest.Eventually(t, 10*time.Second, "b's 20 transactions on a", func() bool { return count(t, a, "txn.data.dog.b") == 20 })
	// publish false: a's transactions must not reach b.
	nodetest.Never(t, 300*time.Millisecond, "b received a's transactions although a does not publish to b", func() bool { return count(t, b, "txn.data.dog.a") != 0 })
}
