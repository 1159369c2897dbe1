package node_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/clusterd/clusterd/node"
	"github.com/clusterd/clusterd/node/nodetest"
	"github.com/nats-io/nats.go/jetstream"
)

// writer publishes uniquely numbered transactions to a node until stopped and
// reports how many were acknowledged (retrying until each is, with a message
// id so a retry lands once).
func writer(t *testing.T, n *node.Node, table string) (stop func() int) {
	js := jsFor(t, n)
	done := make(chan struct{})
	result := make(chan int, 1)
	go func() {
		i := 0
		defer func() { result <- i }()
		for {
			select {
			case <-done:
				return
			default:
			}
			subj := fmt.Sprintf("txn.data.%s.%s", table, n.Name())
			for {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				_, err := js.Publish(ctx, subj, []byte(fmt.Sprint(i)), jetstream.WithMsgID(fmt.Sprintf("%s-%d", n.Name(), i)))
				cancel()
				if err == nil {
					break
				}
				select {
				case <-done:
					return
				case <-time.After(10 * time.Millisecond):
				}
			}
			i++
			time.Sleep(2 * time.Millisecond)
		}
	}()
	return func() int { close(done); return <-result }
}

// checkReceived asserts node n holds exactly 0..want-1 of subject, in order.
func checkReceived(t *testing.T, n *node.Node, subject string, want int) {
	t.Helper()
	nodetest.Eventually(t, 30*time.Second, fmt.Sprintf("%d on %s", want, n.Name()), func() bool { return count(t, n, subject) >= want })
	checkHistory(t, n.Name()+" "+subject, received(t, n, subject), want)
}

// TestFaultRouteFlapping cuts and heals the only route between two nodes every
// 300 ms while both write; afterwards each holds the other's writes exactly
// once, in order.
func TestFaultRouteFlapping(t *testing.T) {
	a, b, proxy := proxiedPair(t)
	stopA, stopB := writer(t, a, "dog"), writer(t, b, "dog")
	for i := 0; i < 12; i++ {
		proxy.Cut()
		time.Sleep(150 * time.Millisecond) // the fault's length is the subject
		proxy.Heal()
		time.Sleep(150 * time.Millisecond) // so is the healed spell's
	}
	wroteA, wroteB := stopA(), stopB()
	t.Logf("a wrote %d, b wrote %d while the route flapped", wroteA, wroteB)
	checkReceived(t, b, "txn.data.dog.a", wroteA)
	checkReceived(t, a, "txn.data.dog.b", wroteB)
}

// TestFaultRestartAllNodesAtOnce closes all three nodes together and starts
// them again: desired state and replication come back without any request,
// and nothing written before or after is lost or doubled.
func TestFaultRestartAllNodesAtOnce(t *testing.T) {
	var cfgs []node.Config
	for i, name := range []string{"a", "b", "c"} {
		cfg := nodetest.FixedPorts(t, nodetest.Config(t, name))
		if i > 0 {
			cfg.Clustering.HubServer.Cluster.Network.Routes = []node.RouteConfig{{Host: "127.0.0.1", Port: cfgs[0].Clustering.HubServer.Cluster.Network.Port}}
		}
		cfgs = append(cfgs, cfg)
	}
	startAll := func() []*node.Node {
		nodes := make([]*node.Node, len(cfgs))
		var wg sync.WaitGroup
		for i := range cfgs {
			wg.Add(1)
			go func(i int) { defer wg.Done(); nodes[i] = nodetest.Start(t, cfgs[i]) }(i)
		}
		wg.Wait()
		nodetest.Eventually(t, 10*time.Second, "mesh", func() bool {
			for _, n := range nodes {
				if len(n.Servers.RoutedPeers()) != 2 {
					return false
				}
			}
			return true
		})
		return nodes
	}
	nodes := startAll()
	for _, n := range nodes {
		op(t, n, "create_table", map[string]any{"table": "dog"}, 200)
	}
	op(t, nodes[0], "add_node", map[string]any{"node_name": "b", "subscriptions": []any{sub("dog", true, true)}}, 200)
	op(t, nodes[0], "add_node", map[string]any{"node_name": "c", "subscriptions": []any{sub("dog", true, true)}}, 200)
	publish(t, nodes[1], "data", "dog", 10, "b")
	publish(t, nodes[2], "data", "dog", 10, "c")
	nodetest.Eventually(t, 10*time.Second, "before restart", func() bool {
		return count(t, nodes[0], "txn.data.dog.b") == 10 && count(t, nodes[0], "txn.data.dog.c") == 10
	})
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Add(1)
		go func(n *node.Node) { defer wg.Done(); _ = n.Close() }(n)
	}
	wg.Wait()
	nodes = startAll()
	for i, n := range nodes[1:] {
		js := jsFor(t, n)
		for j := 10; j < 20; j++ {
			if _, err := js.Publish(context.Background(), "txn.data.dog."+n.Name(), []byte(fmt.Sprintf("%s-%d", n.Name(), j))); err != nil {
				t.Fatalf("node %d publish: %v", i, err)
			}
		}
	}
	for _, peer := range []string{"b", "c"} {
		subj := "txn.data.dog." + peer
		nodetest.Eventually(t, 15*time.Second, subj+" after restart", func() bool { return count(t, nodes[0], subj) >= 20 })
		got := received(t, nodes[0], subj)
		if len(got) != 20 {
			t.Fatalf("%s: a holds %d, want 20", subj, len(got))
		}
		for j, p := range got {
			if p != fmt.Sprintf("%s-%d", peer, j) {
				t.Fatalf("%s: position %d holds %q", subj, j, p)
			}
		}
	}
}

