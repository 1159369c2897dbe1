// Package demo runs a local 3-node clusterd cluster in one process: nodes
// node1, node2 and node3 on loopback ports, meshed by hub routes, holding
// table dev.dog and replicating it between all of them; it prints how to talk
// to each node, and takes everything down when its context ends.
//
// Set-up goes through the operations (with the client package), the way a
// user would, and is idempotent: re-running on the same directory and ports
// converges to the same cluster.
package demo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/clusterd/clusterd/client"
	"github.com/clusterd/clusterd/node"
	"github.com/nats-io/nats.go"
	"go.uber.org/zap"
)

// DefaultBasePort is where the demo's ports start unless told otherwise:
// node i (1..3) uses base+10*(i-1) (operations API), +1 (hub client),
// +2 (hub leafnodes), +3 (clustering) and +4 (leaf client).
const DefaultBasePort = 19100

// The table the demo replicates.
const (
	Database = "dev"
	Table    = "dog"
)

// Options configure a demo cluster.
type Options struct {
	// Dir keeps the nodes' data (and the shared password and issuer key); a
	// new temporary directory, removed on Close, when empty.
	Dir string
	// BasePort is the first port (see DefaultBasePort); 0 picks free ports.
	BasePort int
	// Log receives the nodes' logs; nil discards them.
	Log *zap.Logger
	// TokenTTL is the lifetime of the printed super_user token (24h if 0).
	TokenTTL time.Duration
	// Timeout bounds the set-up (60s if 0).
	Timeout time.Duration
}

// Cluster is a running demo.
type Cluster struct {
	Nodes []*node.Node
	// Token is a super_user token every node trusts.
	Token string
	// Password is the cluster secret's password on every node (node links
	// only; never printed).
	Password string
	// OperatorPassword is the operator user's password on every node: the
	// nats CLI contexts the guide prints use it.
	OperatorPassword string
	// AdminPassword is the password of the super_user "admin" on every
	// node (HarperDB's Basic credentials: curl -u admin:…).
	AdminPassword string
	// Dir holds the nodes' data.
	Dir string
	// ReplicationCheck is how long a transaction written on node1 took to
	// reach the other two during set-up.
	ReplicationCheck time.Duration

	removeDir bool
	conns     []*nats.Conn
}

// Names are the demo's node names.
var Names = []string{"node1", "node2", "node3"}

// Start brings the cluster up and returns once replication is verified:
// a transaction written on node1 has arrived on node2 and node3. On error
// everything started is stopped again.
func Start(ctx context.Context, o Options) (*Cluster, error) {
	if o.TokenTTL <= 0 {
		o.TokenTTL = 24 * time.Hour
	}
	if o.Timeout <= 0 {
		o.Timeout = 60 * time.Second
	}
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	// Refuse ports that cannot be had before anything is created or written.
	if err := CheckPorts(o.BasePort); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	// c is not a named result: the clean-up below must close the cluster
	// it built even when the return value is nil.
	c := &Cluster{Dir: o.Dir}
	ok := false
	defer func() {
		if !ok {
			_ = c.Close()
		}
	}()
	if c.Dir == "" {
		dir, err := os.MkdirTemp("", "clusterd-demo-")
		if err != nil {
			return nil, err
		}
		c.Dir, c.removeDir = dir, true
	} else {
		if _, err := os.Stat(c.Dir); errors.Is(err, os.ErrNotExist) {
			c.removeDir = true // made by this run: a failed start removes it again
			defer func() {
				if ok {
					c.removeDir = false // kept from now on, as --dir promises
				}
			}()
		}
		if err := os.MkdirAll(c.Dir, 0o700); err != nil {
			return nil, err
		}
	}
	var err error
	if c.Password, err = loadOrCreatePassword(filepath.Join(c.Dir, "cluster-password")); err != nil {
		return nil, err
	}
	if c.OperatorPassword, err = loadOrCreatePassword(filepath.Join(c.Dir, "operator-password")); err != nil {
		return nil, err
	}
	if c.AdminPassword, err = loadOrCreatePassword(filepath.Join(c.Dir, "admin-password")); err != nil {
		return nil, err
	}
	for i, name := range Names {
		cfg := nodeConfig(c.Dir, name, c.Password, o.BasePort, i)
		cfg.Clustering.LeafServer.Operator.Password = c.OperatorPassword
		cfg.Auth.AdminUser, cfg.Auth.AdminPassword = "admin", c.AdminPassword
		n, err := node.Start(ctx, cfg, node.Options{Log: o.Log})
		if err != nil {
			return nil, fmt.Errorf("start %s: %w", name, err)
		}
		c.Nodes = append(c.Nodes, n)
	}
	if c.Token, err = c.Nodes[0].Token("admin", "super_user", o.TokenTTL); err != nil {
		return nil, err
	}
	if err := c.setUp(ctx); err != nil {
		return nil, err
	}
	ok = true
	return c, nil
}

