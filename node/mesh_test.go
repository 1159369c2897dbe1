package node_test

import (
	"crypto/ed25519"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/clusterd/clusterd/auth"
	"github.com/clusterd/clusterd/node"
	"github.com/clusterd/clusterd/node/nodetest"
	"github.com/clusterd/clusterd/storage"
	"github.com/clusterd/clusterd/topology"
	"github.com/nats-io/nats.go"
	"go.uber.org/zap/zaptest/observer"
)

func route(host string, port int) storage.Route { return storage.Route{Host: host, Port: port} }

func clusterRoute(n *node.Node) storage.Route { return route("127.0.0.1", n.Servers.Ports().Cluster) }
func leafRoute(n *node.Node) storage.Route    { return route("127.0.0.1", n.Servers.Ports().HubLeaf) }

func routeJSON(r storage.Route) string { return fmt.Sprintf(`{"host":%q,"port":%d}`, r.Host, r.Port) }

func mustOp(t *testing.T, n *node.Node, op, body string) string {
	t.Helper()
	r := nodetest.Op(t, n, op, body)
	if r.Status != 200 {
		t.Fatalf("%s on %s: %d %s", op, n.Name(), r.Status, r.Body)
	}
	return string(r.Body)
}

// observed returns the routes n's servers are configured with now.
func observed(t *testing.T, n *node.Node) (hub, leaf []storage.Route) {
	t.Helper()
	hub, leaf, err := n.Servers.ObservedRoutes()
	if err != nil {
		t.Fatal(err)
	}
	return hub, leaf
}

func meshed(n *node.Node, peers ...*node.Node) bool {
	got := n.Servers.RoutedPeers()
	if len(got) != len(peers) {
		return false
	}
	for _, p := range peers {
		found := false
		for _, g := range got {
			found = found || g == p.Name()+"-hub"
		}
		if !found {
			return false
		}
	}
	return true
}

// leafLinked says whether a's leaf server is a leafnode of b's hub (besides
// each one's own link between its leaf and hub).
func leafLinked(a, b *node.Node) bool {
	return a.Servers.Leaf.NumLeafNodes() == 2 && b.Servers.Hub.NumLeafNodes() == 2
}

// flows proves a core NATS message published in clusterd's account on from's leaf reaches a
// subscriber on to's leaf: interest propagates asynchronously, so it
// publishes until one arrives.
func flows(t *testing.T, from, to *node.Node, subject string) {
	t.Helper()
	sub, err := nodetest.Internal(t, to).SubscribeSync(subject)
	if err != nil {
		t.Fatal(err)
	}
	pub := nodetest.Internal(t, from)
	payload := "hello from " + from.Name()
	nodetest.Eventually(t, 5*time.Second, fmt.Sprintf("%s from %s to reach %s", subject, from.Name(), to.Name()), func() bool {
		if err := pub.Publish(subject, []byte(payload)); err != nil {
			t.Fatal(err)
		}
		m, err := sub.NextMsg(20 * time.Millisecond)
		return err == nil && string(m.Data) == payload
	})
}

