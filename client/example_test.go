package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/clusterd/clusterd/client"
	"github.com/clusterd/clusterd/node"
	"github.com/nats-io/nats.go"
)

// The examples run against real nodes: embedded servers on 127.0.0.1 with
// free ports, state in a temporary directory.

type exampleCluster struct {
	dir   string
	nodes []*node.Node
	conns []*nats.Conn
}

// startNodes starts nodes sharing one issuer key and cluster password, and
// meshes them (each node's hub routes to the first one's).
func startNodes(names ...string) *exampleCluster {
	dir, err := os.MkdirTemp("", "clusterd-example-")
	if err != nil {
		log.Fatal(err)
	}
	ec := &exampleCluster{dir: dir}
	for _, name := range names {
		cfg := node.Default()
		cfg.RootPath = filepath.Join(dir, name)
		cfg.Auth.IssuerKeyFile = filepath.Join(dir, "issuer.key")
		cfg.Clustering.NodeName = name
		cfg.Clustering.Password = "example-cluster-secret"
		// A data service's own NATS user (never the cluster secret).
		cfg.Clustering.LeafServer.Users = []node.LeafUser{{User: "orders", Password: "orders-secret"}}
		cfg.OperationsAPI.Network.Port = 0
		cfg.Clustering.HubServer.Network.Port = 0
		cfg.Clustering.HubServer.LeafNodes.Network.Port = 0
		cfg.Clustering.HubServer.Cluster.Network.Port = 0
		cfg.Clustering.LeafServer.Network.Port = 0
		n, err := node.Start(context.Background(), cfg, node.Options{})
		if err != nil {
			log.Fatal(err)
		}
		ec.nodes = append(ec.nodes, n)
	}
	first := ec.nodes[0]
	for _, n := range ec.nodes[1:] {
		c := client.New(ec.connect(n), client.WithIssuerKey(n.IssuerKey(), "admin", "super_user", time.Hour))
		route := client.Route{Host: "127.0.0.1", Port: first.Servers.Ports().Cluster}
		if _, err := c.SetRoutes(context.Background(), client.SetRoutesRequest{Server: client.Hub, Routes: []client.Route{route}}); err != nil {
			log.Fatal(err)
		}
	}
	// Wait until every node answers requests addressed to every other.
	for _, from := range ec.nodes {
		c := client.New(ec.connect(from), client.WithIssuerKey(from.IssuerKey(), "admin", "super_user", time.Hour))
		for _, to := range ec.nodes {
			waitFor(func() bool { _, err := c.OnNode(to.Name()).GetRoutes(context.Background()); return err == nil })
		}
	}
	return ec
}

// connect connects to n's leaf client port as the service user.
func (ec *exampleCluster) connect(n *node.Node) *nats.Conn {
	nc, err := nats.Connect(n.LeafURL(), nats.UserInfo("orders", "orders-secret"))
	if err != nil {
		log.Fatal(err)
	}
	ec.conns = append(ec.conns, nc)
	return nc
}

func (ec *exampleCluster) stop() {
	for _, nc := range ec.conns {
		nc.Close()
	}
	for _, n := range ec.nodes {
		_ = n.Close()
	}
	_ = os.RemoveAll(ec.dir)
}