// TestFaultConflictingOperators sends add/update/remove for the same peer
// from two clients at once; afterwards the pair agrees and the final state is
// one of the requests.
func TestFaultConflictingOperators(t *testing.T) {
	nodes := mesh(t, "a", "b")
	a, b := nodes[0], nodes[1]
	for _, n := range nodes {
		op(t, n, "create_table", map[string]any{"table": "dog"}, 200)
	}
	requests := []struct {
		op   string
		body map[string]any
	}{
		{"add_node", map[string]any{"node_name": "b", "subscriptions": []any{sub("dog", true, true)}}},
		{"update_node", map[string]any{"node_name": "b", "subscriptions": []any{sub("dog", true, false)}}},
		{"update_node", map[string]any{"node_name": "b", "subscriptions": []any{sub("dog", false, true)}}},
		{"remove_node", map[string]any{"node_name": "b"}},
	}
	for round := 0; round < 5; round++ {
		var wg sync.WaitGroup
		for _, r := range requests {
			wg.Add(1)
			go func(op string, body map[string]any) {
				defer wg.Done()
				nodetest.Op(t, a, op, body)
			}(r.op, r.body)
		}
		wg.Wait()
		// Both sides agree: no record on either, or mirror images (the
		// peer answers once its write is queued, so its record may show a
		// moment after the replies).
		waitMirrored(t, a, b, round)
	}
}

// proxiedPair starts nodes a and b whose only hub route goes through a proxy
// the test controls, with table dog replicated both ways.
func proxiedPair(t *testing.T) (a, b *node.Node, proxy *nodetest.Proxy) {
	t.Helper()
	return proxiedPairWith(t, func(*node.Config) {})
}

// proxiedPairWith is proxiedPair with both nodes' configs changed by edit.
func proxiedPairWith(t *testing.T, edit func(*node.Config)) (a, b *node.Node, proxy *nodetest.Proxy) {
	t.Helper()
	cfgA, cfgB := nodetest.Config(t, "a"), nodetest.Config(t, "b")
	edit(&cfgA)
	edit(&cfgB)
	a, b = nodetest.Start(t, cfgA), nodetest.Start(t, cfgB)
	proxy = nodetest.NewProxy(t, fmt.Sprintf("127.0.0.1:%d", a.Servers.Ports().Cluster))
	op(t, b, "cluster_set_routes", map[string]any{"server": "hub", "routes": []any{map[string]any{"host": "127.0.0.1", "port": proxy.Port()}}}, 200)
	nodetest.Eventually(t, 5*time.Second, "mesh", func() bool { return len(a.Servers.RoutedPeers()) == 1 })
	for _, n := range []*node.Node{a, b} {
		op(t, n, "create_table", map[string]any{"table": "dog"}, 200)
	}
	nodetest.Eventually(t, 5*time.Second, "add_node", func() bool {
		return nodetest.Op(t, a, "add_node", map[string]any{"node_name": "b", "subscriptions": []any{sub("dog", true, true)}}).Status == 200
	})
	return a, b, proxy
}