func TestRouteOperationsAreUpsertsAppliedLive(t *testing.T) {
	a := nodetest.StartNamed(t, "a")
	b := nodetest.StartNamed(t, "b")
	hubB, leafB := clusterRoute(b), leafRoute(b)

	// Ports given as numeric strings are stored and applied as numbers.
	got := mustOp(t, a, "cluster_set_routes", fmt.Sprintf(`{"server":"hub","routes":[{"host":"127.0.0.1","port":"%d"}]}`, hubB.Port))
	if want := `{"message":"cluster routes successfully set","set":[` + routeJSON(hubB) + `],"skipped":[]}`; got != want {
		t.Fatalf("set hub\n got: %s\nwant: %s", got, want)
	}
	nodetest.Eventually(t, 2*time.Second, "a and b meshed", func() bool { return meshed(a, b) && meshed(b, a) })

	got = mustOp(t, a, "cluster_set_routes", `{"server":"leaf","routes":[`+routeJSON(hubB)+`,`+routeJSON(leafB)+`]}`)
	if want := `{"message":"cluster routes successfully set","set":[` + routeJSON(leafB) + `],"skipped":[` + routeJSON(hubB) + `]}`; got != want {
		t.Fatalf("set leaf\n got: %s\nwant: %s", got, want)
	}
	nodetest.Eventually(t, 2*time.Second, "a's leaf linked to b's hub", func() bool { return leafLinked(a, b) })

	want := `{"hub":[` + routeJSON(hubB) + `],"leaf":[` + routeJSON(leafB) + `]}`
	if got := nodetest.Routes(t, a); got != want {
		t.Fatalf("get\n got: %s\nwant: %s", got, want)
	}
	if got := nodetest.HTTP(t, a, nodetest.SuperUser(t, a), `{"operation":"cluster_get_routes"}`); string(got.Body) != want {
		t.Fatalf("get over HTTP: %d %s", got.Status, got.Body)
	}
	hub, leaf := observed(t, a)
	if !topology.SameRoutes(hub, []storage.Route{hubB}) || !topology.SameRoutes(leaf, []storage.Route{leafB}) {
		t.Fatalf("servers run hub %v leaf %v", hub, leaf)
	}

	// Delete converts numeric strings too; unknown routes are skipped.
	got = mustOp(t, a, "cluster_delete_routes", fmt.Sprintf(`{"routes":[{"host":"127.0.0.1","port":"%d"},{"host":"127.0.0.1","port":1}]}`, leafB.Port))
	if want := `{"message":"cluster routes successfully deleted","deleted":[` + routeJSON(leafB) + `],"skipped":[{"host":"127.0.0.1","port":1}]}`; got != want {
		t.Fatalf("delete leaf\n got: %s\nwant: %s", got, want)
	}
	nodetest.Eventually(t, 2*time.Second, "leaf link down", func() bool {
		return a.Servers.Leaf.NumLeafNodes() == 1 && b.Servers.Hub.NumLeafNodes() == 1
	})
	if !meshed(a, b) {
		t.Fatal("deleting the leaf route took the hub route down")
	}
	got = mustOp(t, a, "cluster_delete_routes", `{"routes":[`+routeJSON(hubB)+`]}`)
	if want := `{"message":"cluster routes successfully deleted","deleted":[` + routeJSON(hubB) + `],"skipped":[]}`; got != want {
		t.Fatalf("delete hub\n got: %s\nwant: %s", got, want)
	}
	nodetest.Eventually(t, 3*time.Second, "hub route down", func() bool { return meshed(a) && meshed(b) })
	if got := nodetest.Routes(t, a); got != `{"hub":[],"leaf":[]}` {
		t.Fatalf("get after deletes: %s", got)
	}
}

func TestLeafRouteJoinsTheLeafToTheRemoteHub(t *testing.T) {
	a := nodetest.StartNamed(t, "a")
	b := nodetest.StartNamed(t, "b")
	mustOp(t, a, "cluster_set_routes", `{"server":"leaf","routes":[`+routeJSON(leafRoute(b))+`]}`)
	nodetest.Eventually(t, 2*time.Second, "a's leaf is a leafnode of b's hub", func() bool { return leafLinked(a, b) })
	if lz, err := a.Servers.Leaf.Leafz(nil); err != nil || len(lz.Leafs) != 2 {
		t.Fatalf("a's leafz: %v %+v", err, lz)
	}
	if meshed(a) != true || meshed(b) != true {
		t.Fatal("a leaf route must not route the hubs")
	}

	// Clusterd's traffic flows both ways through the link…
	flows(t, a, b, "app.orders.created")
	flows(t, b, a, "app.orders.shipped")

	// …but the transaction plane does not: subscribe to txn.> and to a
	// marker on b (in that order, on one connection, so the txn interest
	// would have propagated first), then publish a txn and the marker on a,
	// in clusterd's account (the one the link carries).
	bc := nodetest.Internal(t, b)
	txn, err := bc.SubscribeSync("txn.>")
	if err != nil {
		t.Fatal(err)
	}
	marker, err := bc.SubscribeSync("app.marker")
	if err != nil {
		t.Fatal(err)
	}
	ac := nodetest.Internal(t, a)
	nodetest.Eventually(t, 5*time.Second, "marker to reach b", func() bool {
		_ = ac.Publish("txn.data.orders.a", []byte("txn"))
		_ = ac.Publish("app.marker", nil)
		_, err := marker.NextMsg(20 * time.Millisecond)
		return err == nil
	})
	if m, err := txn.NextMsg(50 * time.Millisecond); err == nil {
		t.Fatalf("a transaction crossed the leaf route: %s %s", m.Subject, m.Data)
	}

	// Operations stay node-local: a's requests are answered by a, never b.
	tok := nodetest.SuperUser(t, a)
	want := `{"hub":[],"leaf":[` + routeJSON(leafRoute(b)) + `]}`
	for i := 0; i < 20; i++ {
		if r := nodetest.Request(t, ac, "ops.cluster.cluster_get_routes", tok, `{}`); string(r.Body) != want {
			t.Fatalf("request %d on a answered with %d %s", i, r.Status, r.Body)
		}
	}
}

