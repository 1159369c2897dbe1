package node_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clusterd/clusterd/node"
	"github.com/clusterd/clusterd/node/nodetest"
	"github.com/clusterd/clusterd/storage"
	"github.com/clusterd/clusterd/topology"
)

func sub(table string, subscribe, publish bool) map[string]any {
	return map[string]any{"database": "data", "table": table, "subscribe": subscribe, "publish": publish}
}

func op(t *testing.T, n *node.Node, name string, body any, wantStatus int) map[string]any {
	t.Helper()
	r := nodetest.Op(t, n, name, body)
	if r.Status != wantStatus {
		t.Fatalf("%s on %s: status %d, want %d: %s", name, n.Name(), r.Status, wantStatus, r.Body)
	}
	return r.JSON(t)
}

func record(t *testing.T, n *node.Node, peer string) (storage.Node, bool) {
	t.Helper()
	rec, ok, err := n.Store.Node(peer)
	if err != nil {
		t.Fatal(err)
	}
	return rec, ok
}

func flags(t *testing.T, n *node.Node, peer, table string) (subscribe, publish bool) {
	t.Helper()
	rec, ok := record(t, n, peer)
	if !ok {
		t.Fatalf("%s has no record of %s", n.Name(), peer)
	}
	i := rec.Find(storage.TableKey{Database: "data", Table: table})
	if i < 0 {
		t.Fatalf("%s's record of %s has no subscription for %s", n.Name(), peer, table)
	}
	return rec.Subscriptions[i].Subscribe, rec.Subscriptions[i].Publish
}

// settle waits until the replication worker of every node has applied the
// desired state (no pending changes and a pass after them).
func settle(t *testing.T, nodes ...*node.Node) {
	t.Helper()
	since := time.Now()
	nodetest.Eventually(t, 15*time.Second, "a replication pass on every node", func() bool {
		for _, n := range nodes {
			if !n.ReplicationPassedSince(since) {
				return false
			}
		}
		return true
	})
}

// dogPair meshes a and b and links them with table dog replicated both ways.
func dogPair(t *testing.T) (a, b *node.Node) {
	t.Helper()
	nodes := mesh(t, "a", "b")
	for _, n := range nodes {
		op(t, n, "create_table", map[string]any{"table": "dog"}, 200)
	}
	op(t, nodes[0], "add_node", map[string]any{"node_name": "b", "subscriptions": []any{sub("dog", true, true)}}, 200)
	return nodes[0], nodes[1]
}

func TestUpdateNodeFlagsActFromBothSides(t *testing.T) {
	a, b := dogPair(t)

	// publish-only from a's side: a's transactions go to b, b's no longer come to a.
	got := op(t, a, "update_node", map[string]any{"node_name": "b", "subscriptions": []any{sub("dog", false, true)}}, 200)
	if got["message"] != "Successfully updated 'b'" {
		t.Fatalf("message = %v", got["message"])
	}
	if s, p := flags(t, b, "a", "dog"); !s || p {
		t.Fatalf("b's record of a = subscribe %v publish %v, want the mirror image (true, false)", s, p)
	}
	settle(t, a, b)
	publish(t, a, "data", "dog", 10, "a1")
	publish(t, b, "data", "dog", 10, "b1")
	nodetest.Eventually(t, 10*time.Second, "a's transactions on b", func() bool { return count(t, b, "txn.data.dog.a") == 10 })
	nodetest.Never(t, 300*time.Millisecond, "a received b's transactions while not subscribed", func() bool { return count(t, a, "txn.data.dog.b") != 0 })

	// set_node_replication is the same operation: both false stops both ways.
	op(t, a, "set_node_replication", map[string]any{"node_name": "b", "subscriptions": []any{sub("dog", false, false)}}, 200)
	settle(t, a, b)
	publish(t, a, "data", "dog", 5, "a2")
	nodetest.Never(t, 500*time.Millisecond, "b received a's transactions after replication stopped", func() bool { return count(t, b, "txn.data.dog.a") != 10 })

	// Subscribing again resumes where it stopped: nothing lost, nothing twice.
	op(t, a, "update_node", map[string]any{"node_name": "b", "subscriptions": []any{sub("dog", true, true)}}, 200)
	nodetest.Eventually(t, 10*time.Second, "b catches up on a's writes", func() bool { return count(t, b, "txn.data.dog.a") == 15 })
	nodetest.Eventually(t, 10*time.Second, "a catches up on b's writes", func() bool { return count(t, a, "txn.data.dog.b") == 10 })
	want := []string{}
	for i := 0; i < 10; i++ {
		want = append(want, "a1-"+itoa(i))
	}
	for i := 0; i < 5; i++ {
		want = append(want, "a2-"+itoa(i))
	}
	if got := received(t, b, "txn.data.dog.a"); !equal(got, want) {
		t.Fatalf("b holds %v, want %v", got, want)
	}
}