// TestFaultPartitionLongerThanDuplicateWindow cuts the only route between
// two nodes for three times their transaction streams' duplicate window
// (set to 1 s) while both write with message ids; after the heal each holds
// the other's writes exactly once, in order: catching up resumes by stream
// sequence and never relies on the duplicate window.
func TestFaultPartitionLongerThanDuplicateWindow(t *testing.T) {
	const window = time.Second
	a, b, proxy := proxiedPairWith(t, func(c *node.Config) { c.Clustering.LeafServer.Streams.DuplicateWindow = window })
	for _, n := range []*node.Node{a, b} {
		if got := txnConfig(t, n).Duplicates; got != window {
			t.Fatalf("%s's stream has a duplicate window of %v, want %v", n.Name(), got, window)
		}
	}
	stopA, stopB := writer(t, a, "dog"), writer(t, b, "dog")
	nodetest.Eventually(t, 10*time.Second, "replication flowing", func() bool {
		return count(t, b, "txn.data.dog.a") > 0 && count(t, a, "txn.data.dog.b") > 0
	})
	proxy.Cut()
	nodetest.Eventually(t, 10*time.Second, "partition", func() bool {
		return len(a.Servers.RoutedPeers()) == 0 && len(b.Servers.RoutedPeers()) == 0
	})
	partitioned := time.Now()
	time.Sleep(500 * time.Millisecond) // what was already past the proxy lands
	duringA, duringB := count(t, b, "txn.data.dog.a"), count(t, a, "txn.data.dog.b")
	time.Sleep(time.Until(partitioned.Add(3 * window))) // the partition outlasting the duplicate window is the subject
	if got := count(t, b, "txn.data.dog.a"); got != duringA {
		t.Fatalf("b received %d of a's transactions during the partition", got-duringA)
	}
	if got := count(t, a, "txn.data.dog.b"); got != duringB {
		t.Fatalf("a received %d of b's transactions during the partition", got-duringB)
	}
	proxy.Heal()
	cut := time.Since(partitioned)
	// Keep writing a little after the heal, while the sources catch up.
	nodetest.Eventually(t, 15*time.Second, "replication resumed", func() bool {
		return count(t, b, "txn.data.dog.a") > duringA && count(t, a, "txn.data.dog.b") > duringB
	})
	wroteA, wroteB := stopA(), stopB()
	t.Logf("a wrote %d, b wrote %d; partitioned for %v with a %v duplicate window (b held %d of a's and a %d of b's during it)",
		wroteA, wroteB, cut.Round(time.Millisecond), window, duringA, duringB)
	checkReceived(t, b, "txn.data.dog.a", wroteA)
	checkReceived(t, a, "txn.data.dog.b", wroteB)
}

// peerStatus is the status cluster_status on n reports for peer ("" when
// it lists no such connection), and how long the reply took.
func peerStatus(t *testing.T, n *node.Node, peer string) (string, time.Duration) {
	t.Helper()
	start := time.Now()
	r := nodetest.Op(t, n, "cluster_status", "{}")
	took := time.Since(start)
	if r.Status != 200 {
		t.Fatalf("cluster_status on %s: %d %s", n.Name(), r.Status, r.Body)
	}
	conns, _ := r.JSON(t)["connections"].([]any)
	for _, c := range conns {
		if m, _ := c.(map[string]any); m["node_name"] == peer {
			s, _ := m["status"].(string)
			return s, took
		}
	}
	return "", took
}

// TestFaultRouteDelayed slows the only route between two nodes to 75 ms each
// way while both write: replication keeps flowing over the slow link (no
// heal needed), and each holds the other's writes exactly once, in order.
func TestFaultRouteDelayed(t *testing.T) {
	a, b, proxy := proxiedPair(t)
	const d = 75 * time.Millisecond
	proxy.Delay(d)
	stopA, stopB := writer(t, a, "dog"), writer(t, b, "dog")
	// Replication flows both ways over the slow route while the writers go on.
	nodetest.Eventually(t, 30*time.Second, fmt.Sprintf("50 transactions each way over a route delayed %v each way", d), func() bool {
		return count(t, b, "txn.data.dog.a") >= 50 && count(t, a, "txn.data.dog.b") >= 50
	})
	wroteA, wroteB := stopA(), stopB()
	t.Logf("a wrote %d, b wrote %d over a route delayed %v each way", wroteA, wroteB, d)
	checkReceived(t, b, "txn.data.dog.a", wroteA)
	checkReceived(t, a, "txn.data.dog.b", wroteB)
	if s, took := peerStatus(t, a, "b"); s != "open" {
		t.Fatalf("cluster_status on a reports b %q over the delayed route (took %v), want open", s, took)
	}
}

