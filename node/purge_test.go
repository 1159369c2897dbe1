package node_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/clusterd/clusterd/node"
	"github.com/clusterd/clusterd/node/nodetest"
	"github.com/clusterd/clusterd/storage"
	"github.com/nats-io/nats.go/jetstream"
)

func purge(t *testing.T, n *node.Node, body map[string]any) {
	t.Helper()
	r := nodetest.Op(t, n, "purge_stream", body)
	db, _ := body["database"].(string)
	if db == "" {
		db = "data"
	}
	want := fmt.Sprintf(`{"message":"Successfully purged table '%s.%s'"}`, db, body["table"])
	if r.Status != 200 || string(r.Body) != want {
		t.Fatalf("purge_stream %v on %s = %d %s", body, n.Name(), r.Status, r.Body)
	}
}

// held returns the payloads n's stream holds for subject, in order. It reads
// message by message (direct gets) rather than through a consumer: creating a
// consumer while the replication worker updates the stream's sources (it
// re-anchors them after a purge) trips a data race inside nats-server
// (fileStore.ConsumerStore reads the config UpdateConfig writes).
func held(t *testing.T, n *node.Node, subject string) []string {
	t.Helper()
	ctx := context.Background()
	s, err := jsFor(t, n).Stream(ctx, "txn")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for seq := uint64(1); ; {
		m, err := s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return out
		}
		if err != nil {
			t.Fatalf("read %s on %s: %v", subject, n.Name(), err)
		}
		out = append(out, string(m.Data))
		seq = m.Sequence + 1
	}
}

func wantPayloads(t *testing.T, n *node.Node, subject string, want ...string) {
	t.Helper()
	got := held(t, n, subject)
	if !equalStrings(got, want) {
		t.Fatalf("%s on %s holds %v, want %v", subject, n.Name(), got, want)
	}
}

func payloads(tag string, from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("%s-%d", tag, i))
	}
	return out
}

// replicatedPair returns two meshed nodes replicating data.dog both ways;
// a also holds data.cat, which b does not.
func replicatedPair(t *testing.T) (a, b *node.Node) {
	t.Helper()
	nodes := settledMesh(t, "a", "b")
	a, b = nodes[0], nodes[1]
	for _, n := range nodes {
		nodetest.Op(t, n, "create_table", map[string]any{"table": "dog"})
	}
	nodetest.Op(t, a, "create_table", map[string]any{"table": "cat"})
	r := nodetest.Op(t, a, "add_node", map[string]any{"node_name": "b", "subscriptions": []any{
		map[string]any{"table": "dog", "subscribe": true, "publish": true},
	}})
	if r.Status != 200 {
		t.Fatalf("add_node: %s", r.Body)
	}
	return a, b
}

func TestPurgeStreamOptions(t *testing.T) {
	a, b := replicatedPair(t)
	publish(t, a, "data", "dog", 10, "a")
	publish(t, b, "data", "dog", 6, "b")
	publish(t, a, "data", "cat", 4, "c")
	nodetest.Eventually(t, 10*time.Second, "b's dogs on a", func() bool { return count(t, a, "txn.data.dog.b") == 6 })
	nodetest.Eventually(t, 10*time.Second, "a's dogs on b", func() bool { return count(t, b, "txn.data.dog.a") == 10 })

	// filter: only b's transactions of the table, on a only.
	purge(t, a, map[string]any{"table": "dog", "options": map[string]any{"filter": "txn.data.dog.b"}})
	wantPayloads(t, a, "txn.data.dog.b")
	wantPayloads(t, a, "txn.data.dog.a", payloads("a", 0, 10)...)
	wantPayloads(t, a, "txn.data.cat.a", payloads("c", 0, 4)...)
	wantPayloads(t, b, "txn.data.dog.b", payloads("b", 0, 6)...)
	wantPayloads(t, b, "txn.data.dog.a", payloads("a", 0, 10)...)

	// keep: the newest n of the table.
	purge(t, a, map[string]any{"schema": "data", "table": "dog", "options": map[string]any{"keep": 3}})
	wantPayloads(t, a, "txn.data.dog.*", payloads("a", 7, 10)...)
	wantPayloads(t, a, "txn.data.cat.a", payloads("c", 0, 4)...)

	// seq: everything of the table below a stream sequence (describe_all
	// says where the table's transactions are).
	d := nodetest.Op(t, a, "describe_all", "{}").JSON(t)
	first := uint64(d["data"].(map[string]any)["cat"].(map[string]any)["first_seq"].(float64))
	purge(t, a, map[string]any{"database": "data", "table": "cat", "options": map[string]any{"seq": first + 2}})
	wantPayloads(t, a, "txn.data.cat.a", payloads("c", 2, 4)...)
	wantPayloads(t, a, "txn.data.dog.*", payloads("a", 7, 10)...)

	// seq 0 and 1: nothing lies below them (JetStream alone would purge all).
	purge(t, a, map[string]any{"table": "cat", "options": map[string]any{"seq": 0}})
	purge(t, a, map[string]any{"table": "cat", "options": map[string]any{"seq": "1"}})
	wantPayloads(t, a, "txn.data.cat.a", payloads("c", 2, 4)...)

	// keep 0 and no option: all of the table.
	purge(t, a, map[string]any{"table": "cat", "options": map[string]any{"keep": 0}})
	wantPayloads(t, a, "txn.data.cat.a")
	purge(t, a, map[string]any{"table": "dog"})
	wantPayloads(t, a, "txn.data.dog.*")
	// b was never touched.
	wantPayloads(t, b, "txn.data.dog.a", payloads("a", 0, 10)...)
	wantPayloads(t, b, "txn.data.dog.b", payloads("b", 0, 6)...)

	// Replication keeps working both ways, and purged transactions stay
	// purged.
	publish(t, b, "data", "dog", 5, "b2")
	publish(t, a, "data", "dog", 2, "a2")
	nodetest.Eventually(t, 10*time.Second, "new dogs from b on a", func() bool { return count(t, a, "txn.data.dog.b") == 5 })
	nodetest.Eventually(t, 10*time.Second, "new dogs from a on b", func() bool { return count(t, b, "txn.data.dog.a") == 12 })
	wantPayloads(t, a, "txn.data.dog.b", payloads("b2", 0, 5)...)
	wantPayloads(t, a, "txn.data.dog.a", payloads("a2", 0, 2)...)
}