func waitFor(cond func() bool) {
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			log.Fatal("timed out")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A client on a node's leaf client port, minting super_user tokens with the
// node's issuer key.
func Example() {
	ec := startNodes("node1")
	defer ec.stop()
	n := ec.nodes[0]
	nc, err := nats.Connect(n.LeafURL(), nats.UserInfo("orders", "orders-secret"))
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()

	c := client.New(nc, client.WithIssuerKey(n.IssuerKey(), "admin", "super_user", time.Hour))
	ctx := context.Background()
	created, err := c.CreateTable(ctx, client.CreateTableRequest{Database: "dev", Table: "dog"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(created.Message)
	tables, err := c.DescribeAll(ctx)
	if err != nil {
		log.Fatal(err)
	}
	dog := tables["dev"]["dog"]
	fmt.Println("read it from stream", dog.Stream, "with filter", dog.FilterSubject)
	// Output:
	// table 'dev.dog' successfully created.
	// read it from stream txn with filter txn.dev.dog.*
}

// A fixed token, e.g. printed by `clusterd token --role super_user --user admin`.
func ExampleWithToken() {
	ec := startNodes("node1")
	defer ec.stop()
	n := ec.nodes[0]
	token, err := n.Token("admin", "super_user", time.Hour) // what `clusterd token` prints
	if err != nil {
		log.Fatal(err)
	}
	c := client.New(ec.connect(n), client.WithToken(token))
	routes, err := c.GetRoutes(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("hub=%v leaf=%v\n", routes.Hub, routes.Leaf)
	// Output: hub=[] leaf=[]
}

func ExampleClient_SetRoutes() {
	ec := startNodes("node1")
	defer ec.stop()
	n := ec.nodes[0]
	c := client.New(ec.connect(n), client.WithIssuerKey(n.IssuerKey(), "admin", "super_user", time.Hour))
	ctx := context.Background()
	route := client.Route{Host: "127.0.0.1", Port: 9}
	for range 2 {
		rep, err := c.SetRoutes(ctx, client.SetRoutesRequest{Server: client.Hub, Routes: []client.Route{route}})
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s: set %v, skipped %v\n", rep.Message, rep.Set, rep.Skipped)
	}
	// Output:
	// cluster routes successfully set: set [{127.0.0.1 9}], skipped []
	// cluster routes successfully set: set [], skipped [{127.0.0.1 9}]
}

// Refusals are *client.Error values carrying the status and HarperDB's message.
func ExampleError() {
	ec := startNodes("node1")
	defer ec.stop()
	n := ec.nodes[0]
	ctx := context.Background()
	nc := ec.connect(n)

	admin := client.New(nc, client.WithIssuerKey(n.IssuerKey(), "admin", "super_user", time.Hour))
	_, err := admin.AddNode(ctx, client.NodeRequest{NodeName: "node2"})
	var e *client.Error
	if errors.As(err, &e) {
		fmt.Println(e.Status, e.Message)
	}

	reader := client.New(nc, client.WithIssuerKey(n.IssuerKey(), "bob", "cluster_user", time.Hour))
	_, err = reader.GetRoutes(ctx)
	if errors.As(err, &e) {
		fmt.Println(e.Status, e.Body["unauthorized_access"])
	}

	_, err = client.New(nc).GetRoutes(ctx)
	fmt.Println(client.StatusOf(err), err)
	// Output:
	// 400 'subscriptions' is required
	// 403 [Operation 'getRoutes' is restricted to 'super_user' roles]
	// 401 clusterd cluster_get_routes: 401 Must login
}

// One connection reaches every node of the mesh by name.
func ExampleWithNode() {
	ec := startNodes("node1", "node2")
	defer ec.stop()
	n1 := ec.nodes[0]
	nc := ec.connect(n1) // attached to node1
	ctx := context.Background()

	node2 := client.New(nc, client.WithNode("node2"), client.WithIssuerKey(n1.IssuerKey(), "admin", "super_user", time.Hour))
	rep, err := node2.CreateTable(ctx, client.CreateTableRequest{Table: "dog"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("node2:", rep.Message)
	local := client.New(nc, client.WithIssuerKey(n1.IssuerKey(), "admin", "super_user", time.Hour))
	tables, err := local.DescribeAll(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("node1 tables:", len(tables))
	// Output:
	// node2: table 'data.dog' successfully created.
	// node1 tables: 0
}

// Replicate a table between two nodes, write on one, read on the other.
func ExampleTransactions() {
	ec := startNodes("node1", "node2")
	defer ec.stop()
	ctx := context.Background()
	key := ec.nodes[0].IssuerKey() // both nodes trust it
	c1 := client.New(ec.connect(ec.nodes[0]), client.WithIssuerKey(key, "admin", "super_user", time.Hour))
	c2 := client.New(ec.connect(ec.nodes[1]), client.WithIssuerKey(key, "admin", "super_user", time.Hour))

	if _, err := c1.CreateTable(ctx, client.CreateTableRequest{Database: "dev", Table: "dog"}); err != nil {
		log.Fatal(err)
	}
	added, err := c1.AddNode(ctx, client.NodeRequest{NodeName: "node2", Subscriptions: []client.Subscription{
		{Database: "dev", Table: "dog", Subscribe: true, Publish: true},
	}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(added.Message) // node2 now holds dev.dog too

	tx1, err := c1.Transactions(ctx)
	if err != nil {
		log.Fatal(err)
	}
	ack, err := tx1.Publish(ctx, "dev", "dog", []byte(`{"id":1,"name":"Harper"}`))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("stored on", ack.Domain, "in stream", ack.Stream)

	tx2, err := c2.Transactions(ctx)
	if err != nil {
		log.Fatal(err)
	}
	got := make(chan client.Transaction, 1)
	sub, err := tx2.Subscribe(ctx, "dev", "dog", func(t client.Transaction) { got <- t })
	if err != nil {
		log.Fatal(err)
	}
	defer sub.Stop()
	t := <-got
	fmt.Printf("node2 read %s.%s from %s: %s\n", t.Database, t.Table, t.Origin, t.Data)
	// Output:
	// Successfully added 'node2' to manifest
	// stored on node1 in stream txn
	// node2 read dev.dog from node1: {"id":1,"name":"Harper"}
}