func TestWorkerRepairsRoutesRemovedBehindItsBack(t *testing.T) {
	a := nodetest.StartNamed(t, "a")
	b := nodetest.StartNamed(t, "b")
	c := nodetest.StartNamed(t, "c")
	mustOp(t, a, "cluster_set_routes", `{"server":"hub","routes":[`+routeJSON(clusterRoute(b))+`]}`)
	mustOp(t, a, "cluster_set_routes", `{"server":"leaf","routes":[`+routeJSON(leafRoute(c))+`]}`)
	nodetest.Eventually(t, 2*time.Second, "a meshed with b and linked to c", func() bool { return meshed(a, b) && leafLinked(a, c) })
	before := a.Store.Commits()

	if err := a.Servers.ApplyHubRoutes(nil); err != nil {
		t.Fatal(err)
	}
	if err := a.Servers.ApplyLeafRoutes(nil); err != nil {
		t.Fatal(err)
	}
	if hub, leaf := observed(t, a); len(hub) != 0 || len(leaf) != 0 {
		t.Fatalf("drift was not introduced: hub %v leaf %v", hub, leaf)
	}
	nodetest.Eventually(t, 3*time.Second, "the leaf link to drop", func() bool { return c.Servers.Hub.NumLeafNodes() == 1 })

	nodetest.Eventually(t, 6*time.Second, "the worker to restore both routes", func() bool {
		hub, leaf := observed(t, a)
		return topology.SameRoutes(hub, []storage.Route{clusterRoute(b)}) && topology.SameRoutes(leaf, []storage.Route{leafRoute(c)})
	})
	nodetest.Eventually(t, 3*time.Second, "mesh and leaf link back", func() bool { return meshed(a, b) && leafLinked(a, c) })
	flows(t, a, c, "app.after.repair")
	if a.Store.Commits() != before {
		t.Fatal("repair changed the desired state")
	}
}

func TestRestartedNodeReappliesStoredRoutes(t *testing.T) {
	b := nodetest.StartNamed(t, "b")
	cfg := nodetest.Config(t, "a") // fixed rootPath, reused below
	a := nodetest.Start(t, cfg)
	mustOp(t, a, "cluster_set_routes", `{"server":"hub","routes":[`+routeJSON(clusterRoute(b))+`]}`)
	mustOp(t, a, "cluster_set_routes", `{"server":"leaf","routes":[`+routeJSON(leafRoute(b))+`]}`)
	nodetest.Eventually(t, 2*time.Second, "a meshed and linked to b", func() bool { return meshed(a, b) && leafLinked(a, b) })
	want := nodetest.Routes(t, a)
	oldToken := nodetest.SuperUser(t, a)

	if err := a.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	nodetest.Eventually(t, 3*time.Second, "b to see a go", func() bool { return meshed(b) && b.Servers.Hub.NumLeafNodes() == 1 })

	a2 := nodetest.Start(t, cfg)
	// No request: the stored routes come back by themselves.
	nodetest.Eventually(t, 3*time.Second, "the restarted a to re-form the mesh", func() bool { return meshed(a2, b) && meshed(b, a2) && leafLinked(a2, b) })
	flows(t, a2, b, "app.after.restart")
	if got := nodetest.Routes(t, a2); got != want {
		t.Fatalf("routes after restart\n got: %s\nwant: %s", got, want)
	}
	// The issuer key survives too: tokens minted before the restart still work.
	if r := nodetest.Request(t, nodetest.Connect(t, a2), "ops.cluster.cluster_get_routes", oldToken, `{}`); r.Status != 200 {
		t.Fatalf("token from before the restart: %d %s", r.Status, r.Body)
	}
}