// TestFaultRouteBlackholed silently drops everything on the only route
// between two nodes for 4 s while both write. NATS pings a route every 30 s
// and gives up after two unanswered pings, so neither hub notices: the route
// stays up, writes are still acknowledged locally, and cluster_status still
// answers in time. When the blackhole ends (the proxy closes the connections
// that lost bytes and the hubs reconnect), each node holds the other's
// writes exactly once, in order.
func TestFaultRouteBlackholed(t *testing.T) {
	a, b, proxy := proxiedPair(t)
	stopA, stopB := writer(t, a, "dog"), writer(t, b, "dog")
	nodetest.Eventually(t, 10*time.Second, "replication flowing", func() bool { return count(t, b, "txn.data.dog.a") > 0 })
	proxy.Blackhole()
	blackholed := time.Now()
	before := count(t, b, "txn.data.dog.a")
	time.Sleep(1500 * time.Millisecond) // into the blackhole: how a silent fault looks while it lasts is the subject
	if got := a.Servers.RoutedPeers(); len(got) != 1 {
		t.Fatalf("a's routed peers during the blackhole: %v, want b's hub still listed (the fault is silent)", got)
	}
	s, took := peerStatus(t, a, "b")
	t.Logf("during the blackhole cluster_status on a reports b %q after %v", s, took)
	if took > 5*time.Second {
		t.Fatalf("cluster_status took %v during the blackhole, want within the CLI's 5 s", took)
	}
	if s == "open" {
		t.Fatalf("cluster_status on a reports b open while nothing gets through")
	}
	if after := count(t, b, "txn.data.dog.a"); after > before+100 {
		t.Fatalf("b received %d of a's transactions through the blackhole", after-before)
	}
	time.Sleep(time.Until(blackholed.Add(4 * time.Second))) // the fault's length is the subject
	proxy.Heal()
	wroteA, wroteB := stopA(), stopB()
	t.Logf("a wrote %d, b wrote %d; route blackholed for %v", wroteA, wroteB, time.Since(blackholed).Round(time.Millisecond))
	checkReceived(t, b, "txn.data.dog.a", wroteA)
	checkReceived(t, a, "txn.data.dog.b", wroteB)
}

// TestFaultLeafLinkOnly connects two nodes through nothing but a leaf route
// (a's leaf server is a leafnode of b's hub, through a proxy; the hubs have
// no route). That one link carries the inter-node operations, JetStream API
// calls across domains ($JS.<node>.API) and the sources' deliveries, both
// ways. While both nodes write, the link is delayed, then cut, then
// blackholed; each fault is healed, and each node ends holding the other's
// writes exactly once, in order.
func TestFaultLeafLinkOnly(t *testing.T) {
	a := nodetest.StartNamed(t, "a")
	b := nodetest.StartNamed(t, "b")
	proxy := nodetest.NewProxy(t, fmt.Sprintf("127.0.0.1:%d", b.Servers.Ports().HubLeaf))
	op(t, a, "cluster_set_routes", map[string]any{"server": "leaf", "routes": []any{map[string]any{"host": "127.0.0.1", "port": proxy.Port()}}}, 200)
	linked := func() bool { return a.Servers.Leaf.NumLeafNodes() == 2 } // its own hub and b's
	nodetest.Eventually(t, 10*time.Second, "leaf link up", linked)
	if len(a.Servers.RoutedPeers()) != 0 || len(b.Servers.RoutedPeers()) != 0 {
		t.Fatal("the hubs are routed: the leaf link is not the only path")
	}
	for _, n := range []*node.Node{a, b} {
		op(t, n, "create_table", map[string]any{"table": "dog"}, 200)
	}
	op(t, a, "add_node", map[string]any{"node_name": "b", "subscriptions": []any{sub("dog", true, true)}}, 200)
	stopA, stopB := writer(t, a, "dog"), writer(t, b, "dog")
	nodetest.Eventually(t, 10*time.Second, "replication flowing", func() bool {
		return count(t, b, "txn.data.dog.a") > 0 && count(t, a, "txn.data.dog.b") > 0
	})

	// Delayed 75 ms each way: replication keeps flowing.
	proxy.Delay(75 * time.Millisecond)
	before := count(t, b, "txn.data.dog.a")
	nodetest.Eventually(t, 10*time.Second, "replication over the delayed link", func() bool { return count(t, b, "txn.data.dog.a") > before+50 })
	proxy.Heal()

	// Cut for 2.5 s: nothing crosses, and b's cluster_status says so.
	proxy.Cut()
	cutAt := time.Now()
	nodetest.Eventually(t, 10*time.Second, "leaf link down", func() bool { return !linked() })
	if s, _ := peerStatus(t, b, "a"); s == "open" {
		t.Fatal("cluster_status on b reports a open while the only link is cut")
	}
	time.Sleep(500 * time.Millisecond) // what was already past the proxy lands
	during := count(t, b, "txn.data.dog.a")
	time.Sleep(time.Until(cutAt.Add(2500 * time.Millisecond))) // the cut's length is the subject
	if got := count(t, b, "txn.data.dog.a"); got != during {
		t.Fatalf("b received %d of a's transactions while the only link was cut", got-during)
	}
	proxy.Heal()
	cut := time.Since(cutAt)
	nodetest.Eventually(t, 10*time.Second, "leaf link back", linked)

	// Blackholed for 2 s (a leafnode is pinged every 2 min: unnoticed).
	proxy.Blackhole()
	time.Sleep(2 * time.Second) // the fault's length is the subject
	proxy.Heal()

	wroteA, wroteB := stopA(), stopB()
	t.Logf("a wrote %d, b wrote %d through a leaf link delayed 75 ms, cut for %v, then blackholed for 2 s",
		wroteA, wroteB, cut.Round(time.Millisecond))
	checkReceived(t, b, "txn.data.dog.a", wroteA)
	checkReceived(t, a, "txn.data.dog.b", wroteB)
}