// portsPerNode is how many ports each demo node takes from its base.
const portsPerNode = 5

// CheckPorts refuses a base port whose range (every port of every node) is
// out of bounds or partly in use on 127.0.0.1, naming the port and what to
// pass instead. Base 0 (free ports) always passes.
func CheckPorts(base int) error {
	if base == 0 {
		return nil
	}
	last := base + 10*(len(Names)-1) + portsPerNode - 1
	if base < 0 || last > 65535 {
		return fmt.Errorf("--base-port %d: the demo needs ports %d to %d, which must lie between 1 and 65535; pass --base-port 0 to pick free ports", base, base, last)
	}
	for i := range Names {
		for k := 0; k < portsPerNode; k++ {
			p := base + 10*i + k
			ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
			if err != nil {
				return fmt.Errorf("port %d on 127.0.0.1 is in use (is another demo or node running?); the demo needs ports %d to %d: stop what holds them, or pass --base-port with another base (0 picks free ports)", p, base, last)
			}
			ln.Close()
		}
	}
	return nil
}

func nodeConfig(dir, name, password string, base, i int) node.Config {
	cfg := node.Default()
	cfg.RootPath = filepath.Join(dir, name)
	cfg.Auth.IssuerKeyFile = filepath.Join(dir, "issuer.key") // one key: one token for all
	cfg.Clustering.NodeName = name
	cfg.Clustering.Password = password
	port := func(k int) int {
		if base == 0 {
			return 0
		}
		return base + 10*i + k
	}
	cfg.OperationsAPI.Network.Host, cfg.OperationsAPI.Network.Port = "127.0.0.1", port(0)
	cfg.Clustering.HubServer.Network = node.Network{Host: "127.0.0.1", Port: port(1)}
	cfg.Clustering.HubServer.LeafNodes.Network.Port = port(2)
	cfg.Clustering.HubServer.Cluster.Network.Port = port(3)
	cfg.Clustering.LeafServer.Network.Port = port(4)
	return cfg
}

func loadOrCreatePassword(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	buf := make([]byte, 12)
	if _, err := rand.Read(buf); err != nil {
		return "", err
	}
	pw := hex.EncodeToString(buf)
	return pw, os.WriteFile(path, []byte(pw+"\n"), 0o600)
}

// Client returns a super_user client of node i (0-based) on its leaf port.
func (c *Cluster) Client(i int) (*client.Client, error) {
	n := c.Nodes[i]
	nc, err := nats.Connect(n.LeafURL(), nats.UserInfo(n.OperatorUser(), c.OperatorPassword), nats.Name("clusterd-demo"))
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", n.Name(), err)
	}
	c.conns = append(c.conns, nc)
	return client.New(nc, client.WithToken(c.Token)), nil
}

