package node_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/clusterd/clusterd/node"
	"github.com/clusterd/clusterd/node/nodetest"
	"github.com/clusterd/clusterd/storage"
	"github.com/nats-io/nats-server/v2/server"
)

// networkNode mirrors a cluster_network node with raw fields, so the test
// sees which keys are present.
type networkNode map[string]json.RawMessage

// settledMesh is mesh, then waits until every hub has learned the interest of
// every node's inter-node subscriptions: a route counts as up (RoutedPeers)
// before all of its pooled connections are, and until then a broadcast or a
// call right after meshing may miss a node.
func settledMesh(t *testing.T, names ...string) []*node.Node {
	t.Helper()
	nodes := mesh(t, names...)
	nodetest.Eventually(t, 10*time.Second, "broadcast interest of every node on every hub", func() bool {
		for _, n := range nodes {
			if n.Servers.HubInterest("_clusterd.all.network") < len(nodes) {
				return false
			}
		}
		return true
	})
	return nodes
}

func clusterNetwork(t *testing.T, n *node.Node, body string) []networkNode {
	t.Helper()
	r := nodetest.Op(t, n, "cluster_network", body)
	if r.Status != 200 {
		t.Fatalf("cluster_network %s on %s: %d %s", body, n.Name(), r.Status, r.Body)
	}
	var out struct {
		Nodes []networkNode `json:"nodes"`
	}
	if err := json.Unmarshal(r.Body, &out); err != nil {
		t.Fatalf("cluster_network reply: %v: %s", err, r.Body)
	}
	return out.Nodes
}

func (n networkNode) name(t *testing.T) string {
	var s string
	if err := json.Unmarshal(n["name"], &s); err != nil {
		t.Fatalf("node without a name: %v", n)
	}
	return s
}

func TestClusterNetworkOnThreeNodes(t *testing.T) {
	nodes := settledMesh(t, "a", "b", "c")
	a, b, c := nodes[0], nodes[1], nodes[2]
	// c also has a leaf route to b's hub: routes list hub then leaf routes.
	if r := nodetest.Op(t, c, "cluster_set_routes", map[string]any{"server": "leaf", "routes": []any{nodetest.LeafRoute(b)}}); r.Status != 200 {
		t.Fatalf("set leaf route: %s", r.Body)
	}
	aRoute := storage.Route{Host: "127.0.0.1", Port: a.Servers.Ports().Cluster}
	bLeaf := storage.Route{Host: "127.0.0.1", Port: b.Servers.Ports().HubLeaf}
	wantRoutes := map[string][]storage.Route{"a": {}, "b": {aRoute}, "c": {aRoute, bLeaf}}
	wantConnected := map[string][]string{"a": {"b", "c"}, "b": {"a", "c"}, "c": {"a", "b"}}

	for _, from := range nodes {
		start := time.Now()
		got := clusterNetwork(t, from, `{"timeout": 10000}`)
		// Every expected node answered: no waiting for the timeout.
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("cluster_network on %s took %v; it must answer once every node replied", from.Name(), took)
		}
		if len(got) != 3 {
			t.Fatalf("cluster_network on %s: %d nodes: %v", from.Name(), len(got), got)
		}
		for i, n := range got {
			name := n.name(t)
			if want := []string{"a", "b", "c"}[i]; name != want {
				t.Fatalf("node %d is %q, want %q (sorted by name)", i, name, want)
			}
			var rt float64
			if err := json.Unmarshal(n["response_time"], &rt); err != nil || rt <= 0 || rt > 10000 {
				t.Errorf("%s response_time = %s", name, n["response_time"])
			}
			var connected []string
			if err := json.Unmarshal(n["connected_nodes"], &connected); err != nil || !equalStrings(connected, wantConnected[name]) {
				t.Errorf("%s connected_nodes = %s, want %v", name, n["connected_nodes"], wantConnected[name])
			}
			var routes []storage.Route
			if err := json.Unmarshal(n["routes"], &routes); err != nil || len(routes) != len(wantRoutes[name]) {
				t.Errorf("%s routes = %s, want %v", name, n["routes"], wantRoutes[name])
				continue
			}
			for j := range routes {
				if routes[j] != wantRoutes[name][j] {
					t.Errorf("%s routes = %v, want %v", name, routes, wantRoutes[name])
				}
			}
		}
	}

	for _, c := range []struct {
		body            string
		connected, rout bool
	}{
		{`{}`, true, true},
		{`{"connected_nodes": false}`, false, true},
		{`{"routes": false}`, true, false},
		{`{"connected_nodes": "false", "routes": "false"}`, false, false},
		{`{"connected_nodes": true, "routes": true, "timeout": "500"}`, true, true},
	} {
		got := clusterNetwork(t, a, c.body)
		if len(got) != 3 {
			t.Fatalf("%s: %d nodes", c.body, len(got))
		}
		for _, n := range got {
			if _, ok := n["connected_nodes"]; ok != c.connected {
				t.Errorf("%s: %s has connected_nodes: %v", c.body, n.name(t), ok)
			}
			if _, ok := n["routes"]; ok != c.rout {
				t.Errorf("%s: %s has routes: %v", c.body, n.name(t), ok)
			}
			if _, ok := n["response_time"]; !ok {
				t.Errorf("%s: %s has no response_time", c.body, n.name(t))
			}
		}
	}
}

