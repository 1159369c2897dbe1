package handlers

import (
	"context"
	"time"

	"github.com/clusterd/clusterd/events"
	"github.com/clusterd/clusterd/membership"
	"github.com/clusterd/clusterd/storage"
	"github.com/clusterd/clusterd/topology"
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

// Ops holds what the operations need.
type Ops struct {
	NodeName          string
	ClusteringEnabled bool
	Store             *storage.Store
	Bus               *events.Bus
	Peers             Peers      // inter-node calls of cluster_status
	Members           Membership // the node-record protocol
	// RequestTimeout is clustering.requestTimeout, the bound of one
	// inter-node call (default 2 s); node operations get a deadline from it.
	RequestTimeout time.Duration
	Txn            *topology.TxnStream

	// What cluster_status and cluster_network observe of this node.
	Servers *topology.Servers
	Repl    *topology.ReplicationReconciler
	// Loss knows the transactions lost from the stream (nil: none known).
	Loss     *topology.TxnLoss
	Mesh     Broadcaster
	Started  time.Time
	Version  string
	HTTPPort func() int
	// Log receives what replies point to ("Check the logs for more
	// details"); nil discards it.
	Log *zap.Logger

	// Users serves the user, role and token operations.
	Users *UserOps
}

// Operations returns every operation this package serves, for the router.
func (o *Ops) Operations() []events.Operation {
	nodeDeadline := o.nodeOpDeadline()
	return append([]events.Operation{
		{Name: "cluster_set_routes", Handler: "setRoutes", Mutating: true, Run: typed(nil, schemaOf(setRoutesSchema), o.SetRoutes)},
		{Name: "cluster_get_routes", Handler: "getRoutes", Run: typed(nil, noSchema, o.GetRoutes)},
		{Name: "cluster_delete_routes", Handler: "deleteRoutes", Mutating: true, Run: typed(nil, schemaOf(deleteRoutesSchema), o.DeleteRoutes)},
		{Name: "add_node", Handler: "addNode", Mutating: true, Deadline: nodeDeadline,
			Run: typed(o.requireClustering, o.nodeSchema, o.AddNode)},
		{Name: "update_node", Handler: "updateNode", Mutating: true, Deadline: nodeDeadline,
			Run: typed(o.requireClustering, o.nodeSchema, o.UpdateNode)},
		{Name: "set_node_replication", Handler: "updateNode", Mutating: true, Deadline: nodeDeadline,
			Run: typed(o.requireClustering, o.nodeSchema, o.SetNodeReplication)},
		{Name: "remove_node", Handler: "removeNode", Mutating: true, Deadline: nodeDeadline,
			Run: typed(o.requireClustering, o.removeNodeSchema, o.RemoveNode)},
		{Name: "configure_cluster", Handler: "configureCluster", Mutating: true, Deadline: nodeDeadline,
			Run: typed(o.requireClustering, o.configureSchema, o.ConfigureCluster)},
		{Name: "create_table", Handler: "createTable", Mutating: true, Run: typed(nil, schemaOf(createTableSchema), o.CreateTable)},
		{Name: "describe_all", Handler: "describeAll", Run: typed(nil, noSchema, o.DescribeAll)},
		{Name: "cluster_status", Handler: "clusterStatus", Run: typed(nil, noSchema, o.ClusterStatus)},
		{Name: "cluster_network", Handler: "clusterNetwork", Run: typed(o.requireClustering, schemaOf(clusterNetworkSchema), o.ClusterNetwork)},
		{Name: "purge_stream", Handler: "purgeStream", Mutating: true, Run: o.PurgeStream},
	}, o.Users.Operations()...)
}

// nodeOpDeadline bounds the node operations: an operation retries a busy
// peer for up to one request timeout, and its last try may take another;
// half a second more lets it phrase the outcome. At the default 2 s that is
// 4.5 s, inside the nats CLI's 5 s.
func (o *Ops) nodeOpDeadline() time.Duration {
	t := o.RequestTimeout
	if t <= 0 {
		t = 2 * time.Second
	}
	return 2*t + 500*time.Millisecond
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

func (o *Ops) log() *zap.Logger {
	if o.Log == nil {
		return zap.NewNop()
	}
	return o.Log
}
