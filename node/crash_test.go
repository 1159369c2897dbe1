package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/clusterd/clusterd/node"
	"github.com/clusterd/clusterd/node/nodetest"
	"github.com/clusterd/clusterd/storage"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func procOp(t *testing.T, p *nodetest.Proc, op string, body any) nodetest.Reply {
	t.Helper()
	return nodetest.Request(t, p.Conn(t), "ops.cluster."+op, p.Token(t), body)
}

func procPair(t *testing.T) (a, b *nodetest.Proc) {
	cfgA := nodetest.ProcConfig(t, "a")
	cfgB := nodetest.ProcConfig(t, "b")
	cfgB.Clustering.HubServer.Cluster.Network.Routes = []node.RouteConfig{{Host: "127.0.0.1", Port: cfgA.Clustering.HubServer.Cluster.Network.Port}}
	a = nodetest.StartProc(t, cfgA)
	b = nodetest.StartProc(t, cfgB)
	return a, b
}

// streamPayloads reads every payload of subject from a node's txn stream,
// through a consumer it deletes afterwards (streams allow 1000 consumers).
func streamPayloads(t *testing.T, nc *nats.Conn, subject string) []string {
	t.Helper()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, "txn")
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	c, err := s.CreateConsumer(ctx, jetstream.ConsumerConfig{
		FilterSubject: subject, AckPolicy: jetstream.AckNonePolicy, InactiveThreshold: 10 * time.Second, MemoryStorage: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.DeleteConsumer(context.Background(), c.CachedInfo().Name) }()
	return fetchPayloads(t, ctx, c)
}

// fetchPayloads fetches every payload pending on c when called.
func fetchPayloads(t *testing.T, ctx context.Context, c jetstream.Consumer) []string {
	t.Helper()
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for uint64(len(out)) < info.NumPending {
		batch, err := c.Fetch(int(min(info.NumPending-uint64(len(out)), 500)), jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			out = append(out, string(m.Data()))
			n++
		}
		if n == 0 {
			break
		}
	}
	return out
}

// countOn is count() for a process node.
func countOn(t *testing.T, nc *nats.Conn, subject string) int {
	t.Helper()
	js, _ := jetstream.New(nc)
	s, err := js.Stream(context.Background(), "txn")
	if err != nil {
		return 0
	}
	info, err := s.Info(context.Background(), jetstream.WithSubjectFilter(subject))
	if err != nil {
		return 0
	}
	total := 0
	for _, c := range info.State.Subjects {
		total += int(c)
	}
	return total
}

// checkHistory asserts got is exactly 0..n-1 in order, and says what is wrong.
func checkHistory(t *testing.T, where string, got []string, n int) {
	t.Helper()
	seen := map[string]int{}
	for i, p := range got {
		seen[p]++
		if seen[p] > 1 {
			t.Fatalf("%s: %q duplicated (at %d)", where, p, i)
		}
		if p != strconv.Itoa(i) {
			t.Fatalf("%s: position %d holds %q: lost or reordered transactions", where, i, p)
		}
	}
	if len(got) != n {
		t.Fatalf("%s: holds %d transactions, want %d", where, len(got), n)
	}
}

