package handlers

import (
	"time"

	"github.com/clusterd/clusterd/events"
	"github.com/clusterd/clusterd/storage"
	"github.com/clusterd/clusterd/topology"
	"go.uber.org/zap"
)

// Ops holds what the operations need.
type Ops struct {
	NodeName          string
	ClusteringEnabled bool
	Store             *storage.Store
	Bus               *events.Bus
	Peers             Peers
	Txn               *topology.TxnStream

	// What cluster_status and cluster_network observe of this node.
	Servers  *topology.Servers
	Repl     *topology.ReplicationReconciler
	Mesh     Broadcaster
	Started  time.Time
	Version  string
	HTTPPort func() int
	// Log receives what replies point to ("Check the logs for more
	// details"); nil discards it.
	Log *zap.Logger

	locks    nodeLocks
	links    linkQueues
	confirms confirmChains
}

// Operations returns every operation this package serves, for the router.
func (o *Ops) Operations() []events.Operation {
	return []events.Operation{
		{Name: "cluster_set_routes", Handler: "setRoutes", Mutating: true, Run: o.SetRoutes},
		{Name: "cluster_get_routes", Handler: "getRoutes", Run: o.GetRoutes},
		{Name: "cluster_delete_routes", Handler: "deleteRoutes", Mutating: true, Run: o.DeleteRoutes},
		{Name: "add_node", Handler: "addNode", Mutating: true, Run: o.AddNode},
		{Name: "update_node", Handler: "updateNode", Mutating: true, Run: o.UpdateNode("update_node")},
		{Name: "set_node_replication", Handler: "updateNode", Mutating: true, Run: o.UpdateNode("set_node_replication")},
		{Name: "remove_node", Handler: "removeNode", Mutating: true, Run: o.RemoveNode},
		{Name: "configure_cluster", Handler: "configureCluster", Mutating: true, Run: o.ConfigureCluster},
		{Name: "create_table", Handler: "createTable", Mutating: true, Run: o.CreateTable},
		{Name: "describe_all", Handler: "describeAll", Run: o.DescribeAll},
		{Name: "cluster_status", Handler: "clusterStatus", Run: o.ClusterStatus},
		{Name: "cluster_network", Handler: "clusterNetwork", Run: o.ClusterNetwork},
		{Name: "purge_stream", Handler: "purgeStream", Mutating: true, Run: o.PurgeStream},
	}
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
