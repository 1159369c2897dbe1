package handlers

import (
	"context"
	"time"

	"github.com/clusterd/clusterd/events"
	"github.com/clusterd/clusterd/membership"
	"github.com/clusterd/clusterd/storage"
	"github.com/clusterd/clusterd/topology"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// Peers reaches other nodes' inter-node calls.
type Peers interface {
	Call(ctx context.Context, node, call string, req, resp any) error
}

// Membership is the node-record protocol as the node operations use it
// (a *membership.Protocol).
type Membership interface {
	Link(ctx context.Context, peer string, subs []storage.Subscription, mode membership.Mode) (membership.LinkResult, error)
	Remove(ctx context.Context, peer string) (told bool, err error)
	Configure(ctx context.Context, conns []membership.Connection) ([]membership.ConnectionResult, error)
	Handlers() map[string]events.PeerHandler
}

// Store is desired state as the operations read and change it (a
// *storage.Store).
type Store interface {
	Node(name string) (storage.Node, bool, error)
	Nodes() ([]storage.Node, error)
	Routes() (storage.Routes, error)
	UpdateRoutes(fn func(*storage.Routes) error) (storage.Routes, error)
	Tables() ([]storage.Table, error)
	PutTables(tables []storage.Table) (created []storage.TableKey, err error)
	HasTable(k storage.TableKey) (bool, error)
	HasDatabase(db string) (bool, error)
	RaiseImportFloor(peer string, k storage.TableKey, seq uint64) error
}

// TxnStream is the transaction stream as describe_all, purge_stream and
// cluster_status read and purge it (a *topology.TxnStream).
type TxnStream interface {
	Name() string
	TableFilter(k storage.TableKey) string
	Info(ctx context.Context) (*jetstream.StreamInfo, error)
	Describe(ctx context.Context, tables []storage.TableKey) (map[storage.TableKey]topology.TableStats, error)
	Purge(ctx context.Context, opts ...jetstream.StreamPurgeOpt) error
	LastSeq(ctx context.Context) (uint64, error)
	LastImportedSeq(ctx context.Context, subject string) (uint64, error)
	LastMsgs(ctx context.Context, subjects []string) (map[string]topology.LastMsg, error)
	Pending(ctx context.Context, subject string, next uint64, since time.Time) (uint64, error)
}

// ServerView is what cluster_status and cluster_network observe of the
// node's servers (a *topology.Servers).
type ServerView interface {
	RoutedNodes() []string
	ClusterPort() int
	LinkProblems() []topology.LinkFault
}

// Replication is the replication worker as cluster_status observes it (a
// *topology.ReplicationReconciler).
type Replication interface {
	Status() map[string]topology.PeerReplication
	Positions(ctx context.Context, n storage.Node) (map[storage.TableKey]topology.TablePosition, error)
}

// LossGuard is the watcher of lost transactions (a *topology.TxnLoss): it
// runs a purge so as not to count it as a loss, and knows what was lost.
type LossGuard interface {
	Purging(ctx context.Context, purge func() error) error
	Records() []topology.TxnLossRecord
}

// Ops holds what the operations need. Build it with New.
type Ops struct {
	NodeName          string
	ClusteringEnabled bool
	Store             Store
	Bus               *events.Bus
	Peers             Peers      // inter-node calls of cluster_status
	Members           Membership // the node-record protocol
	// RequestTimeout is clustering.requestTimeout, the bound of one
	// inter-node call (default 2 s); operations get their deadline from it.
	RequestTimeout time.Duration
	Txn            TxnStream

	// What cluster_status and cluster_network observe of this node.
	Servers ServerView
	Repl    Replication
	// Loss knows the transactions lost from the stream.
	Loss     LossGuard
	Mesh     Broadcaster
	Started  time.Time
	Version  string
	HTTPPort func() int
	// Log receives what replies point to ("Check the logs for more
	// details").
	Log *zap.Logger

	// Users serves the user, role and token operations.
	Users *UserOps
}

// New returns the operations over deps. It is the one place that says what
// an absent dependency means (a node always gives them all; tests and the
// documentation leave some out): no servers observe no routes and no link
// problems, no replication worker reports replication as not running, no
// transaction stream has nothing to describe, count or purge, no loss
// watcher purges directly, no mesh answers cluster_network with 503, no
// operations API listens on port 0 and no logger discards.
func New(deps Ops) *Ops {
	o := deps
	if o.Servers == nil {
		o.Servers = noServers{}
	}
	if o.Repl == nil {
		o.Repl = noReplication{}
	}
	if o.Txn == nil {
		o.Txn = noTxnStream{}
	}
	if o.Loss == nil {
		o.Loss = noLossGuard{}
	}
	if o.Mesh == nil {
		o.Mesh = noMesh{}
	}
	if o.HTTPPort == nil {
		o.HTTPPort = func() int { return 0 }
	}
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	return &o
}

// Operations returns every operation this package serves, for the router.
// Every operation has a deadline (see deadline).
func (o *Ops) Operations() []events.Operation {
	ops := append([]events.Operation{
		{Name: "cluster_set_routes", Handler: "setRoutes", Mutating: true, Run: typed(nil, schemaOf(setRoutesSchema), o.SetRoutes)},
		{Name: "cluster_get_routes", Handler: "getRoutes", Run: typed(nil, noSchema, o.GetRoutes)},
		{Name: "cluster_delete_routes", Handler: "deleteRoutes", Mutating: true, Run: typed(nil, schemaOf(deleteRoutesSchema), o.DeleteRoutes)},
		{Name: "add_node", Handler: "addNode", Mutating: true, Run: typed(o.requireClustering, o.nodeSchema, o.AddNode)},
		{Name: "update_node", Handler: "updateNode", Mutating: true, Run: typed(o.requireClustering, o.nodeSchema, o.UpdateNode)},
		{Name: "set_node_replication", Handler: "updateNode", Mutating: true, Run: typed(o.requireClustering, o.nodeSchema, o.SetNodeReplication)},
		{Name: "remove_node", Handler: "removeNode", Mutating: true, Run: typed(o.requireClustering, o.removeNodeSchema, o.RemoveNode)},
		{Name: "configure_cluster", Handler: "configureCluster", Mutating: true, Run: typed(o.requireClustering, o.configureSchema, o.ConfigureCluster)},
		{Name: "create_table", Handler: "createTable", Mutating: true, Run: typed(nil, schemaOf(createTableSchema), o.CreateTable)},
		{Name: "describe_all", Handler: "describeAll", Run: typed(nil, noSchema, o.DescribeAll)},
		{Name: "cluster_status", Handler: "clusterStatus", Run: typed(nil, noSchema, o.ClusterStatus)},
		// cluster_network waits as long as its request says (at most
		// MaxNetworkTimeoutMS); one request timeout more lets it answer.
		{Name: "cluster_network", Handler: "clusterNetwork", Deadline: MaxNetworkTimeoutMS*time.Millisecond + o.requestTimeout(),
			Run: typed(o.requireClustering, schemaOf(clusterNetworkSchema), o.ClusterNetwork)},
		{Name: "purge_stream", Handler: "purgeStream", Mutating: true, Run: typed(nil, schemaOf(purgeStreamSchema), o.PurgeStream)},
	}, o.Users.Operations()...)
	for i := range ops {
		if ops[i].Deadline == 0 {
			ops[i].Deadline = o.deadline()
		}
	}
	return ops
}

// deadline bounds an operation: its local work (store, stream) and at most
// one round of inter-node calls, each bounded by the request timeout. A
// node operation retries a busy peer for up to one request timeout and its
// last try may take another; half a second more lets any operation phrase
// the outcome. At the default 2 s that is 4.5 s, inside the nats CLI's 5 s.
func (o *Ops) deadline() time.Duration {
	return 2*o.requestTimeout() + 500*time.Millisecond
}

// requestTimeout is clustering.requestTimeout (its default when unset).
func (o *Ops) requestTimeout() time.Duration {
	if o.RequestTimeout <= 0 {
		return 2 * time.Second
	}
	return o.RequestTimeout
}

// errClusteringDisabled is the reply of node operations when clustering is off.
var errClusteringDisabled = events.Errorf(400, "Clustering must be enabled to perform this operation.")

// OperationNames are the names of the operations Ops serves, known before an
// Ops is wired (the node's servers are configured with them).
func OperationNames() []string {
	ops := (&Ops{}).Operations()
	names := make([]string, len(ops))
	for i, op := range ops {
		names[i] = op.Name
	}
	return names
}