// laneSubjects returns the table subjects n's replication lanes carry: the
// filters of the consumers its stream's sources are bound to, read on the
// origins.
func laneSubjects(t *testing.T, n *node.Node) []string {
	t.Helper()
	s, err := jsFor(t, n).Stream(context.Background(), "txn")
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// Another node's JetStream API is clusterd's to reach, not an app's.
	nc := nodetest.Internal(t, n)
	var out []string
	for _, src := range info.Config.Sources {
		if src.External == nil || src.Consumer == nil {
			continue
		}
		m, err := nc.Request(src.External.APIPrefix+".CONSUMER.INFO.txn."+src.Consumer.Name, nil, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var ci jetstream.ConsumerInfo
		if err := json.Unmarshal(m.Data, &ci); err != nil {
			t.Fatal(err)
		}
		for _, f := range append(ci.Config.FilterSubjects, ci.Config.FilterSubject) {
			if strings.HasPrefix(f, "txn.") {
				out = append(out, f)
			}
		}
	}
	return out
}

// A lane resumes from the last transaction this node imported: JetStream
// keeps that position in an index, but rebuilds it from the stream's
// messages when the index is outdated (after a crash), and clusterd rebuilds
// a lane from them when its origin lost it (a restart). A purge that removed
// those messages must not make the node import the purged transactions
// again.
func TestPurgedTransactionsStayPurged(t *testing.T) {
	// Two tables subscribed together share one lane from a.
	cat := storage.TableKey{Database: "data", Table: "cat"}
	catSubject := "txn.data." + cat.Table + ".a"
	nodes := settledMesh(t, "a", "b")
	a, b := nodes[0], nodes[1]
	for _, n := range nodes {
		nodetest.Op(t, n, "create_table", map[string]any{"table": "dog"})
		nodetest.Op(t, n, "create_table", map[string]any{"table": cat.Table})
	}
	r := nodetest.Op(t, a, "add_node", map[string]any{"node_name": "b", "subscriptions": []any{
		map[string]any{"table": "dog", "subscribe": true, "publish": true},
		map[string]any{"table": cat.Table, "subscribe": true, "publish": true},
	}})
	if r.Status != 200 {
		t.Fatalf("add_node: %s", r.Body)
	}
	publish(t, a, "data", "dog", 20, "old")
	publish(t, a, "data", cat.Table, 5, "cat")
	nodetest.Eventually(t, 10*time.Second, "a's dogs and cats on b", func() bool {
		return count(t, b, "txn.data.dog.a") == 20 && count(t, b, catSubject) == 5
	})

	purge(t, b, map[string]any{"table": "dog"})
	wantPayloads(t, b, "txn.data.dog.a")
	// cat leaves the lane: dog goes on alone, with no message left here to
	// resume from.
	r = nodetest.Op(t, b, "update_node", map[string]any{"node_name": "a", "subscriptions": []any{
		map[string]any{"table": cat.Table, "subscribe": false, "publish": false},
	}})
	if r.Status != 200 {
		t.Fatalf("update_node: %s", r.Body)
	}
	nodetest.Eventually(t, 10*time.Second, "the lane without "+cat.Table, func() bool {
		subjects := laneSubjects(t, b)
		return len(subjects) == 1 && subjects[0] == "txn.data.dog.a"
	})
	publish(t, a, "data", "dog", 2, "new")
	nodetest.Eventually(t, 10*time.Second, "new dogs on b", func() bool { return count(t, b, "txn.data.dog.a") >= 2 })
	wantPayloads(t, b, "txn.data.dog.a", payloads("new", 0, 2)...)

	// And across restarts of either node (a restarted origin makes b
	// recreate its sources from what it received).
	for _, which := range []string{"b", "a"} {
		n := b
		if which == "a" {
			n = a
		}
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
		n = nodetest.Start(t, n.Config)
		if which == "a" {
			a = n
			// a's ports changed; b's stored route still names the old one.
			if r := nodetest.Op(t, b, "cluster_set_routes", map[string]any{"server": "hub", "routes": []any{nodetest.ClusterRoute(a)}}); r.Status != 200 {
				t.Fatalf("set routes: %s", r.Body)
			}
		} else {
			b = n
		}
		nodetest.Eventually(t, 10*time.Second, which+" back in the mesh", func() bool {
			return len(a.Servers.RoutedPeers()) == 1 && len(b.Servers.RoutedPeers()) == 1
		})
	}
	publish(t, a, "data", "dog", 3, "newer")
	nodetest.Eventually(t, 20*time.Second, "newer dogs on b", func() bool { return count(t, b, "txn.data.dog.a") >= 5 })
	time.Sleep(300 * time.Millisecond) // anything wrongly re-imported would arrive with them
	wantPayloads(t, b, "txn.data.dog.a", append(payloads("new", 0, 2), payloads("newer", 0, 3)...)...)
	wantPayloads(t, b, catSubject, payloads("cat", 0, 5)...)
}
