package handlers

import (
	"context"

	"github.com/clusterd/clusterd/events"
	"github.com/clusterd/clusterd/storage"
)

// Ops holds what the operations need. Fields set after construction (such as
// Peers) are optional capabilities wired by the node.
type Ops struct {
	NodeName          string
	ClusteringEnabled bool
	Store             *storage.Store
	Bus               *events.Bus
}

type runFunc func(ctx context.Context, caller events.Caller, body []byte) (any, error)

// Operations returns every operation this package serves, for the router.
func (o *Ops) Operations() []events.Operation {
	return []events.Operation{
		{Name: "cluster_set_routes", Handler: "setRoutes", Mutating: true, Run: o.SetRoutes},
		{Name: "cluster_get_routes", Handler: "getRoutes", Run: o.GetRoutes},
		{Name: "cluster_delete_routes", Handler: "deleteRoutes", Mutating: true, Run: o.DeleteRoutes},
	}
}

// errClusteringDisabled is the reply of node operations when clustering is off.
var errClusteringDisabled = events.Errorf(400, "Clustering must be enabled to perform this operation.")
