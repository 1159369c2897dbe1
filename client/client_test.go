package client_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clusterd/clusterd/auth"
	"github.com/clusterd/clusterd/client"
	"github.com/clusterd/clusterd/node"
	"github.com/clusterd/clusterd/node/nodetest"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

var ctx = context.Background()

// admin is a super_user client of n on its own leaf port.
func admin(t *testing.T, n *node.Node, opts ...client.Option) *client.Client {
	t.Helper()
	return client.New(nodetest.Connect(t, n), append([]client.Option{client.WithIssuerKey(n.IssuerKey(), "admin", "super_user", time.Hour)}, opts...)...)
}

// meshOf starts nodes sharing one issuer key (a token works on all of them)
// whose hubs route to the first one, and waits until each node answers
// requests addressed to every other.
func meshOf(t *testing.T, names ...string) []*node.Node {
	t.Helper()
	key := filepath.Join(t.TempDir(), "issuer.key")
	var nodes []*node.Node
	for _, name := range names {
		cfg := nodetest.Config(t, name)
		cfg.Auth.IssuerKeyFile = key
		nodes = append(nodes, nodetest.Start(t, cfg))
	}
	for _, n := range nodes[1:] {
		p := nodes[0].Servers.Ports().Cluster
		if _, err := admin(t, n).SetRoutes(ctx, client.SetRoutesRequest{Server: client.Hub, Routes: []client.Route{{Host: "127.0.0.1", Port: p}}}); err != nil {
			t.Fatal(err)
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
	for _, from := range nodes {
		c := admin(t, from)
		for _, to := range nodes {
			nodetest.Eventually(t, 5*time.Second, from.Name()+" reaches "+to.Name()+" by name", func() bool {
				_, err := c.OnNode(to.Name()).GetRoutes(ctx)
				return err == nil
			})
		}
	}
	return nodes
}

// statusOf asserts err is a *client.Error with status and message.
func statusOf(t *testing.T, err error, status int, message string) *client.Error {
	t.Helper()
	var e *client.Error
	if !errors.As(err, &e) {
		t.Fatalf("want *client.Error %d %q, got %T %v", status, message, err, err)
	}
	if e.Status != status || e.Message != message {
		t.Fatalf("got %d %q, want %d %q", e.Status, e.Message, status, message)
	}
	if e.Body["error"] != message {
		t.Fatalf("body %v does not carry the message", e.Body)
	}
	if client.StatusOf(err) != status {
		t.Fatalf("StatusOf = %d", client.StatusOf(err))
	}
	return e
}

// requireOp fails the test when n does not serve op: a dropped operation must
// fail its test, never skip it.
func requireOp(t *testing.T, n *node.Node, op string) {
	t.Helper()
	for _, o := range n.Ops.Operations() {
		if o.Name == op {
			return
		}
	}
	t.Fatalf("node %s does not serve %s", n.Name(), op)
}

func TestRoutes(t *testing.T) {
	n := nodetest.StartNamed(t, "r1")
	c := admin(t, n)
	dead := client.Route{Host: "127.0.0.1", Port: 9}
	set, err := c.SetRoutes(ctx, client.SetRoutesRequest{Server: client.Hub, Routes: []client.Route{dead}})
	if err != nil {
		t.Fatal(err)
	}
	want := client.SetRoutesReply{Message: "cluster routes successfully set", Set: []client.Route{dead}, Skipped: []client.Route{}}
	if !reflect.DeepEqual(set, want) {
		t.Fatalf("SetRoutes = %+v, want %+v", set, want)
	}
	leaf := client.Route{Host: "127.0.0.1", Port: 10}
	if set, err = c.SetRoutes(ctx, client.SetRoutesRequest{Server: client.Leaf, Routes: []client.Route{dead, leaf}}); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(set.Set, []client.Route{leaf}) || !reflect.DeepEqual(set.Skipped, []client.Route{dead}) {
		t.Fatalf("upsert: %+v", set)
	}
	got, err := c.GetRoutes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, client.GetRoutesReply{Hub: []client.Route{dead}, Leaf: []client.Route{leaf}}) {
		t.Fatalf("GetRoutes = %+v", got)
	}
	del, err := c.DeleteRoutes(ctx, client.DeleteRoutesRequest{Routes: []client.Route{dead, leaf, {Host: "127.0.0.1", Port: 11}}})
	if err != nil {
		t.Fatal(err)
	}
	if del.Message != "cluster routes successfully deleted" || len(del.Deleted) != 2 || !reflect.DeepEqual(del.Skipped, []client.Route{{Host: "127.0.0.1", Port: 11}}) {
		t.Fatalf("DeleteRoutes = %+v", del)
	}
	if got, _ = c.GetRoutes(ctx); got.Hub == nil || got.Leaf == nil || len(got.Hub)+len(got.Leaf) != 0 {
		t.Fatalf("after delete: %+v (want empty, non-nil lists)", got)
	}

	_, err = c.SetRoutes(ctx, client.SetRoutesRequest{})
	statusOf(t, err, 400, "'server' is not allowed to be empty. 'routes' is required")
	_, err = c.DeleteRoutes(ctx, client.DeleteRoutesRequest{Routes: []client.Route{{Host: "", Port: -1}}})
	statusOf(t, err, 400, "'routes[0].host' is not allowed to be empty. 'routes[0].port' must be greater than or equal to 0")
}

// A client on one node's connection reaches another node by name, and
// without WithNode reaches only its own.
func TestNodeAddressedThroughTheMesh(t *testing.T) {
	nodes := meshOf(t, "a", "b")
	a := admin(t, nodes[0])
	b := a.OnNode("b")
	if b.Node() != "b" || a.Node() != "" || b.Subject("describe_all") != "ops.node.b.cluster.describe_all" || a.Subject("describe_all") != "ops.cluster.describe_all" {
		t.Fatalf("subjects: %q %q", a.Subject("describe_all"), b.Subject("describe_all"))
	}
	if _, err := b.CreateTable(ctx, client.CreateTableRequest{Database: "dev", Table: "dog"}); err != nil {
		t.Fatal(err)
	}
	onB, err := b.DescribeAll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := onB["dev"]["dog"]; !ok {
		t.Fatalf("b does not hold dev.dog: %+v", onB)
	}
	onA, err := a.DescribeAll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(onA) != 0 {
		t.Fatalf("the table was created on a too: %+v", onA)
	}
	// The same with WithNode, and a route set on b from a's connection.
	// (b's own client connects first: nats-server re-reads its users on every
	// reload, and a client connecting meanwhile can be refused.)
	bAdmin := admin(t, nodes[1])
	viaOption := admin(t, nodes[0], client.WithNode("b"))
	if _, err := viaOption.SetRoutes(ctx, client.SetRoutesRequest{Server: client.Leaf, Routes: []client.Route{{Host: "127.0.0.1", Port: 9}}}); err != nil {
		t.Fatal(err)
	}
	if r, err := bAdmin.GetRoutes(ctx); err != nil || len(r.Leaf) != 1 {
		t.Fatalf("b's routes: %+v %v", r, err)
	}
	if r, err := a.GetRoutes(ctx); err != nil || len(r.Leaf) != 0 {
		t.Fatalf("a's routes changed: %+v %v", r, err)
	}
}

func TestTables(t *testing.T) {
	n := nodetest.StartNamed(t, "t1")
	c := admin(t, n)
	for range 2 { // idempotent
		rep, err := c.CreateTable(ctx, client.CreateTableRequest{Database: "dev", Table: "dog"})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Message != "table 'dev.dog' successfully created." {
			t.Fatalf("CreateTable = %+v", rep)
		}
	}
	if rep, err := c.CreateTable(ctx, client.CreateTableRequest{Table: "cat"}); err != nil || rep.Message != "table 'data.cat' successfully created." {
		t.Fatalf("CreateTable default database: %+v %v", rep, err)
	}
	all, err := c.DescribeAll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := client.DescribeAllReply{
		"dev":  {"dog": {Stream: "txn", FilterSubject: "txn.dev.dog.*"}},
		"data": {"cat": {Stream: "txn", FilterSubject: "txn.data.cat.*"}},
	}
	if !reflect.DeepEqual(all, want) {
		t.Fatalf("DescribeAll = %+v, want %+v", all, want)
	}
	_, err = c.CreateTable(ctx, client.CreateTableRequest{Database: "a.b"})
	statusOf(t, err, 400, "'database' invalid, must not contain ., *, > or whitespace. 'table' is not allowed to be empty")
}

func TestNodeOperations(t *testing.T) {
	nodes := meshOf(t, "a", "b")
	a, b := admin(t, nodes[0]), admin(t, nodes[1])
	for _, c := range []*client.Client{a, b} {
		if _, err := c.CreateTable(ctx, client.CreateTableRequest{Database: "dev", Table: "dog"}); err != nil {
			t.Fatal(err)
		}
	}
	dog := client.Subscription{Database: "dev", Table: "dog", Subscribe: true, Publish: true}
	added, err := a.AddNode(ctx, client.NodeRequest{NodeName: "b", Subscriptions: []client.Subscription{dog}})
	if err != nil {
		t.Fatal(err)
	}
	if added.Message != "Successfully added 'b' to manifest" || len(added.Added) != 1 || len(added.Skipped) != 0 {
		t.Fatalf("AddNode = %+v", added)
	}
	if s := added.Added[0]; s.Database != "dev" || s.Schema != "dev" || s.Table != "dog" || !s.Subscribe || !s.Publish {
		t.Fatalf("added subscription = %+v", s)
	}
	_, err = a.AddNode(ctx, client.NodeRequest{NodeName: "b", Subscriptions: []client.Subscription{dog}})
	statusOf(t, err, 400, "Node 'b' has already been added, perform update_node to proceed.")
	_, err = a.AddNode(ctx, client.NodeRequest{NodeName: "b", Subscriptions: []client.Subscription{{Table: "dog"}}})
	statusOf(t, err, 400, "'subscriptions[0]' subscribe and/or publish must be set to true when adding a node")

	publishOnly := dog
	publishOnly.Subscribe = false
	up, err := a.UpdateNode(ctx, client.NodeRequest{NodeName: "b", Subscriptions: []client.Subscription{publishOnly}})
	if err != nil {
		t.Fatal(err)
	}
	if up.Message != "Successfully updated 'b'" || len(up.Updated) != 1 || up.Updated[0].Subscribe || !up.Updated[0].Publish {
		t.Fatalf("UpdateNode = %+v", up)
	}
	start := time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC)
	again := dog
	again.StartTime = &start
	up, err = a.SetNodeReplication(ctx, client.NodeRequest{NodeName: "b", Subscriptions: []client.Subscription{again, {Database: "dev", Table: "nowhere", Subscribe: true}}})
	if err != nil {
		t.Fatal(err)
	}
	if up.Message != "Some subscriptions were unsuccessful due to schema and/or tables not existing on the local or remote node" ||
		len(up.Updated) != 1 || up.Updated[0].StartTime == nil || !up.Updated[0].StartTime.Equal(start) ||
		len(up.Skipped) != 1 || up.Skipped[0].Table != "nowhere" {
		t.Fatalf("SetNodeReplication = %+v", up)
	}

	rm, err := b.RemoveNode(ctx, client.RemoveNodeRequest{NodeName: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if rm.Message != "Successfully removed 'a' from manifest" {
		t.Fatalf("RemoveNode = %+v", rm)
	}
	// b told a: a no longer knows b.
	_, err = a.RemoveNode(ctx, client.RemoveNodeRequest{NodeName: "b"})
	statusOf(t, err, 400, "Node 'b' was not found.")
	_, err = a.RemoveNode(ctx, client.RemoveNodeRequest{})
	statusOf(t, err, 400, "'node_name' is not allowed to be empty")

	_, err = a.AddNode(ctx, client.NodeRequest{NodeName: "ghost", Subscriptions: []client.Subscription{dog}})
	statusOf(t, err, 500, "Unable to add_node, node 'ghost' is not listening.")
}

func TestConfigureCluster(t *testing.T) {
	nodes := meshOf(t, "a", "b", "c")
	a := admin(t, nodes[0])
	for _, n := range nodes {
		if _, err := admin(t, n).CreateTable(ctx, client.CreateTableRequest{Table: "dog"}); err != nil {
			t.Fatal(err)
		}
	}
	dog := []client.Subscription{{Table: "dog", Subscribe: true, Publish: true}}
	rep, err := a.ConfigureCluster(ctx, client.ConfigureClusterRequest{Connections: []client.NodeRequest{{NodeName: "b", Subscriptions: dog}, {NodeName: "c", Subscriptions: dog}}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Message != "Configure cluster complete." || len(rep.Connections) != 2 || rep.FailedNodes != nil {
		t.Fatalf("ConfigureCluster = %+v", rep)
	}
	for i, name := range []string{"b", "c"} {
		if c := rep.Connections[i]; c.NodeName != name || c.Response.Message != "Successfully added '"+name+"' to manifest" || len(c.Response.Added) != 1 {
			t.Fatalf("connection %d = %+v", i, c)
		}
	}

	rep, err = a.ConfigureCluster(ctx, client.ConfigureClusterRequest{Connections: []client.NodeRequest{{NodeName: "b", Subscriptions: dog}, {NodeName: "ghost", Subscriptions: dog}}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Message != "Configure cluster was partially successful. Errors occurred when attempting to configure the following nodes. Check the logs for more details." ||
		!reflect.DeepEqual(rep.FailedNodes, []string{"ghost"}) || len(rep.Connections) != 1 {
		t.Fatalf("partial ConfigureCluster = %+v", rep)
	}

	_, err = a.ConfigureCluster(ctx, client.ConfigureClusterRequest{Connections: []client.NodeRequest{{NodeName: "ghost", Subscriptions: dog}}})
	e := statusOf(t, err, 500, "Failed to configure the cluster. Check the logs for more details.")
	if !reflect.DeepEqual(e.Body["failed_nodes"], []any{"ghost"}) {
		t.Fatalf("failed ConfigureCluster body = %v", e.Body)
	}

	rep, err = a.ConfigureCluster(ctx, client.ConfigureClusterRequest{}) // nil connections: remove everyone
	if err != nil {
		t.Fatal(err)
	}
	if rep.Message != "Configure cluster complete." || rep.Connections == nil || len(rep.Connections) != 0 {
		t.Fatalf("empty ConfigureCluster = %+v", rep)
	}
	_, err = a.RemoveNode(ctx, client.RemoveNodeRequest{NodeName: "b"})
	statusOf(t, err, 400, "Node 'b' was not found.")
}

func TestErrors(t *testing.T) {
	n := nodetest.StartNamed(t, "e1")
	nc := nodetest.Connect(t, n)

	_, err := client.New(nc).GetRoutes(ctx)
	statusOf(t, err, 401, "Must login")
	_, err = client.New(nc, client.WithToken("not-a-jwt")).GetRoutes(ctx)
	statusOf(t, err, 401, "Unauthorized: token is malformed (expected a signed JWT: header.payload.signature)")
	foreignPub, foreign, _ := ed25519.GenerateKey(rand.Reader)
	_, err = client.New(nc, client.WithIssuerKey(foreign, "admin", "super_user", time.Hour)).GetRoutes(ctx)
	statusOf(t, err, 401, "Unauthorized: token issuer "+auth.IssuerID(foreignPub)+" is not trusted (trusted: "+auth.IssuerID(n.IssuerKey().Public().(ed25519.PublicKey))+")")

	tok, err := n.Token("bob", "cluster_user", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	_, err = client.New(nc, client.WithToken(tok)).AddNode(ctx, client.NodeRequest{NodeName: "x"})
	e := statusOf(t, err, 403, "This operation is not authorized due to role restrictions and/or invalid database items")
	if !reflect.DeepEqual(e.Body["unauthorized_access"], []any{"Operation 'addNode' is restricted to 'super_user' roles"}) ||
		!reflect.DeepEqual(e.Body["invalid_schema_items"], []any{}) || e.Op != "add_node" {
		t.Fatalf("403 = %+v", e)
	}
	if got := e.Error(); got != "clusterd add_node: 403 This operation is not authorized due to role restrictions and/or invalid database items" {
		t.Fatalf("Error() = %q", got)
	}

	c := admin(t, n)
	_, err = c.AddNode(ctx, client.NodeRequest{Subscriptions: []client.Subscription{}})
	statusOf(t, err, 400, "'node_name' is not allowed to be empty. 'subscriptions' must contain at least 1 items")
	err = c.Call(ctx, "no_such_operation", nil, nil)
	statusOf(t, err, 400, "Operation 'no_such_operation' not found")

	// No reply at all: the transport error, wrapped.
	_, err = c.OnNode("ghost").GetRoutes(ctx)
	if !errors.Is(err, nats.ErrNoResponders) || client.StatusOf(err) != 0 {
		t.Fatalf("ghost node: %v", err)
	}
	dctx, cancel := context.WithDeadline(ctx, time.Now().Add(-time.Second))
	defer cancel()
	if _, err = c.GetRoutes(dctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("expired context: %v", err)
	}
	boom := errors.New("vault sealed")
	_, err = client.New(nc, client.WithTokenSource(func(context.Context) (string, error) { return "", boom })).GetRoutes(ctx)
	if !errors.Is(err, boom) {
		t.Fatalf("token source error: %v", err)
	}
}

func TestTokenSources(t *testing.T) {
	n := nodetest.StartNamed(t, "k1")
	nc := nodetest.Connect(t, n)
	var mu sync.Mutex
	calls := 0
	src := func(context.Context) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		return n.Token("admin", "super_user", time.Minute)
	}
	c := client.New(nc, client.WithTokenSource(src))
	for range 3 {
		if _, err := c.GetRoutes(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if calls != 3 {
		t.Fatalf("token source called %d times for 3 requests", calls)
	}

	now := time.Now()
	clock := func() time.Time { return now }
	minted := 0
	mint := client.NewMinter(time.Hour, clock, func() (string, error) {
		minted++
		return n.Token("admin", "super_user", time.Hour)
	})
	for _, step := range []time.Duration{0, 44 * time.Minute, 2 * time.Minute, time.Minute} {
		now = now.Add(step)
		if _, err := mint(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// Minted at 0, reused at 44m, renewed at 46m (less than a quarter of
	// the hour left), reused at 47m.
	if minted != 2 {
		t.Fatalf("minted %d tokens, want 2", minted)
	}
	if _, err := client.New(nc, client.WithTokenSource(mint)).GetRoutes(ctx); err != nil {
		t.Fatalf("minted token refused: %v", err)
	}
}

// waitTxns collects what a consumer delivers until it holds want messages.
func waitTxns(t *testing.T, cons jetstream.Consumer, want int) []client.Transaction {
	t.Helper()
	var got []client.Transaction
	deadline := time.Now().Add(10 * time.Second)
	for len(got) < want {
		if time.Now().After(deadline) {
			t.Fatalf("got %d transactions, want %d", len(got), want)
		}
		batch, err := cons.FetchNoWait(want - len(got))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			tx, err := client.TransactionOf(m)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, tx)
		}
		if batch.Error() != nil {
			t.Fatal(batch.Error())
		}
		if len(got) < want {
			time.Sleep(20 * time.Millisecond)
		}
	}
	return got
}

func describe(txns []client.Transaction) []string {
	var out []string
	for _, x := range txns {
		out = append(out, fmt.Sprintf("%s.%s@%s:%s", x.Database, x.Table, x.Origin, x.Data))
	}
	return out
}

func TestTransactions(t *testing.T) {
	nodes := meshOf(t, "a", "b")
	a, b := admin(t, nodes[0]), admin(t, nodes[1])
	for _, c := range []*client.Client{a, b} {
		if _, err := c.CreateTable(ctx, client.CreateTableRequest{Database: "dev", Table: "dog"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.AddNode(ctx, client.NodeRequest{NodeName: "b", Subscriptions: []client.Subscription{{Database: "dev", Table: "dog", Subscribe: true, Publish: true}}}); err != nil {
		t.Fatal(err)
	}
	ta, err := a.Transactions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tb, err := b.Transactions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ta.Node() != "a" || tb.Node() != "b" || ta.Subject("", "dog") != "txn.data.dog.a" {
		t.Fatalf("nodes %q %q, subject %q", ta.Node(), tb.Node(), ta.Subject("", "dog"))
	}

	// A callback subscription on a sees a's and b's writes.
	var mu sync.Mutex
	var seen []string
	sub, err := ta.Subscribe(ctx, "dev", "dog", func(x client.Transaction) {
		mu.Lock()
		seen = append(seen, x.Origin+":"+string(x.Data))
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop()

	for i := range 3 {
		ack, err := ta.Publish(ctx, "dev", "dog", []byte(fmt.Sprintf("a%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		if ack.Stream != "txn" || ack.Domain != "a" {
			t.Fatalf("ack = %+v", ack)
		}
	}
	msg := nats.NewMsg("")
	msg.Data = []byte("b0")
	msg.Header.Set("Op", "upsert")
	if _, err := tb.PublishMsg(ctx, "dev", "dog", msg, jetstream.WithMsgID("b0")); err != nil {
		t.Fatal(err)
	}
	// A connection to a cannot write as b (nor reach b's JetStream): each
	// node's clients write their own node's transactions only.
	if _, err := a.OnNode("b").Transactions(ctx); err == nil || !strings.Contains(err.Error(), "node b are written and read on its own leaf client port") {
		t.Fatalf("transactions of b through a: %v", err)
	}
	js, _ := jetstream.NewWithDomain(a.Conn(), "b")
	if ack, err := js.Publish(ctx, "txn.dev.dog.b", []byte("forged")); err == nil {
		t.Fatalf("publish on b through a was acknowledged: %+v", ack)
	}
	if self, err := a.OnNode("a").Transactions(ctx); err != nil || self.Node() != "a" {
		t.Fatalf("transactions of a, named: %v", err)
	}
	if _, err := tb.Publish(ctx, "dev", "dog", []byte("b1")); err != nil {
		t.Fatal(err)
	}

	cons, err := tb.Consumer(ctx, "dev", "dog")
	if err != nil {
		t.Fatal(err)
	}
	got := waitTxns(t, cons, 5)
	origins := map[string][]string{}
	for _, x := range got {
		origins[x.Origin] = append(origins[x.Origin], string(x.Data))
		if x.Seq == 0 || x.Time.IsZero() {
			t.Fatalf("transaction without position: %+v", x)
		}
	}
	if !slices.Equal(origins["a"], []string{"a0", "a1", "a2"}) || !slices.Equal(origins["b"], []string{"b0", "b1"}) {
		t.Fatalf("b holds %v", describe(got))
	}
	for _, x := range got {
		if string(x.Data) == "b0" && x.Header.Get("Op") != "upsert" {
			t.Fatalf("header lost: %+v", x)
		}
	}
	nodetest.Eventually(t, 10*time.Second, "a's subscription sees all 5", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) == 5
	})
	mu.Lock()
	if !slices.Contains(seen, "b:b1") || !slices.Contains(seen, "a:a2") {
		t.Fatalf("a saw %v", seen)
	}
	mu.Unlock()

	// b's read, filtered to a's writes, from the second of them.
	onlyA, err := tb.Consumer(ctx, "dev", "dog", client.FromOrigin("a"))
	if err != nil {
		t.Fatal(err)
	}
	fromA := waitTxns(t, onlyA, 3)
	if d := describe(fromA); !slices.Equal(d, []string{"dev.dog@a:a0", "dev.dog@a:a1", "dev.dog@a:a2"}) {
		t.Fatalf("FromOrigin(a) on b: %v", d)
	}
	later, err := tb.Consumer(ctx, "dev", "dog", client.FromSequence(fromA[1].Seq), client.FromOrigin("a"))
	if err != nil {
		t.Fatal(err)
	}
	if d := describe(waitTxns(t, later, 2)); !slices.Equal(d, []string{"dev.dog@a:a1", "dev.dog@a:a2"}) {
		t.Fatalf("FromSequence: %v", d)
	}
	newOnly, err := ta.Consumer(ctx, "dev", "dog", client.OnlyNew())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ta.Publish(ctx, "dev", "dog", []byte("a3")); err != nil {
		t.Fatal(err)
	}
	if d := describe(waitTxns(t, newOnly, 1)); !slices.Equal(d, []string{"dev.dog@a:a3"}) {
		t.Fatalf("OnlyNew: %v", d)
	}
	since, err := ta.Consumer(ctx, "dev", "dog", client.FromTime(got[len(got)-1].Time.Add(time.Hour)))
	if err != nil {
		t.Fatal(err)
	}
	if b, err := since.FetchNoWait(10); err != nil || len(collect(b)) != 0 {
		t.Fatalf("FromTime in the future delivered something (%v)", err)
	}

	if _, err := ta.Consumer(ctx, "dev", "cat"); !errors.Is(err, client.ErrTableNotFound) {
		t.Fatalf("unknown table: %v", err)
	}
}

func collect(b jetstream.MessageBatch) []jetstream.Msg {
	var out []jetstream.Msg
	for m := range b.Messages() {
		out = append(out, m)
	}
	return out
}

// Transactions refuses a connection whose JetStream is not a clusterd node's.
func TestTransactionsNeedsAClusterdNode(t *testing.T) {
	// A NATS server with JetStream but no domain, as a plain deployment has.
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: t.TempDir(), NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	defer srv.Shutdown()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := client.New(nc, client.WithTimeout(time.Second)).Transactions(ctx); err == nil {
		t.Fatal("Transactions on a server without a clusterd domain succeeded")
	}
}

// Every operation a node serves has a typed method, named after it.
func TestEveryOperationHasAMethod(t *testing.T) {
	n := nodetest.StartNamed(t, "m1")
	ct := reflect.TypeOf(&client.Client{})
	for _, op := range n.Ops.Operations() {
		name := ""
		for _, w := range strings.Split(op.Name, "_") {
			name += strings.ToUpper(w[:1]) + w[1:]
		}
		if _, ok := ct.MethodByName(name); ok {
			continue
		}
		if _, ok := ct.MethodByName(strings.TrimPrefix(name, "Cluster")); !ok {
			t.Errorf("operation %s has no client method %s", op.Name, name)
		}
	}
}

func TestClusterStatus(t *testing.T) {
	nodes := meshOf(t, "a", "b")
	requireOp(t, nodes[0], "cluster_status")
	a := admin(t, nodes[0])
	for _, n := range nodes {
		if _, err := admin(t, n).CreateTable(ctx, client.CreateTableRequest{Table: "dog"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.AddNode(ctx, client.NodeRequest{NodeName: "b", Subscriptions: []client.Subscription{{Table: "dog", Subscribe: true, Publish: true}}}); err != nil {
		t.Fatal(err)
	}
	var st client.ClusterStatusReply
	nodetest.Eventually(t, 10*time.Second, "b open and converged in a's status", func() bool {
		var err error
		if st, err = a.ClusterStatus(ctx); err != nil {
			t.Fatal(err)
		}
		return len(st.Connections) == 1 && st.Connections[0].Status == client.StatusOpen &&
			len(st.Connections[0].Subscriptions) == 1 && st.Connections[0].Subscriptions[0].Converged
	})
	c := st.Connections[0]
	if st.NodeName != "a" || !st.IsEnabled || c.NodeName != "b" || c.Ports.Clustering != nodes[1].Servers.Ports().Cluster ||
		c.Ports.OperationsAPI != nodes[1].HTTPPort() || c.SystemInfo == nil || c.SystemInfo.Version != node.Version || c.Uptime == "" || c.LatencyMS == nil {
		t.Fatalf("ClusterStatus = %+v", st)
	}
	if s := c.Subscriptions[0]; s.Table != "dog" || s.Database != "data" || !s.Subscribe || !s.Publish || s.Lag == nil {
		t.Fatalf("subscription status = %+v", s)
	}
}

func TestClusterNetwork(t *testing.T) {
	nodes := meshOf(t, "a", "b")
	requireOp(t, nodes[0], "cluster_network")
	a := admin(t, nodes[0])
	net, err := a.ClusterNetwork(ctx, client.ClusterNetworkRequest{Timeout: 3000})
	if err != nil {
		t.Fatal(err)
	}
	if len(net.Nodes) != 2 || net.Nodes[0].Name != "a" || net.Nodes[1].Name != "b" ||
		!slices.Equal(net.Nodes[0].ConnectedNodes, []string{"b"}) || net.Nodes[1].Routes == nil {
		t.Fatalf("ClusterNetwork = %+v", net)
	}
	net, err = a.ClusterNetwork(ctx, client.ClusterNetworkRequest{ConnectedNodes: client.Bool(false), Routes: client.Bool(false)})
	if err != nil {
		t.Fatal(err)
	}
	for _, nn := range net.Nodes {
		if nn.ConnectedNodes != nil || nn.Routes != nil {
			t.Fatalf("flags off, still got %+v", nn)
		}
	}
	_, err = a.ClusterNetwork(ctx, client.ClusterNetworkRequest{Timeout: -5})
	statusOf(t, err, 400, "'timeout' must be greater than or equal to 1")
}

func TestPurgeStream(t *testing.T) {
	n := nodetest.StartNamed(t, "p1")
	requireOp(t, n, "purge_stream")
	c := admin(t, n)
	for _, tbl := range []string{"dog", "cat"} {
		if _, err := c.CreateTable(ctx, client.CreateTableRequest{Database: "dev", Table: tbl}); err != nil {
			t.Fatal(err)
		}
	}
	tx, err := c.Transactions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		for _, tbl := range []string{"dog", "cat"} {
			if _, err := tx.Publish(ctx, "dev", tbl, []byte(fmt.Sprint(i))); err != nil {
				t.Fatal(err)
			}
		}
	}
	rep, err := c.PurgeStream(ctx, client.PurgeStreamRequest{Database: "dev", Table: "dog", Options: &client.PurgeOptions{Keep: client.Uint(1)}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Message != "Successfully purged table 'dev.dog'" {
		t.Fatalf("PurgeStream = %+v", rep)
	}
	all, err := c.DescribeAll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if all["dev"]["dog"].Messages != 1 || all["dev"]["cat"].Messages != 4 {
		t.Fatalf("after purge: %+v", all)
	}
	_, err = c.PurgeStream(ctx, client.PurgeStreamRequest{Database: "dev", Table: "dog", Options: &client.PurgeOptions{Keep: client.Uint(1), Seq: client.Uint(2)}})
	statusOf(t, err, 400, "can specify one of keep or seq")
	_, err = c.PurgeStream(ctx, client.PurgeStreamRequest{Database: "dev", Table: "cow"})
	statusOf(t, err, 400, "Table 'cow' does not exist")
}