// setUp meshes the hubs, creates the table and sets up replication between
// every pair, through the operations; then checks that replication flows.
func (c *Cluster) setUp(ctx context.Context) error {
	clients := make([]*client.Client, len(c.Nodes))
	for i := range c.Nodes {
		var err error
		if clients[i], err = c.Client(i); err != nil {
			return err
		}
	}
	// Full mesh of hub routes; routes left over from an earlier run on other
	// ports are deleted.
	for i, cl := range clients {
		var want []client.Route
		for j, p := range c.Nodes {
			if j != i {
				want = append(want, client.Route{Host: "127.0.0.1", Port: p.Servers.Ports().Cluster})
			}
		}
		if _, err := cl.SetRoutes(ctx, client.SetRoutesRequest{Server: client.Hub, Routes: want}); err != nil {
			return err
		}
		have, err := cl.GetRoutes(ctx)
		if err != nil {
			return err
		}
		var stale []client.Route
		for _, r := range append(have.Hub, have.Leaf...) {
			if !slices.Contains(want, r) {
				stale = append(stale, r)
			}
		}
		if len(stale) > 0 {
			if _, err := cl.DeleteRoutes(ctx, client.DeleteRoutesRequest{Routes: stale}); err != nil {
				return err
			}
		}
	}
	for _, from := range clients {
		for _, to := range c.Nodes {
			err := retry(ctx, func() error { _, err := from.OnNode(to.Name()).GetRoutes(ctx); return err })
			if err != nil {
				return fmt.Errorf("waiting for the mesh to reach %s: %w", to.Name(), err)
			}
		}
	}
	for _, cl := range clients {
		if _, err := cl.CreateTable(ctx, client.CreateTableRequest{Database: Database, Table: Table}); err != nil {
			return err
		}
	}
	sub := []client.Subscription{{Database: Database, Table: Table, Subscribe: true, Publish: true}}
	for i := range clients {
		for j := i + 1; j < len(clients); j++ {
			peer := c.Nodes[j].Name()
			err := retry(ctx, func() error {
				_, err := clients[i].SetNodeReplication(ctx, client.NodeRequest{NodeName: peer, Subscriptions: sub})
				return err
			})
			if err != nil {
				return fmt.Errorf("replication %s <-> %s: %w", c.Nodes[i].Name(), peer, err)
			}
		}
	}
	took, err := c.checkReplication(ctx, clients)
	c.ReplicationCheck = took
	return err
}

