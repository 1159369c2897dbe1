package node_test

import (
	"strings"
	"testing"
	"time"

	"github.com/clusterd/clusterd/events"
	"github.com/clusterd/clusterd/node/nodetest"
	"github.com/clusterd/clusterd/storage"
)

// A name stored before the naming rule (one nats-server refuses as a subject
// token) is a fault on its own subscription: the other peers still
// replicate, and a later valid add_node works.
func TestBadStoredNameDoesNotStopReplication(t *testing.T) {
	nodes := mesh(t, "n1", "n2", "n3")
	n1, n3 := nodes[0], nodes[2]
	for _, n := range nodes {
		if r := nodetest.Op(t, n, "create_table", map[string]any{"table": "t3"}); r.Status != 200 {
			t.Fatalf("create_table: %s", r.Body)
		}
	}
	bad := storage.TableKey{Database: "data", Table: "bad\fname"}
	if _, err := n1.Store.PutTables([]storage.Table{{TableKey: bad, Created: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	if err := n1.Store.UpdateNode("n2", func(n *storage.Node, _ bool) (bool, error) {
		n.Added = time.Now().UTC()
		n.Subscriptions = []storage.Subscription{{Database: bad.Database, Table: bad.Table, Subscribe: true, Publish: true}}
		return true, nil
	}); err != nil {
		t.Fatal(err)
	}
	n1.Bus.Publish(events.NodesChanged)

	r := nodetest.Op(t, n1, "add_node", map[string]any{"node_name": "n3", "subscriptions": []any{
		map[string]any{"table": "t3", "subscribe": true, "publish": true},
	}})
	if r.Status != 200 {
		t.Fatalf("add_node n3: %d %s", r.Status, r.Body)
	}
	publish(t, n3, "data", "t3", 5, "n3")
	nodetest.Eventually(t, 20*time.Second, "n3's transactions on n1", func() bool { return count(t, n1, "txn.data.t3.n3") == 5 })

	// cluster_status: the bad subscription says why, n3's is converged.
	var badErr string
	nodetest.Eventually(t, 20*time.Second, "n3 converged in cluster_status", func() bool {
		st := nodetest.Op(t, n1, "cluster_status", map[string]any{}).JSON(t)
		ok := false
		for _, c := range st["connections"].([]any) {
			c := c.(map[string]any)
			for _, s := range c["subscriptions"].([]any) {
				s := s.(map[string]any)
				switch {
				case c["node_name"] == "n3" && s["table"] == "t3":
					ok = s["converged"] == true
				case c["node_name"] == "n2" && s["table"] == bad.Table:
					if s["converged"] != false {
						t.Fatalf("bad name reported converged: %v", s)
					}
					badErr, _ = s["last_error"].(string)
				}
			}
		}
		return ok
	})
	if !strings.Contains(badErr, "not replicated") || !strings.Contains(badErr, "must not contain whitespace (found U+000C)") {
		t.Fatalf("bad name's last_error = %q", badErr)
	}
	d := nodetest.Op(t, n1, "describe_all", map[string]any{}).JSON(t)
	if e, _ := d["data"].(map[string]any)[bad.Table].(map[string]any)["error"].(string); !strings.Contains(e, "not replicated") {
		t.Fatalf("describe_all does not report the bad name: %v", d["data"])
	}
}

// A name stored before the rule is named at start, once, at warn; the node
// starts and serves.
func TestBadStoredNameIsReportedAtStart(t *testing.T) {
	cfg := nodetest.Config(t, "s1")
	n, _ := nodetest.StartLogged(t, cfg)
	if err := n.Store.UpdateNode("p\u00a0eer", func(nd *storage.Node, _ bool) (bool, error) {
		nd.Added = time.Now().UTC()
		nd.Subscriptions = []storage.Subscription{{Database: "data", Table: "dog", Subscribe: true, Publish: true}}
		return true, nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	n2, logs := nodetest.StartLogged(t, cfg)
	found := logs.FilterMessage("stored name breaks the naming rule; it is not replicated").All()
	if len(found) != 1 || !strings.Contains(found[0].ContextMap()["problem"].(string), "must not contain whitespace (found U+00A0)") {
		t.Fatalf("start did not name the stored name once: %v", found)
	}
	if r := nodetest.Op(t, n2, "cluster_get_routes", map[string]any{}); r.Status != 200 {
		t.Fatalf("node does not serve: %s", r.Body)
	}
	// remove_node takes any stored name, so it can be cleaned up.
	if r := nodetest.Op(t, n2, "remove_node", map[string]any{"node_name": "p\u00a0eer"}); r.Status != 200 {
		t.Fatalf("remove_node of the stored name: %d %s", r.Status, r.Body)
	}
}