func itoa(i int) string { return fmt.Sprint(i) }

func equal(a, b []string) bool {
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

func TestAddNodeCreatesMissingTablesAndSkipsUnknownOnes(t *testing.T) {
	nodes := mesh(t, "a", "b")
	a, b := nodes[0], nodes[1]
	op(t, a, "create_table", map[string]any{"table": "only_a"}, 200)
	op(t, b, "create_table", map[string]any{"table": "only_b"}, 200)
	got := op(t, a, "add_node", map[string]any{"node_name": "b", "subscriptions": []any{
		sub("only_a", true, true), sub("only_b", true, true), sub("nowhere", true, true),
	}}, 200)
	if got["message"] != "Some subscriptions were unsuccessful due to schema and/or tables not existing on the local or remote node" {
		t.Fatalf("message = %v", got["message"])
	}
	if n := len(got["added"].([]any)); n != 2 {
		t.Fatalf("added %d, want 2: %v", n, got)
	}
	skipped := got["skipped"].([]any)
	if len(skipped) != 1 || skipped[0].(map[string]any)["table"] != "nowhere" {
		t.Fatalf("skipped = %v", skipped)
	}
	for _, c := range []struct {
		n     *node.Node
		table string
	}{{a, "only_b"}, {b, "only_a"}} {
		if ok, _ := c.n.Store.HasTable(storage.TableKey{Database: "data", Table: c.table}); !ok {
			t.Fatalf("%s did not create %s", c.n.Name(), c.table)
		}
	}
	if ok, _ := a.Store.HasTable(storage.TableKey{Database: "data", Table: "nowhere"}); ok {
		t.Fatal("a created a table that exists on neither node")
	}

	// Nothing at all possible: nothing recorded on either side.
	got = op(t, a, "add_node", map[string]any{"node_name": "c", "subscriptions": []any{sub("nowhere", true, true)}}, 500)
	_ = got
	r := nodetest.Op(t, a, "update_node", map[string]any{"node_name": "b", "subscriptions": []any{sub("nowhere", true, true)}})
	if r.Status != 200 || r.JSON(t)["message"] != "Unable to update subscriptions due to schema and/or tables not existing on the local or remote node" {
		t.Fatalf("update with only unknown tables: %d %s", r.Status, r.Body)
	}
	rec, _ := record(t, a, "b")
	if len(rec.Subscriptions) != 2 {
		t.Fatalf("a's record of b changed: %+v", rec)
	}
}

func TestAddNodeErrors(t *testing.T) {
	nodes := mesh(t, "a", "b")
	a := nodes[0]
	op(t, a, "create_table", map[string]any{"table": "dog"}, 200)
	r := nodetest.Op(t, a, "add_node", map[string]any{"node_name": "ghost", "subscriptions": []any{sub("dog", true, true)}})
	if r.Status != 500 || r.Error() != "Unable to add_node, node 'ghost' is not listening." {
		t.Fatalf("unreachable: %d %s", r.Status, r.Body)
	}
	r = nodetest.Op(t, a, "update_node", map[string]any{"node_name": "ghost", "subscriptions": []any{sub("dog", true, true)}})
	if r.Status != 500 || r.Error() != "Unable to update_node, node 'ghost' is not listening." {
		t.Fatalf("unreachable update: %d %s", r.Status, r.Body)
	}
	if _, ok := record(t, a, "ghost"); ok {
		t.Fatal("a recorded an unreachable node")
	}
	op(t, a, "add_node", map[string]any{"node_name": "b", "subscriptions": []any{sub("dog", true, false)}}, 200)
	r = nodetest.Op(t, a, "add_node", map[string]any{"node_name": "b", "subscriptions": []any{sub("dog", true, false)}})
	if r.Status != 400 || r.Error() != "Node 'b' has already been added, perform update_node to proceed." {
		t.Fatalf("twice: %d %s", r.Status, r.Body)
	}
	r = nodetest.Op(t, a, "add_node", map[string]any{"node_name": "c", "subscriptions": []any{sub("dog", false, false), sub("dog", true, false)}})
	if r.Status != 400 || r.Error() != "'subscriptions[0]' subscribe and/or publish must be set to true when adding a node" {
		t.Fatalf("inactive: %d %s", r.Status, r.Body)
	}
	r = nodetest.Op(t, a, "remove_node", map[string]any{"node_name": "nobody"})
	if r.Status != 400 || r.Error() != "Node 'nobody' was not found." {
		t.Fatalf("remove unknown: %d %s", r.Status, r.Body)
	}
	r = nodetest.Op(t, a, "remove_node", map[string]any{})
	if r.Status != 400 || r.Error() != "'node_name' is required" {
		t.Fatalf("remove without name: %d %s", r.Status, r.Body)
	}
}

func TestRemoveNodeStopsBothWaysAndReachesAPeerThatWasDown(t *testing.T) {
	cfgA := nodetest.FixedPorts(t, nodetest.Config(t, "a"))
	cfgB := nodetest.FixedPorts(t, nodetest.Config(t, "b"))
	cfgB.Clustering.HubServer.Cluster.Network.Routes = []node.RouteConfig{{Host: "127.0.0.1", Port: cfgA.Clustering.HubServer.Cluster.Network.Port}}
	a := nodetest.Start(t, cfgA)
	b := nodetest.Start(t, cfgB)
	nodetest.Eventually(t, 5*time.Second, "mesh", func() bool { return len(a.Servers.RoutedPeers()) == 1 })
	for _, n := range []*node.Node{a, b} {
		op(t, n, "create_table", map[string]any{"table": "dog"}, 200)
	}
	op(t, a, "add_node", map[string]any{"node_name": "b", "subscriptions": []any{sub("dog", true, true)}}, 200)
	got := op(t, a, "remove_node", map[string]any{"node_name": "b"}, 200)
	if got["message"] != "Successfully removed 'b' from manifest" {
		t.Fatalf("message = %v", got["message"])
	}
	if _, ok := record(t, b, "a"); ok {
		t.Fatal("b still has a record of a")
	}
	settle(t, a, b)
	publish(t, a, "data", "dog", 3, "a")
	publish(t, b, "data", "dog", 3, "b")
	nodetest.Never(t, 500*time.Millisecond, "transactions still replicate after remove_node", func() bool {
		return count(t, a, "txn.data.dog.b") != 0 || count(t, b, "txn.data.dog.a") != 0
	})

	// Peer down: the local record goes, the peer learns when it is back.
	op(t, a, "add_node", map[string]any{"node_name": "b", "subscriptions": []any{sub("dog", true, true)}}, 200)
	b.Close()
	got = op(t, a, "remove_node", map[string]any{"node_name": "b"}, 200)
	if got["message"] != "Successfully removed 'b' from local manifest, however there was an error reaching remote node. Check the logs for more details." {
		t.Fatalf("message = %v", got["message"])
	}
	b = nodetest.Start(t, cfgB)
	nodetest.Eventually(t, 15*time.Second, "b forgets a after coming back", func() bool {
		_, ok := record(t, b, "a")
		return !ok
	})
}

func TestConfigureClusterReplacesTheSetup(t *testing.T) {
	nodes := mesh(t, "a", "b", "c")
	a, b, c := nodes[0], nodes[1], nodes[2]
	for _, n := range nodes {
		op(t, n, "create_table", map[string]any{"table": "dog"}, 200)
	}
	op(t, a, "add_node", map[string]any{"node_name": "b", "subscriptions": []any{sub("dog", true, true)}}, 200)
	got := op(t, a, "configure_cluster", map[string]any{"connections": []any{
		map[string]any{"node_name": "c", "subscriptions": []any{sub("dog", true, false)}},
	}}, 200)
	if got["message"] != "Configure cluster complete." {
		t.Fatalf("message = %v", got)
	}
	conns := got["connections"].([]any)
	if len(conns) != 1 || conns[0].(map[string]any)["node_name"] != "c" {
		t.Fatalf("connections = %v", conns)
	}
	if _, ok := record(t, a, "b"); ok {
		t.Fatal("a still has b after configure_cluster without it")
	}
	if _, ok := record(t, b, "a"); ok {
		t.Fatal("b still has a after configure_cluster without it")
	}
	if s, p := flags(t, c, "a", "dog"); s || !p {
		t.Fatalf("c's record of a = %v %v, want mirror (false, true)", s, p)
	}
	publish(t, c, "data", "dog", 4, "c")
	nodetest.Eventually(t, 10*time.Second, "c's transactions on a", func() bool { return count(t, a, "txn.data.dog.c") == 4 })

	// One reachable, one not: partial success names the failed node.
	got = op(t, a, "configure_cluster", map[string]any{"connections": []any{
		map[string]any{"node_name": "c", "subscriptions": []any{sub("dog", true, false)}},
		map[string]any{"node_name": "ghost", "subscriptions": []any{sub("dog", true, false)}},
	}}, 200)
	if got["message"] != "Configure cluster was partially successful. Errors occurred when attempting to configure the following nodes. Check the logs for more details." {
		t.Fatalf("partial: %v", got)
	}
	if f := got["failed_nodes"].([]any); len(f) != 1 || f[0] != "ghost" {
		t.Fatalf("failed_nodes = %v", f)
	}
	r := nodetest.Op(t, a, "configure_cluster", map[string]any{"connections": []any{
		map[string]any{"node_name": "ghost", "subscriptions": []any{sub("dog", true, false)}},
	}})
	if r.Status != 500 || r.Error() != "Failed to configure the cluster. Check the logs for more details." {
		t.Fatalf("all failed: %d %s", r.Status, r.Body)
	}
	if s, p := flags(t, a, "c", "dog"); !s || p {
		t.Fatalf("a failed configure_cluster changed the setup: c = %v %v", s, p)
	}
	// Empty: removes everything.
	got = op(t, a, "configure_cluster", map[string]any{"connections": []any{}}, 200)
	if nodesLeft, _ := a.Store.Nodes(); len(nodesLeft) != 0 {
		t.Fatalf("nodes left after empty configure: %v", nodesLeft)
	}
}

func TestNewStartTimeResourcesFromThatTime(t *testing.T) {
	nodes := mesh(t, "a", "b")
	a, b := nodes[0], nodes[1]
	for _, n := range nodes {
		op(t, n, "create_table", map[string]any{"table": "dog"}, 200)
	}
	publish(t, b, "data", "dog", 5, "old")
	// Time is the subject: a start time clearly between two writes.
	time.Sleep(50 * time.Millisecond)
	mid := time.Now().UTC()
	time.Sleep(50 * time.Millisecond)
	publish(t, b, "data", "dog", 5, "new")
	// Added without start_time: only what comes after.
	op(t, a, "add_node", map[string]any{"node_name": "b", "subscriptions": []any{sub("dog", true, false)}}, 200)
	publish(t, b, "data", "dog", 2, "later")
	nodetest.Eventually(t, 10*time.Second, "later writes", func() bool { return count(t, a, "txn.data.dog.b") == 2 })
	// A start time between old and new re-sources exactly from there.
	s := sub("dog", true, false)
	s["start_time"] = mid.Format(time.RFC3339Nano)
	op(t, a, "update_node", map[string]any{"node_name": "b", "subscriptions": []any{s}}, 200)
	want := []string{"new-0", "new-1", "new-2", "new-3", "new-4", "later-0", "later-1"}
	nodetest.Eventually(t, 10*time.Second, "re-sourced from start_time", func() bool { return equal(received(t, a, "txn.data.dog.b"), want) })
	// A date-only start time is midnight UTC: everything of today.
	s["start_time"] = time.Now().UTC().Format("2006-01-02")
	op(t, a, "update_node", map[string]any{"node_name": "b", "subscriptions": []any{s}}, 200)
	nodetest.Eventually(t, 10*time.Second, "re-sourced from midnight", func() bool { return count(t, a, "txn.data.dog.b") == 12 })
}

// Tables added one by one end up in one source per peer and shard, and the merging
// that gets them there loses and duplicates nothing while writes go on.
func TestIncrementalSubscriptionsMergeIntoOneSourcePerPeer(t *testing.T) {
	nodes := mesh(t, "a", "b")
	a, b := nodes[0], nodes[1]
	const tables = 8
	for _, n := range nodes {
		for i := 0; i < tables; i++ {
			op(t, n, "create_table", map[string]any{"table": fmt.Sprintf("t%d", i)}, 200)
		}
	}
	var subjects []string
	for i := 0; i < tables; i++ {
		subjects = append(subjects, fmt.Sprintf("txn.data.t%d.b", i))
	}
	rounds, stop := writeRounds(t, b, subjects) // rounds written so far
	for i := 0; i < tables; i++ {
		s := sub(fmt.Sprintf("t%d", i), true, false)
		s["start_time"] = "2000-01-01" // everything: so the expected history is known
		op(t, a, "update_node", map[string]any{"node_name": "b", "subscriptions": []any{s}}, 200)
		// Writes go on between one subscription and the next.
		at := rounds.Load()
		nodetest.Eventually(t, 10*time.Second, "writes after a subscription", func() bool { return rounds.Load() >= at+10 })
	}
	var keys []storage.TableKey
	for i := 0; i < tables; i++ {
		keys = append(keys, storage.TableKey{Database: "data", Table: fmt.Sprintf("t%d", i)})
	}
	want := topology.LaneCount(len(keys))
	nodetest.Eventually(t, 30*time.Second, "one lane per shard for b", func() bool {
		st := a.Repl.Status()["b"]
		return st.Sources == want && st.Converged
	})
	written := stop()
	for i := 0; i < tables; i++ {
		subj := fmt.Sprintf("txn.data.t%d.b", i)
		nodetest.Eventually(t, 20*time.Second, subj+" complete on a", func() bool { return count(t, a, subj) >= written })
		got := received(t, a, subj)
		if len(got) != written {
			t.Fatalf("%s: a holds %d, want %d", subj, len(got), written)
		}
		for j, p := range got {
			if p != fmt.Sprint(j) {
				t.Fatalf("%s: position %d holds %q (lost, duplicated or reordered)", subj, j, p)
			}
		}
	}
}

// A partition between two nodes (their only route cut by a proxy) stops
// replication; when it heals, everything written meanwhile arrives, once, in
// order.
func TestFaultPartitionHealsWithoutLoss(t *testing.T) {
	a, b, proxy := proxiedPair(t)
	publish(t, a, "data", "dog", 20, "x")
	nodetest.Eventually(t, 10*time.Second, "first 20 on b", func() bool { return count(t, b, "txn.data.dog.a") == 20 })

	proxy.Cut()
	nodetest.Eventually(t, 5*time.Second, "partition", func() bool { return len(a.Servers.RoutedPeers()) == 0 })
	js := jsFor(t, a)
	for i := 20; i < 120; i++ {
		if _, err := js.Publish(context.Background(), "txn.data.dog.a", []byte(fmt.Sprintf("x-%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	nodetest.Never(t, 500*time.Millisecond, "b received a's transactions during the partition", func() bool { return count(t, b, "txn.data.dog.a") != 20 })
	proxy.Heal()
	nodetest.Eventually(t, 30*time.Second, "b catches up after heal", func() bool { return count(t, b, "txn.data.dog.a") >= 120 })
	got := received(t, b, "txn.data.dog.a")
	if len(got) != 120 {
		t.Fatalf("b holds %d, want 120", len(got))
	}
	for i, p := range got {
		if p != fmt.Sprintf("x-%d", i) {
			t.Fatalf("position %d holds %q", i, p)
		}
	}
}

// Concurrent update_node requests about one peer are recorded together
// (one peer call, one local transaction per batch): every request is
// answered, and both nodes end with mirror-image records, also when
// requests race on the same table.
func TestConcurrentUpdatesAboutOnePeerAgreeOnBothNodes(t *testing.T) {
	nodes := mesh(t, "a", "b")
	a, b := nodes[0], nodes[1]
	const clients = 24
	var tables []any
	for i := 0; i < clients/2; i++ {
		name := fmt.Sprintf("t%d", i)
		for _, n := range nodes {
			op(t, n, "create_table", map[string]any{"table": name}, 200)
		}
		tables = append(tables, sub(name, true, true))
	}
	op(t, a, "add_node", map[string]any{"node_name": "b", "subscriptions": tables}, 200)
	nc := nodetest.Connect(t, a)
	tok := nodetest.SuperUser(t, a)
	errs := make(chan string, clients*10)
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			// Two clients per table, flipping its flags in turn.
			table := fmt.Sprintf("t%d", c/2)
			for i := 0; i < 10; i++ {
				r := nodetest.Request(t, nc, "ops.cluster.set_node_replication", tok, map[string]any{
					"node_name": "b", "subscriptions": []any{sub(table, (c+i)%3 != 0, (c+i)%2 == 0)}})
				if r.Status != 200 || r.JSON(t)["message"] != "Successfully updated 'b'" {
					errs <- fmt.Sprintf("client %d request %d: %d %s", c, i, r.Status, r.Body)
				}
			}
		}(c)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	for i := 0; i < clients/2; i++ {
		table := fmt.Sprintf("t%d", i)
		as, ap := flags(t, a, "b", table)
		bs, bp := flags(t, b, "a", table)
		if as != bp || ap != bs {
			t.Errorf("%s: a has subscribe=%v publish=%v, b has subscribe=%v publish=%v (not mirror images)", table, as, ap, bs, bp)
		}
	}
	if ra, _ := record(t, a, "b"); len(ra.Subscriptions) != clients/2 {
		t.Errorf("a records %d subscriptions with b, want %d", len(ra.Subscriptions), clients/2)
	}
	if rb, _ := record(t, b, "a"); len(rb.Subscriptions) != clients/2 {
		t.Errorf("b records %d subscriptions with a, want %d", len(rb.Subscriptions), clients/2)
	}
}

// TestPeerConfirmsItsSyncAndTheNoticeGoes: a peer answers update_node before
// its fsync and confirms the fsync afterwards; the confirmation, not the
// notices worker (which leaves notices younger than the request timeout + 1 s
// alone), clears the caller's notice, and both records agree.
func TestPeerConfirmsItsSyncAndTheNoticeGoes(t *testing.T) {
	a, b := dogPair(t)
	for i := 0; i < 6; i++ { // ends with publish false
		op(t, a, "set_node_replication", map[string]any{"node_name": "b", "subscriptions": []any{sub("dog", true, i%2 == 0)}}, 200)
	}
	replied := time.Now()
	minAge := a.Config.Clustering.RequestTimeout + time.Second
	for {
		notices, err := a.Store.Notices()
		if err != nil {
			t.Fatal(err)
		}
		if len(notices) == 0 {
			break
		}
		if time.Since(replied) > minAge-500*time.Millisecond {
			t.Fatalf("a still holds %+v %v after the reply: the peer never confirmed its sync", notices, time.Since(replied))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if sub, pub := flags(t, a, "b", "dog"); !sub || pub {
		t.Fatalf("a's record: subscribe %v publish %v, want true false", sub, pub)
	}
	if sub, pub := flags(t, b, "a", "dog"); sub || !pub {
		t.Fatalf("b's record: subscribe %v publish %v, want the mirror (false true)", sub, pub)
	}
}

// writeRounds publishes one transaction on each subject from n, round after
// round (every 2 ms: the writer's pace, not a wait), until stop is called;
// stop returns the rounds written, and rounds counts them as they go.
func writeRounds(t *testing.T, n *node.Node, subjects []string) (rounds *atomic.Int64, stop func() int) {
	t.Helper()
	rounds = new(atomic.Int64)
	quit, done := make(chan struct{}), make(chan int)
	go func() {
		js := jsFor(t, n)
		r := 0
		for {
			select {
			case <-quit:
				done <- r
				return
			default:
			}
			for _, subj := range subjects {
				if _, err := js.Publish(context.Background(), subj, []byte(fmt.Sprint(r))); err != nil {
					t.Errorf("publish: %v", err)
				}
			}
			r++
			rounds.Store(int64(r))
			time.Sleep(2 * time.Millisecond)
		}
	}()
	return rounds, func() int { close(quit); return <-done }
}
