package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/clusterd/clusterd/events"
	"github.com/clusterd/clusterd/handlers"
	"github.com/clusterd/clusterd/node"
	"github.com/clusterd/clusterd/node/nodetest"
	"github.com/clusterd/clusterd/storage"
	"github.com/nats-io/nats.go"
)

// clusterStatus runs cluster_status on n and decodes the reply.
func clusterStatus(t *testing.T, n *node.Node) handlers.ClusterStatusReply {
	t.Helper()
	r := nodetest.Op(t, n, "cluster_status", "{}")
	if r.Status != 200 {
		t.Fatalf("cluster_status on %s: %d %s", n.Name(), r.Status, r.Body)
	}
	var out handlers.ClusterStatusReply
	if err := json.Unmarshal(r.Body, &out); err != nil {
		t.Fatalf("cluster_status reply: %v: %s", err, r.Body)
	}
	return out
}

func connection(t *testing.T, st handlers.ClusterStatusReply, name string) handlers.ConnectionStatus {
	t.Helper()
	for _, c := range st.Connections {
		if c.NodeName == name {
			return c
		}
	}
	t.Fatalf("no connection %q in %+v", name, st.Connections)
	return handlers.ConnectionStatus{}
}

// registerFake records a peer that exists only as a subscriber on its
// inter-node subject, made through n's internal connection (the only kind
// allowed on _clusterd.>): answer is called with each status request and
// returns the reply body, or nil to stay silent.
func registerFake(t *testing.T, n *node.Node, name string, answer func(m *nats.Msg) []byte) {
	t.Helper()
	err := n.Store.Update(func(tx *storage.Tx) error {
		return tx.PutNode(storage.Node{Name: name, Added: time.Now(), Subscriptions: []storage.Subscription{
			{Database: "data", Table: "dog", Subscribe: false, Publish: true},
		}})
	})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := n.Servers.InternalConn("fake-" + name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	if _, err := nc.Subscribe("_clusterd.node."+name+".status", func(m *nats.Msg) {
		if b := answer(m); b != nil {
			_ = m.Respond(b)
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

var uptimeForm = regexp.MustCompile(`^(\d+y )?(\d+mo )?(\d+d )?(\d+h )?(\d+m )?\d+s$|^(\d+y )?(\d+mo )?(\d+d )?(\d+h )?\d+m$`)

func TestClusterStatusReportsEachConnectionStatus(t *testing.T) {
	const timeout = time.Second
	cfg := nodetest.Config(t, "a")
	cfg.Clustering.RequestTimeout = timeout
	a := nodetest.Start(t, cfg)
	b := nodetest.StartNamed(t, "b")
	c := nodetest.StartNamed(t, "c")
	for _, n := range []*node.Node{b, c} {
		if r := nodetest.Op(t, n, "cluster_set_routes", map[string]any{"server": "hub", "routes": []any{nodetest.ClusterRoute(a)}}); r.Status != 200 {
			t.Fatalf("set routes: %s", r.Body)
		}
	}
	nodetest.Eventually(t, 10*time.Second, "mesh and its interest", func() bool {
		return len(a.Servers.RoutedPeers()) == 2 && a.Servers.HubInterest("_clusterd.all.network") >= 3
	})
	for _, n := range []*node.Node{a, b, c} {
		nodetest.Op(t, n, "create_table", map[string]any{"table": "dog"})
	}
	for _, peer := range []string{"b", "c"} {
		r := nodetest.Op(t, a, "add_node", map[string]any{"node_name": peer, "subscriptions": []any{
			map[string]any{"table": "dog", "subscribe": true, "publish": true},
		}})
		if r.Status != 200 {
			t.Fatalf("add_node %s: %s", peer, r.Body)
		}
	}
	// c's process stops: nothing listens on its subject any more.
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}

	publish(t, b, "data", "dog", 7, "b")
	nodetest.Eventually(t, 10*time.Second, "b's transactions on a", func() bool { return count(t, a, "txn.data.dog.b") == 7 })

	var st handlers.ClusterStatusReply
	nodetest.Eventually(t, 10*time.Second, "b's subscription converged with lag 0", func() bool {
		st = clusterStatus(t, a)
		cb := connection(t, st, "b")
		return cb.Status == "open" && cb.Subscriptions[0].Converged && cb.Subscriptions[0].Lag != nil && *cb.Subscriptions[0].Lag == 0
	})
	// Two peers that accept calls and never answer; they are asked in
	// parallel, so together they cost one timeout.
	registerFake(t, a, "slow1", func(*nats.Msg) []byte { return nil })
	registerFake(t, a, "slow2", func(*nats.Msg) []byte { return nil })
	// A peer that answers with an error.
	registerFake(t, a, "broken", func(*nats.Msg) []byte { return []byte(`{"node":"broken","error":"boom"}`) })
	start := time.Now()
	st = clusterStatus(t, a)
	took := time.Since(start)
	if took > timeout+1500*time.Millisecond {
		t.Errorf("cluster_status took %v with two silent peers; the inter-node timeout is %v", took, timeout)
	}
	if took < timeout {
		t.Errorf("cluster_status took %v, less than the timeout %v it must have waited for the silent peers", took, timeout)
	}
	if st.NodeName != "a" || !st.IsEnabled {
		t.Errorf("node_name/is_enabled = %q/%v", st.NodeName, st.IsEnabled)
	}
	var names []string
	for _, c := range st.Connections {
		names = append(names, c.NodeName)
	}
	if want := []string{"b", "broken", "c", "slow1", "slow2"}; !equalStrings(names, want) {
		t.Fatalf("connections = %v, want %v (sorted)", names, want)
	}
	for name, want := range map[string]string{"b": "open", "broken": "closed", "c": "NoResponders", "slow1": "Timeout", "slow2": "Timeout"} {
		if got := connection(t, st, name).Status; got != want {
			t.Errorf("%s: status %q, want %q", name, got, want)
		}
	}

	cb := connection(t, st, "b")
	if cb.Ports.Clustering != b.Servers.Ports().Cluster || cb.Ports.OperationsAPI != b.HTTPPort() {
		t.Errorf("b ports = %+v, want clustering %d operations_api %d", cb.Ports, b.Servers.Ports().Cluster, b.HTTPPort())
	}
	if cb.LatencyMS == nil || *cb.LatencyMS <= 0 || *cb.LatencyMS > 1000 {
		t.Errorf("b latency_ms = %v", cb.LatencyMS)
	}
	if !uptimeForm.MatchString(cb.Uptime) {
		t.Errorf("b uptime = %q", cb.Uptime)
	}
	if si := cb.SystemInfo; si == nil || si.Version != node.Version || si.GoVersion != runtime.Version() || si.Platform != runtime.GOOS {
		t.Errorf("b system_info = %+v", cb.SystemInfo)
	}
	if len(cb.Subscriptions) != 1 {
		t.Fatalf("b subscriptions = %+v", cb.Subscriptions)
	}
	s := cb.Subscriptions[0]
	if s.Database != "data" || s.Schema != "data" || s.Table != "dog" || !s.Subscribe || !s.Publish || s.StartTime == nil {
		t.Errorf("b subscription = %+v", s)
	}
	if !s.Converged || s.LastError != "" || s.Lag == nil || *s.Lag != 0 {
		t.Errorf("b replication state = converged %v, last_error %q, lag %v", s.Converged, s.LastError, s.Lag)
	}

	cc := connection(t, st, "c")
	if cc.Ports != (handlers.Ports{}) || cc.LatencyMS != nil || cc.Uptime != "" || cc.SystemInfo != nil {
		t.Errorf("c is not listening but reports %+v", cc)
	}
	if len(cc.Subscriptions) != 1 || cc.Subscriptions[0].Lag != nil {
		t.Errorf("c subscriptions = %+v: recorded subscription with unknown (null) lag wanted", cc.Subscriptions)
	}
	if got := connection(t, st, "broken").Error; got != "Error returned from remote node broken: boom" {
		t.Errorf("broken error = %q", got)
	}
	// publish-only subscriptions have nothing to receive here.
	if s := connection(t, st, "slow1").Subscriptions[0]; !s.Converged || s.Lag == nil || *s.Lag != 0 {
		t.Errorf("publish-only subscription = %+v, want converged with lag 0", s)
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestClusterStatusWithClusteringDisabled(t *testing.T) {
	cfg := nodetest.Config(t, "solo")
	cfg.Clustering.Enabled = false
	n := nodetest.Start(t, cfg)
	r := nodetest.Op(t, n, "cluster_status", "{}")
	if r.Status != 200 || string(r.Body) != `{"node_name":"solo","is_enabled":false,"connections":[]}` {
		t.Fatalf("cluster_status = %d %s", r.Status, r.Body)
	}
}

func TestClusterStatusWithNoNodes(t *testing.T) {
	n := nodetest.StartNamed(t, "lonely")
	r := nodetest.Op(t, n, "cluster_status", "{}")
	if r.Status != 200 || string(r.Body) != `{"node_name":"lonely","is_enabled":true,"connections":[]}` {
		t.Fatalf("cluster_status = %d %s", r.Status, r.Body)
	}
	if r := nodetest.Op(t, n, "cluster_status", "[1]"); r.Status != 400 {
		t.Fatalf("cluster_status with an array body = %d %s", r.Status, r.Body)
	}
}

// reconcilePasses counts n's reconcile passes of worker so far.
func reconcilePasses(t *testing.T, n *node.Node, worker string) float64 {
	t.Helper()
	mfs, err := n.Metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() != "clusterd_reconcile_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "worker" && l.GetValue() == worker {
					total += m.GetCounter().GetValue()
				}
			}
		}
	}
	return total
}

func dogLag(t *testing.T, n *node.Node, peer string) (status string, sub handlers.SubscriptionStatus) {
	t.Helper()
	c := connection(t, clusterStatus(t, n), peer)
	for _, s := range c.Subscriptions {
		if s.Table == "dog" {
			return c.Status, s
		}
	}
	t.Fatalf("no dog subscription with %s: %+v", peer, c)
	return "", handlers.SubscriptionStatus{}
}

// While b's transactions cannot flow to a (its source is gone, until a's
// replication worker notices the drift on its next resync), a's
// cluster_status counts exactly the ones a has not received; once the
// source is back, lag returns to 0 and each arrived once.
func TestClusterStatusLagRisesWhileSourceIsDownAndReturnsToZero(t *testing.T) {
	nodes := settledMesh(t, "a", "b")
	a, b := nodes[0], nodes[1]
	for _, n := range nodes {
		nodetest.Op(t, n, "create_table", map[string]any{"table": "dog"})
	}
	if r := nodetest.Op(t, a, "add_node", map[string]any{"node_name": "b", "subscriptions": []any{
		map[string]any{"table": "dog", "subscribe": true, "publish": false},
	}}); r.Status != 200 {
		t.Fatalf("add_node: %s", r.Body)
	}
	publish(t, b, "data", "dog", 5, "b")
	nodetest.Eventually(t, 10*time.Second, "lag 0 with 5 received", func() bool {
		_, s := dogLag(t, a, "b")
		return count(t, a, "txn.data.dog.b") == 5 && s.Lag != nil && *s.Lag == 0 && s.Converged
	})

	stream, err := jsFor(t, a).Stream(context.Background(), "txn")
	if err != nil {
		t.Fatal(err)
	}
	// Act right after a replication pass: the next periodic one is at least
	// 1.8 s away, which leaves the source down while we look. Should the
	// worker run meanwhile anyway (a slow machine), try again.
	written := 5
	for attempt := 0; ; attempt++ {
		nodetest.Eventually(t, 10*time.Second, "everything received", func() bool {
			_, s := dogLag(t, a, "b")
			return s.Lag != nil && *s.Lag == 0 && s.Converged && count(t, a, "txn.data.dog.b") == written
		})
		passes := reconcilePasses(t, a, "replication")
		a.Bus.Publish(events.NodesChanged) // wakes the worker now
		nodetest.Eventually(t, 5*time.Second, "a replication pass", func() bool { return reconcilePasses(t, a, "replication") > passes })
		// A wake-up that arrived during that pass runs one more: let it.
		for settled := reconcilePasses(t, a, "replication"); ; {
			time.Sleep(150 * time.Millisecond)
			now := reconcilePasses(t, a, "replication")
			if now == settled {
				break
			}
			settled = now
		}
		start := time.Now()
		info, err := stream.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		cfg := info.Config
		cfg.Sources = nil
		if _, err := jsInternal(t, a).UpdateStream(context.Background(), cfg); err != nil {
			t.Fatal(err)
		}
		publish(t, b, "data", "dog", 10, fmt.Sprintf("late%d", attempt))
		written += 10
		status, s := dogLag(t, a, "b")
		if time.Since(start) > 1500*time.Millisecond || s.Converged {
			if attempt < 3 {
				continue // the worker may have restored the source meanwhile
			}
			t.Fatalf("could not look while the source was down (took %v, converged %v)", time.Since(start), s.Converged)
		}
		if status != "open" || s.Lag == nil || *s.Lag != 10 {
			t.Fatalf("status %s, lag %v while the source is down and b wrote 10, want 10", status, s.Lag)
		}
		break
	}
	a.Bus.Publish(events.NodesChanged) // the worker repairs the drift now rather than at its resync
	nodetest.Eventually(t, 10*time.Second, "lag back to 0", func() bool {
		_, s := dogLag(t, a, "b")
		return s.Lag != nil && *s.Lag == 0 && s.Converged
	})
	if got := count(t, a, "txn.data.dog.b"); got != written {
		t.Fatalf("a holds %d of b's transactions, want %d (each once)", got, written)
	}
}

// During a partition the peer cannot be asked: its lag is unknown (null),
// not a guess. After the heal every transaction written meanwhile arrives
// and lag returns to 0.
func TestClusterStatusAcrossAPartition(t *testing.T) {
	nodes := settledMesh(t, "a", "b")
	a, b := nodes[0], nodes[1]
	for _, n := range nodes {
		nodetest.Op(t, n, "create_table", map[string]any{"table": "dog"})
	}
	if r := nodetest.Op(t, a, "add_node", map[string]any{"node_name": "b", "subscriptions": []any{
		map[string]any{"table": "dog", "subscribe": true, "publish": true},
	}}); r.Status != 200 {
		t.Fatalf("add_node: %s", r.Body)
	}
	publish(t, b, "data", "dog", 5, "b")
	nodetest.Eventually(t, 10*time.Second, "5 received", func() bool { return count(t, a, "txn.data.dog.b") == 5 })

	route := map[string]any{"routes": []any{nodetest.ClusterRoute(a)}}
	if r := nodetest.Op(t, b, "cluster_delete_routes", route); r.Status != 200 {
		t.Fatalf("delete route: %s", r.Body)
	}
	nodetest.Eventually(t, 5*time.Second, "partition", func() bool {
		return len(a.Servers.RoutedPeers()) == 0 && len(b.Servers.RoutedPeers()) == 0
	})
	publish(t, b, "data", "dog", 10, "during")
	status, s := dogLag(t, a, "b")
	if status != "NoResponders" || s.Lag != nil {
		t.Fatalf("during the partition: status %s lag %v, want NoResponders and null", status, s.Lag)
	}

	if r := nodetest.Op(t, b, "cluster_set_routes", map[string]any{"server": "hub", "routes": route["routes"]}); r.Status != 200 {
		t.Fatalf("set route: %s", r.Body)
	}
	nodetest.Eventually(t, 20*time.Second, "caught up after the heal", func() bool {
		status, s := dogLag(t, a, "b")
		return status == "open" && s.Lag != nil && *s.Lag == 0 && count(t, a, "txn.data.dog.b") == 15
	})
	nodetest.Never(t, 200*time.Millisecond, "a received b's transactions twice after the heal", func() bool { return count(t, a, "txn.data.dog.b") != 15 })
}

// When a peer's transaction stream is recreated its sequences start over,
// and a source that had received further stalls while JetStream reports no
// lag. cluster_status says so instead of reporting a converged subscription.
func TestClusterStatusFlagsARecreatedPeerStream(t *testing.T) {
	nodes := settledMesh(t, "a", "b")
	a, b := nodes[0], nodes[1]
	for _, n := range nodes {
		nodetest.Op(t, n, "create_table", map[string]any{"table": "dog"})
	}
	if r := nodetest.Op(t, a, "add_node", map[string]any{"node_name": "b", "subscriptions": []any{
		map[string]any{"table": "dog", "subscribe": true, "publish": false},
	}}); r.Status != 200 {
		t.Fatalf("add_node: %s", r.Body)
	}
	publish(t, b, "data", "dog", 5, "b")
	nodetest.Eventually(t, 10*time.Second, "5 received", func() bool { return count(t, a, "txn.data.dog.b") == 5 })

	js := jsInternal(t, b)
	if err := js.DeleteStream(context.Background(), "txn"); err != nil {
		t.Fatal(err)
	}
	b.Bus.Publish(events.NodesChanged) // b's worker recreates it now rather than at its resync
	nodetest.Eventually(t, 10*time.Second, "b's stream recreated by its worker", func() bool {
		_, err := js.Stream(context.Background(), "txn")
		return err == nil
	})
	publish(t, b, "data", "dog", 2, "again")
	_, s := dogLag(t, a, "b")
	if s.Converged || !strings.Contains(s.LastError, "up to sequence 5 but its stream ends at 2") {
		t.Fatalf("subscription after b's stream was recreated: converged %v, last_error %q", s.Converged, s.LastError)
	}
}