// checkReplication writes one transaction on node1 and waits until the
// other nodes hold it.
func (c *Cluster) checkReplication(ctx context.Context, clients []*client.Client) (time.Duration, error) {
	origin := c.Nodes[0].Name()
	var readers []*client.Transactions
	var consumers []func() (bool, error)
	hello := fmt.Sprintf(`{"hello":"from %s","at":%q}`, origin, time.Now().UTC().Format(time.RFC3339Nano))
	for _, cl := range clients[1:] {
		tx, err := cl.Transactions(ctx)
		if err != nil {
			return 0, err
		}
		cons, err := tx.Consumer(ctx, Database, Table, client.OnlyNew(), client.FromOrigin(origin))
		if err != nil {
			return 0, err
		}
		readers = append(readers, tx)
		consumers = append(consumers, func() (bool, error) {
			b, err := cons.FetchNoWait(100)
			if err != nil {
				return false, err
			}
			found := false
			for m := range b.Messages() {
				found = found || string(m.Data()) == hello
			}
			return found, b.Error()
		})
	}
	tx, err := clients[0].Transactions(ctx)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	if _, err := tx.Publish(ctx, Database, Table, []byte(hello)); err != nil {
		return 0, err
	}
	for i, got := range consumers {
		for {
			ok, err := got()
			if err != nil {
				return 0, err
			}
			if ok {
				break
			}
			select {
			case <-ctx.Done():
				return 0, fmt.Errorf("a transaction written on %s did not reach %s: %w", origin, readers[i].Node(), ctx.Err())
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	return time.Since(start), nil
}

// retry calls f until it succeeds or ctx ends (the mesh takes a moment to
// propagate interest after routes come up).
func retry(ctx context.Context, f func() error) error {
	for {
		err := f()
		if err == nil {
			return nil
		}
		var ce *client.Error
		if errors.As(err, &ce) && ce.Status < 500 {
			return err // refused for good
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Close stops every node, closes the demo's connections and removes a
// temporary data directory. Safe to call more than once.
func (c *Cluster) Close() error {
	for _, nc := range c.conns {
		nc.Close()
	}
	c.conns = nil
	var errs []error
	for i := len(c.Nodes) - 1; i >= 0; i-- {
		errs = append(errs, c.Nodes[i].Close())
	}
	if c.removeDir && c.Dir != "" {
		errs = append(errs, os.RemoveAll(c.Dir))
		c.removeDir = false
	}
	return errors.Join(errs...)
}

// Run starts the cluster, prints the guide to w, and waits for ctx to end
// (Ctrl-C), then stops everything.
func Run(ctx context.Context, o Options, w io.Writer) error {
	c, err := Start(ctx, o)
	if err != nil {
		return err
	}
	c.PrintGuide(w)
	<-ctx.Done()
	fmt.Fprintln(w, "\nStopping the demo cluster…")
	err = c.Close()
	if err == nil {
		fmt.Fprintln(w, "Stopped; nothing is left running.")
	}
	return err
}

// PrintGuide prints how to reach each node: addresses, nats CLI contexts, a
// token, example requests, and a write on one node read on another.
func (c *Cluster) PrintGuide(w io.Writer) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }
	where := c.Dir + " (kept; run again with the same --dir to resume)"
	if c.removeDir {
		where = c.Dir + " (removed on exit)"
	}
	p("clusterd demo: %d nodes meshed, replicating table %s.%s between all of them.", len(c.Nodes), Database, Table)
	p("A transaction written on %s reached the others in %s.", c.Nodes[0].Name(), c.ReplicationCheck.Round(time.Millisecond))
	p("Data: %s", where)
	p("")
	p("  %-6s  %-24s  %-24s  %s", "node", "NATS (leaf client port)", "operations API (HTTP)", "clustering port")
	for _, n := range c.Nodes {
		pt := n.Servers.Ports()
		p("  %-6s  %-24s  %-24s  %d", n.Name(), n.LeafURL(), fmt.Sprintf("http://127.0.0.1:%d", n.HTTPPort()), pt.Cluster)
	}
	p("")
	p("Save a nats CLI context per node (the operator's user %s, password %s):", c.Nodes[0].OperatorUser(), c.OperatorPassword)
	for _, n := range c.Nodes {
		p("  nats context save clusterd-%s --server %s --user %s --password %s", n.Name(), n.LeafURL(), n.OperatorUser(), c.OperatorPassword)
	}
	p("")
	p("A super_user token all three nodes trust:")
	p("  export CLUSTERD_TOKEN=%s", c.Token)
	p("")
	first, last := c.Nodes[0], c.Nodes[len(c.Nodes)-1]
	p("Operations (ops.cluster.<op> is answered by the node you are connected to; ops.node.<name>.cluster.<op> by that node, from anywhere):")
	p(`  nats --context clusterd-%s req ops.cluster.describe_all '{}' -H "Authorization:Bearer $CLUSTERD_TOKEN"`, first.Name())
	p(`  nats --context clusterd-%s req ops.node.%s.cluster.cluster_get_routes '{}' -H "Authorization:Bearer $CLUSTERD_TOKEN"`, first.Name(), last.Name())
	if serves(first, "cluster_status") {
		p(`  nats --context clusterd-%s req ops.cluster.cluster_status '{}' -H "Authorization:Bearer $CLUSTERD_TOKEN"`, first.Name())
	}
	p(`  curl -s -X POST http://127.0.0.1:%d/ -H "Authorization: Bearer $CLUSTERD_TOKEN" -d '{"operation":"describe_all"}'`, first.HTTPPort())
	p(`  curl -s -u admin:%s http://127.0.0.1:%d/ -d '{"operation":"cluster_status"}'`, c.AdminPassword, first.HTTPPort())
	p("  (HarperDB's credentials work on every node too: user admin, password %s, as above with curl -u.)", c.AdminPassword)
	p(`  nats --context clusterd-%s micro info clusterd`, first.Name())
	p("")
	p("Write a transaction of %s.%s on %s, read the table's transactions on %s:", Database, Table, first.Name(), last.Name())
	p(`  nats --context clusterd-%s pub --jetstream txn.%s.%s.%s '{"id":2,"name":"Penny"}'`, first.Name(), Database, Table, first.Name())
	p(`  nats --context clusterd-%s sub --stream txn 'txn.%s.%s.*' --all --terminate-at-end`, last.Name(), Database, Table)
	p("")
	p("Press Ctrl-C to stop all three nodes.")
}

func serves(n *node.Node, op string) bool {
	for _, o := range n.Ops.Operations() {
		if o.Name == op {
			return true
		}
	}
	return false
}