func TestConfigRoutesSeedDesiredStateOnFirstStartOnly(t *testing.T) {
	b := nodetest.StartNamed(t, "b")
	cfg := nodetest.Config(t, "a")
	cfg.Clustering.HubServer.Cluster.Network.Routes = []node.RouteConfig{{Host: "127.0.0.1", Port: clusterRoute(b).Port}}
	cfg.Clustering.LeafServer.Network.Routes = []node.RouteConfig{{Host: "127.0.0.1", Port: leafRoute(b).Port}}
	a := nodetest.Start(t, cfg)
	want := `{"hub":[` + routeJSON(clusterRoute(b)) + `],"leaf":[` + routeJSON(leafRoute(b)) + `]}`
	if got := nodetest.Routes(t, a); got != want {
		t.Fatalf("seeded routes\n got: %s\nwant: %s", got, want)
	}
	nodetest.Eventually(t, 2*time.Second, "config routes applied", func() bool { return meshed(a, b) && leafLinked(a, b) })

	// The operations own the routes from now on: a deleted config route
	// stays deleted across a restart with the same config file.
	mustOp(t, a, "cluster_delete_routes", `{"routes":[`+routeJSON(clusterRoute(b))+`]}`)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	a2 := nodetest.Start(t, cfg)
	want = `{"hub":[],"leaf":[` + routeJSON(leafRoute(b)) + `]}`
	if got := nodetest.Routes(t, a2); got != want {
		t.Fatalf("routes after restart with the same config\n got: %s\nwant: %s", got, want)
	}
	nodetest.Eventually(t, 3*time.Second, "a2 ready", func() bool { ok, _ := a2.Ready(); return ok })
	hub, leaf := observed(t, a2)
	if len(hub) != 0 || !topology.SameRoutes(leaf, []storage.Route{leafRoute(b)}) {
		t.Fatalf("restarted node runs hub %v leaf %v", hub, leaf)
	}
}

func countLogs(logs *observer.ObservedLogs, substr string) int {
	n := 0
	for _, e := range logs.All() {
		if strings.Contains(e.Message, substr) {
			n++
		}
	}
	return n
}

func TestWrongClusterPasswordCannotJoinTheMesh(t *testing.T) {
	a, alogs := nodetest.StartLogged(t, nodetest.Config(t, "a"))
	cfg := nodetest.Config(t, "intruder")
	cfg.Clustering.Password = "not-the-cluster-password"
	x, xlogs := nodetest.StartLogged(t, cfg)
	good := nodetest.StartNamed(t, "good")

	mustOp(t, x, "cluster_set_routes", `{"server":"hub","routes":[`+routeJSON(clusterRoute(a))+`]}`)
	mustOp(t, x, "cluster_set_routes", `{"server":"leaf","routes":[`+routeJSON(leafRoute(a))+`]}`)
	mustOp(t, good, "cluster_set_routes", `{"server":"hub","routes":[`+routeJSON(clusterRoute(a))+`]}`)

	// The intruder tried, several times, and a refused it each time.
	nodetest.Eventually(t, 5*time.Second, "a to refuse the intruder's route and leafnode", func() bool {
		return countLogs(xlogs, "Route Error 'Authorization Violation'") >= 2 &&
			countLogs(xlogs, "Leafnode Error 'Authorization Violation'") >= 2 &&
			countLogs(alogs, "authentication error") >= 4
	})
	nodetest.Eventually(t, 2*time.Second, "the right password to join", func() bool { return meshed(a, good) })
	if !meshed(x) || a.Servers.Hub.NumLeafNodes() != 1 || x.Servers.Leaf.NumLeafNodes() != 1 {
		t.Fatalf("intruder joined: a routes %v, intruder routes %v, a's hub leafnodes %d",
			a.Servers.RoutedPeers(), x.Servers.RoutedPeers(), a.Servers.Hub.NumLeafNodes())
	}
	for _, e := range alogs.All() {
		if strings.Contains(e.Message, "not-the-cluster-password") || strings.Contains(e.Message, nodetest.Password) {
			t.Fatalf("a password reached the log: %s", e.Message)
		}
	}
}