// leafsOn returns the server names of the leafnodes connected to n's hub.
func leafsOn(t *testing.T, n *node.Node) []string {
	t.Helper()
	lz, err := n.Servers.Hub.Leafz(nil)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range lz.Leafs {
		out = append(out, l.Name)
	}
	slices.Sort(out)
	return out
}

// TestFaultOwnLeafLinkDropReattachesHome drops the connection between a
// node's leaf server and its own hub: the leaf server reconnects to its own
// hub, not to another node's. (nats-server hands leafnodes the leafnode
// URLs of every hub in the mesh and tries a learned one first: before hubs
// stopped advertising them, a's leaf server moved to b's hub, so a's links
// to the rest of the cluster depended on b, through a connection without
// the deny rules of a leaf route.)
func TestFaultOwnLeafLinkDropReattachesHome(t *testing.T) {
	nodes := mesh(t, "a", "b")
	a, b := nodes[0], nodes[1]
	lz, err := a.Servers.Hub.Leafz(nil)
	if err != nil || len(lz.Leafs) != 1 || lz.Leafs[0].Name != "a" {
		t.Fatalf("a's hub leafnodes before: %+v %v", lz, err)
	}
	for round := 0; round < 3; round++ {
		old := lz.Leafs[0].ID
		if err := a.Servers.Hub.DisconnectClientByID(old); err != nil {
			t.Fatal(err)
		}
		nodetest.Eventually(t, 10*time.Second, "a's leaf server reconnected", func() bool {
			lz, err = a.Servers.Hub.Leafz(nil)
			return err == nil && len(lz.Leafs) == 1 && lz.Leafs[0].ID != old || slices.Contains(leafsOn(t, b), "a")
		})
		if got := leafsOn(t, b); !slices.Equal(got, []string{"b"}) {
			t.Fatalf("round %d: b's hub has leafnodes %v: a's leaf server re-attached to b's hub", round, got)
		}
		if got := leafsOn(t, a); !slices.Equal(got, []string{"a"}) {
			t.Fatalf("round %d: a's hub has leafnodes %v, want a's own", round, got)
		}
	}
	// And the node still works end to end.
	op(t, a, "create_table", map[string]any{"table": "dog"}, 200)
	op(t, b, "create_table", map[string]any{"table": "dog"}, 200)
	op(t, a, "add_node", map[string]any{"node_name": "b", "subscriptions": []any{sub("dog", true, true)}}, 200)
	publish(t, a, "data", "dog", 10, "a")
	nodetest.Eventually(t, 10*time.Second, "replication after the drops", func() bool { return count(t, b, "txn.data.dog.a") == 10 })
}