func TestClusterNetworkAloneAndDisabled(t *testing.T) {
	solo := nodetest.StartNamed(t, "solo")
	got := clusterNetwork(t, solo, `{}`)
	if len(got) != 1 || got[0].name(t) != "solo" || string(got[0]["connected_nodes"]) != "[]" || string(got[0]["routes"]) != "[]" {
		t.Fatalf("cluster_network alone = %v", got)
	}

	cfg := nodetest.Config(t, "off")
	cfg.Clustering.Enabled = false
	off := nodetest.Start(t, cfg)
	r := nodetest.Op(t, off, "cluster_network", `{"timeout": 0}`)
	if r.Status != 400 || r.Error() != "Clustering must be enabled to perform this operation." {
		t.Fatalf("cluster_network with clustering disabled = %d %s", r.Status, r.Body)
	}
}

// startGhostHub starts a bare nats-server routed into n's mesh as the hub of
// a node called name: a hub the mesh routes to, with no clusterd behind it.
func startGhostHub(t *testing.T, n *node.Node, name string) *server.Server {
	t.Helper()
	u, err := url.Parse(fmt.Sprintf("nats-route://%s:%s@127.0.0.1:%d", n.Config.Clustering.User, n.Password(), n.Servers.Ports().Cluster))
	if err != nil {
		t.Fatal(err)
	}
	s, err := server.NewServer(&server.Options{
		ServerName: name + "-hub", Host: "127.0.0.1", Port: server.RANDOM_PORT, NoSigs: true, NoLog: true,
		Cluster: server.ClusterOpts{Name: n.Config.Clustering.HubServer.Cluster.Name, Host: "127.0.0.1", Port: server.RANDOM_PORT,
			Username: n.Config.Clustering.User, Password: n.Password()},
		Routes: []*url.URL{u},
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	if !s.ReadyForConnections(5 * time.Second) {
		t.Fatal("ghost hub not ready")
	}
	return s
}

// A node the hub routes to but that does not answer makes cluster_network
// wait for the timeout, and the reply holds the nodes that did answer.
func TestClusterNetworkWaitsAtMostTheTimeout(t *testing.T) {
	nodes := settledMesh(t, "a", "b")
	a := nodes[0]
	startGhostHub(t, a, "ghost")
	nodetest.Eventually(t, 5*time.Second, "ghost hub routed", func() bool { return len(a.Servers.RoutedNodes()) == 2 })
	start := time.Now()
	got := clusterNetwork(t, a, `{"timeout": 1500}`)
	took := time.Since(start)
	if took < 1500*time.Millisecond || took > 3*time.Second {
		t.Errorf("cluster_network took %v with timeout 1.5s and a silent node", took)
	}
	if len(got) != 2 || got[0].name(t) != "a" || got[1].name(t) != "b" {
		t.Fatalf("nodes = %v, want a and b", got)
	}
	var connected []string
	_ = json.Unmarshal(got[0]["connected_nodes"], &connected)
	if !equalStrings(connected, []string{"b", "ghost"}) {
		t.Errorf("a connected_nodes = %v, want [b ghost]", connected)
	}
}