func TestClientPortsRequireCredentials(t *testing.T) {
	cfg := nodetest.Config(t, "a")
	cfg.Clustering.LeafServer.Users = []node.LeafUser{{User: "orders-service", Password: "orders-secret"}}
	a, logs := nodetest.StartLogged(t, cfg)
	p := a.Servers.Ports()
	hubURL := fmt.Sprintf("nats://127.0.0.1:%d", p.HubClient)

	for _, url := range []string{a.LeafURL(), hubURL} {
		if nc, err := nodetest.ConnectNoAuth(url); err == nil {
			nc.Close()
			t.Fatalf("%s accepted a client without credentials", url)
		} else if !strings.Contains(err.Error(), "Authorization Violation") {
			t.Fatalf("%s: %v", url, err)
		}
		if nc, err := nats.Connect(url, nats.UserInfo(a.OperatorUser(), "guess"), nats.NoReconnect()); err == nil {
			nc.Close()
			t.Fatalf("%s accepted a wrong password", url)
		}
		// The cluster secret authenticates node links only, never a client.
		if nc, err := nats.Connect(url, nats.UserInfo(a.Config.Clustering.User, a.Password()), nats.NoReconnect()); err == nil {
			nc.Close()
			t.Fatalf("%s accepted the cluster user as a client", url)
		}
	}
	// Whoever tried the cluster user is told what to use instead, once.
	nodetest.Eventually(t, 5*time.Second, "the migration warning", func() bool {
		return countLogs(logs, "clustering.user and clustering.password authenticate node links only") == 1
	})

	// App users are clients of the leaf, not of the hub.
	for _, u := range [][2]string{{"orders-service", "orders-secret"}, {a.OperatorUser(), a.OperatorPassword()}} {
		if _, err := nats.Connect(hubURL, nats.UserInfo(u[0], u[1]), nats.NoReconnect()); err == nil {
			t.Fatalf("the hub accepted app user %s", u[0])
		}
		nc, err := nats.Connect(a.LeafURL(), nats.UserInfo(u[0], u[1]))
		if err != nil {
			t.Fatalf("app user %s refused: %v", u[0], err)
		}
		if r := nodetest.Request(t, nc, "ops.cluster.cluster_get_routes", nodetest.SuperUser(t, a), `{}`); r.Status != 200 {
			t.Fatalf("app user %s request: %d %s", u[0], r.Status, r.Body)
		}
		nc.Close()
	}
}

func TestThreeNodeMesh(t *testing.T) {
	a := nodetest.StartNamed(t, "a")
	b := nodetest.StartNamed(t, "b")
	c := nodetest.StartNamed(t, "c")
	// A star of routes through b becomes a full mesh by gossip.
	mustOp(t, a, "cluster_set_routes", `{"server":"hub","routes":[`+routeJSON(clusterRoute(b))+`]}`)
	mustOp(t, c, "cluster_set_routes", `{"server":"hub","routes":[`+routeJSON(clusterRoute(b))+`]}`)
	nodetest.Eventually(t, 3*time.Second, "full mesh", func() bool { return meshed(a, b, c) && meshed(b, a, c) && meshed(c, a, b) })

	flows(t, a, c, "app.a.to.c")
	flows(t, c, b, "app.c.to.b")

	// Any node is addressable from anywhere on ops.node.<name>.…, while
	// ops.cluster.… stays with the node the client is connected to.
	ac := nodetest.Connect(t, a)
	for _, target := range []*node.Node{a, b, c} {
		// Each test node trusts only its own issuer key.
		tok := nodetest.SuperUser(t, target)
		want := nodetest.Routes(t, target)
		r := nodetest.Request(t, ac, "ops.node."+target.Name()+".cluster.cluster_get_routes", tok, `{}`)
		if r.Status != 200 || string(r.Body) != want {
			t.Fatalf("ops.node.%s from a: %d %s, want %s", target.Name(), r.Status, r.Body, want)
		}
	}
	r := nodetest.Request(t, ac, "ops.cluster.cluster_get_routes", nodetest.SuperUser(t, a), `{}`)
	if want := `{"hub":[` + routeJSON(clusterRoute(b)) + `],"leaf":[]}`; string(r.Body) != want {
		t.Fatalf("ops.cluster on a: %s, want %s", r.Body, want)
	}
	// b's token is not a's: a node-addressed request still checks the target's trust.
	r = nodetest.Request(t, ac, "ops.node.c.cluster.cluster_get_routes", nodetest.SuperUser(t, b), `{}`)
	if r.Status != 401 || !strings.HasPrefix(r.Error(), "Unauthorized: token issuer "+auth.IssuerID(b.IssuerKey().Public().(ed25519.PublicKey))+" is not trusted (trusted: ") {
		t.Fatalf("c accepted b's token: %d %s", r.Status, r.Body)
	}
}