// TestFaultKillDuringReplicationLosesNothing kills -9 the subscriber and then the
// origin while transactions flow; every acknowledged transaction reaches the
// subscriber exactly once, in order.
func TestFaultKillDuringReplicationLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("process crash test")
	}
	a, b := procPair(t)
	for _, p := range []*nodetest.Proc{a, b} {
		if r := procOp(t, p, "create_table", map[string]any{"table": "dog"}); r.Status != 200 {
			t.Fatal(string(r.Body))
		}
	}
	if r := procOp(t, a, "add_node", map[string]any{"node_name": "b", "subscriptions": []any{sub("dog", true, true)}}); r.Status != 200 {
		t.Fatalf("add_node: %s", r.Body)
	}
	const total = 1500
	var acked atomic.Int64
	done := make(chan error, 1)
	go func() {
		nc, err := nats.Connect(fmt.Sprintf("nats://127.0.0.1:%d", a.Cfg.Clustering.LeafServer.Network.Port),
			nats.UserInfo(a.Cfg.Clustering.LeafServer.Operator.User, a.Cfg.Clustering.LeafServer.Operator.Password), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
		if err != nil {
			done <- err
			return
		}
		defer nc.Close()
		js, _ := jetstream.New(nc)
		for i := 0; i < total; i++ {
			for attempt := 0; ; attempt++ {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				// The message id makes a retried publish land once.
				_, err := js.Publish(ctx, "txn.data.dog.a", []byte(strconv.Itoa(i)), jetstream.WithMsgID("a-"+strconv.Itoa(i)))
				cancel()
				if err == nil {
					break
				}
				if attempt > 200 {
					done <- fmt.Errorf("publish %d: %v", i, err)
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
			acked.Store(int64(i + 1))
			if i%10 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
		done <- nil
	}()
	waitAcked := func(n int64) {
		nodetest.Eventually(t, 60*time.Second, fmt.Sprintf("%d acked", n), func() bool { return acked.Load() >= n })
	}
	waitAcked(300)
	b.Kill()
	time.Sleep(200 * time.Millisecond) // down for a while, writes retrying: the subject
	b.Restart()
	waitAcked(800)
	a.Kill()
	time.Sleep(200 * time.Millisecond)
	a.Restart()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	checkHistory(t, "origin a", streamPayloads(t, a.Conn(t), "txn.data.dog.a"), total)
	bc := b.Conn(t)
	deadline := time.Now().Add(30 * time.Second)
	for countOn(t, bc, "txn.data.dog.a") < total {
		if time.Now().After(deadline) {
			got := streamPayloads(t, bc, "txn.data.dog.a")
			logB, _ := os.ReadFile(b.LogPath)
			js, _ := jetstream.New(bc)
			st, _ := js.Stream(context.Background(), "txn")
			inf, _ := st.Info(context.Background())
			dump, _ := json.Marshal(inf.Sources)
			t.Logf("b sources: %s", dump)
			t.Fatalf("b holds %d of %d after 30s (first %v, last %v)\nb's log:\n%s", len(got), total, got[:min(3, len(got))], got[max(0, len(got)-3):], tail(string(logB), 40))
		}
		time.Sleep(20 * time.Millisecond)
	}
	checkHistory(t, "subscriber b", streamPayloads(t, b.Conn(t), "txn.data.dog.a"), total)
}

// TestFaultKillDuringConfigureClusterIsAtomic kills -9 a node while it switches
// its setup; after restart its desired state is wholly the old setup or
// wholly the new one.
func TestFaultKillDuringConfigureClusterIsAtomic(t *testing.T) {
	if testing.Short() {
		t.Skip("process crash test")
	}
	a, b := procPair(t)
	cfgC := nodetest.ProcConfig(t, "c")
	cfgC.Clustering.HubServer.Cluster.Network.Routes = []node.RouteConfig{{Host: "127.0.0.1", Port: a.Cfg.Clustering.HubServer.Cluster.Network.Port}}
	c := nodetest.StartProc(t, cfgC)
	const tables = 200
	var subsOld, subsNew []any
	for i := 0; i < tables; i++ {
		name := fmt.Sprintf("t%03d", i)
		for _, p := range []*nodetest.Proc{a, b, c} {
			procOp(t, p, "create_table", map[string]any{"table": name})
		}
		subsOld = append(subsOld, sub(name, true, true))
		subsNew = append(subsNew, sub(name, true, false))
	}
	oldSetup := map[string]any{"connections": []any{map[string]any{"node_name": "b", "subscriptions": subsOld}}}
	newSetup := map[string]any{"connections": []any{map[string]any{"node_name": "c", "subscriptions": subsNew}}}
	for round := 0; round < 6; round++ {
		// After a restart the mesh takes a moment to re-form.
		nodetest.Eventually(t, 15*time.Second, "configure old setup", func() bool {
			return procOp(t, a, "configure_cluster", oldSetup).Status == 200
		})
		nc := a.Conn(t)
		msg := nats.NewMsg("ops.cluster.configure_cluster")
		msg.Header.Set("Authorization", "Bearer "+a.Token(t))
		msg.Data, _ = json.Marshal(newSetup)
		if err := nc.PublishMsg(msg); err != nil {
			t.Fatal(err)
		}
		_ = nc.Flush()
		time.Sleep(time.Duration(round*4) * time.Millisecond)
		a.Kill()
		st, err := storage.Open(filepath.Join(a.Cfg.RootPath, "state"))
		if err != nil {
			t.Fatal(err)
		}
		nodes, err := st.Nodes()
		st.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(nodes) != 1 {
			t.Fatalf("round %d: %d nodes recorded after crash, want exactly the old or the new one: %+v", round, len(nodes), nodes)
		}
		n := nodes[0]
		wantPublish := n.Name == "b"
		if n.Name != "b" && n.Name != "c" || len(n.Subscriptions) != tables {
			t.Fatalf("round %d: mixed setup after crash: %s with %d subscriptions", round, n.Name, len(n.Subscriptions))
		}
		for _, s := range n.Subscriptions {
			if s.Publish != wantPublish || !s.Subscribe {
				t.Fatalf("round %d: subscription of %s mixes old and new: %+v", round, n.Name, s)
			}
		}
		t.Logf("round %d: after crash the setup is %s", round, map[bool]string{true: "old", false: "new"}[wantPublish])
		a.Restart()
	}
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// storedNodes reads a stopped process node's desired node records.
func storedNodes(t *testing.T, p *nodetest.Proc) []storage.Node {
	t.Helper()
	st, err := storage.Open(filepath.Join(p.Cfg.RootPath, "state"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	nodes, err := st.Nodes()
	if err != nil {
		t.Fatal(err)
	}
	return nodes
}

// A peer frozen past the inter-node timeout makes the operation fail with
// "listening but did not respond"; when it thaws and applies the request
// late, the notice left behind brings it back in line with the caller.
func TestFaultFrozenPeerLeavesNoHalfMadeState(t *testing.T) {
	if testing.Short() {
		t.Skip("process test")
	}
	a, b := procPair(t)
	for _, p := range []*nodetest.Proc{a, b} {
		procOp(t, p, "create_table", map[string]any{"table": "dog"})
	}
	if r := procOp(t, a, "add_node", map[string]any{"node_name": "b", "subscriptions": []any{sub("dog", true, true)}}); r.Status != 200 {
		t.Fatalf("add_node: %s", r.Body)
	}
	b.Signal(syscall.SIGSTOP)
	start := time.Now()
	r := procOp(t, a, "update_node", map[string]any{"node_name": "b", "subscriptions": []any{sub("dog", false, false)}})
	took := time.Since(start)
	if r.Status != 500 || r.Error() != "Unable to update_node, node 'b' is listening but did not respond." {
		t.Fatalf("frozen peer: %d %s", r.Status, r.Body)
	}
	t.Logf("frozen peer reply took %v", took)
	if took > 4*time.Second {
		t.Fatalf("reply took %v, want within the CLI's 5 s", took)
	}
	// a owes b a notice (written before the call, kept because the call may
	// have applied): wait until a's notices worker has counted it, so that
	// the backlog's fall to 0 below is the delivery, not a stale gauge.
	notices := func() float64 {
		code, text := get(t, a.Cfg.OperationsAPI.Network.Port, "/metrics")
		if code != 200 {
			t.Fatalf("a's /metrics: %d", code)
		}
		return metric(text, `clusterd_worker_queue_depth{worker="notices"}`)
	}
	nodetest.Eventually(t, 20*time.Second, "a's notice to b counted", func() bool { return notices() == 1 })
	b.Signal(syscall.SIGCONT) // b now applies the stale update
	// The notices worker resends a's view once the notice is due (timeout+1s)
	// and deletes the notice when b has taken it.
	nodetest.Eventually(t, 30*time.Second, "a's notice to b delivered", func() bool { return notices() == 0 })
	if err := b.Stop(); err != nil {
		t.Fatalf("stop b: %v", err)
	}
	nodes := storedNodes(t, b)
	if len(nodes) != 1 || len(nodes[0].Subscriptions) != 1 {
		t.Fatalf("b's records: %+v", nodes)
	}
	if s := nodes[0].Subscriptions[0]; !s.Subscribe || !s.Publish {
		t.Fatalf("b's record of a = %+v, want the mirror of a's unchanged record (true, true)", s)
	}
}

// TestFaultKillDuringAddNode kills -9 the node running add_node at various
// points (before, between or after the peer's and its own commit); after a
// restart both nodes end up agreeing: both record the pair as mirror images,
// or neither records it.
func TestFaultKillDuringAddNode(t *testing.T) {
	if testing.Short() {
		t.Skip("process test")
	}
	a, b := procPair(t)
	for _, p := range []*nodetest.Proc{a, b} {
		procOp(t, p, "create_table", map[string]any{"table": "dog"})
	}
	for round, delay := range []time.Duration{time.Millisecond, 8 * time.Millisecond} {
		nodetest.Eventually(t, 15*time.Second, "clean slate", func() bool {
			r := procOp(t, a, "remove_node", map[string]any{"node_name": "b"})
			return r.Status == 200 || r.Error() == "Node 'b' was not found."
		})
		nc := a.Conn(t)
		msg := nats.NewMsg("ops.cluster.add_node")
		msg.Header.Set("Authorization", "Bearer "+a.Token(t))
		msg.Data, _ = json.Marshal(map[string]any{"node_name": "b", "subscriptions": []any{sub("dog", true, false)}})
		if err := nc.PublishMsg(msg); err != nil {
			t.Fatal(err)
		}
		_ = nc.Flush()
		time.Sleep(delay)
		a.Kill()
		a.Restart()
		// Notices are delivered once due (timeout + 1 s) on a later pass:
		// wait until both nodes' cluster_status agree on whether they are
		// linked (a loaded machine can take longer than a few seconds).
		linked := func(p *nodetest.Proc) int {
			r := procOp(t, p, "cluster_status", "{}")
			if r.Status != 200 {
				return -1
			}
			conns, _ := r.JSON(t)["connections"].([]any)
			return len(conns)
		}
		nodetest.Eventually(t, 30*time.Second, "both nodes agree", func() bool {
			la, lb := linked(a), linked(b)
			return la >= 0 && la == lb
		})
		if err := a.Stop(); err != nil {
			t.Fatal(err)
		}
		if err := b.Stop(); err != nil {
			t.Fatal(err)
		}
		na, nb := storedNodes(t, a), storedNodes(t, b)
		switch {
		case len(na) == 0 && len(nb) == 0:
			t.Logf("round %d: neither recorded the pair", round)
		case len(na) == 1 && len(nb) == 1:
			sa, sb := na[0].Subscriptions[0], nb[0].Subscriptions[0]
			if sa.Subscribe != sb.Publish || sa.Publish != sb.Subscribe {
				t.Fatalf("round %d: records disagree: %+v vs %+v", round, sa, sb)
			}
			t.Logf("round %d: both recorded the pair", round)
		default:
			t.Fatalf("round %d: half-made state after crash: a has %+v, b has %+v", round, na, nb)
		}
		a.Restart()
		b.Restart()
	}
}
