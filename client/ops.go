package client

import "context"

// call is Call with a typed reply.
func call[T any](ctx context.Context, c *Client, op string, req any) (T, error) {
	var out T
	err := c.Call(ctx, op, req, &out)
	return out, err
}

// SetRoutes adds hub or leaf routes (cluster_set_routes). Upsert: a route
// already in either list is reported as skipped. The node applies the change
// live and persists it.
func (c *Client) SetRoutes(ctx context.Context, req SetRoutesRequest) (SetRoutesReply, error) {
	return call[SetRoutesReply](ctx, c, "cluster_set_routes", req)
}

// GetRoutes returns the node's desired hub and leaf routes (cluster_get_routes).
func (c *Client) GetRoutes(ctx context.Context) (GetRoutesReply, error) {
	return call[GetRoutesReply](ctx, c, "cluster_get_routes", nil)
}

// DeleteRoutes removes routes from the hub list, else the leaf list
// (cluster_delete_routes); routes in neither are reported as skipped.
func (c *Client) DeleteRoutes(ctx context.Context, req DeleteRoutesRequest) (DeleteRoutesReply, error) {
	return call[DeleteRoutesReply](ctx, c, "cluster_delete_routes", req)
}

// AddNode registers peer req.NodeName with subscriptions on both nodes
// (add_node); replication starts. A node already added is a 400: use
// UpdateNode.
func (c *Client) AddNode(ctx context.Context, req NodeRequest) (AddNodeReply, error) {
	return call[AddNodeReply](ctx, c, "add_node", req)
}

// UpdateNode upserts a peer's subscriptions on both nodes (update_node):
// unknown peers are added, subscriptions for the same table overwritten,
// others kept. Subscribe and Publish both false stop that table's replication
// both ways.
func (c *Client) UpdateNode(ctx context.Context, req NodeRequest) (UpdateNodeReply, error) {
	return call[UpdateNodeReply](ctx, c, "update_node", req)
}

// SetNodeReplication is UpdateNode under HarperDB's other name
// (set_node_replication).
func (c *Client) SetNodeReplication(ctx context.Context, req NodeRequest) (UpdateNodeReply, error) {
	return call[UpdateNodeReply](ctx, c, "set_node_replication", req)
}

// RemoveNode stops replication with a peer both ways and forgets it
// (remove_node). The local record goes even when the peer cannot be reached;
// the message then says so and the peer is told when it returns.
func (c *Client) RemoveNode(ctx context.Context, req RemoveNodeRequest) (MessageReply, error) {
	return call[MessageReply](ctx, c, "remove_node", req)
}

// ConfigureCluster replaces the node's whole set of peers (configure_cluster):
// every current peer is removed, then every connection added, switching
// atomically. When no connection can be made it fails with a 500 *Error whose
// Body carries "failed_nodes", and the old setup stays.
func (c *Client) ConfigureCluster(ctx context.Context, req ConfigureClusterRequest) (ConfigureClusterReply, error) {
	if req.Connections == nil {
		req.Connections = []NodeRequest{}
	}
	return call[ConfigureClusterReply](ctx, c, "configure_cluster", req)
}

// ClusterStatus reports the node's peers with their connection state, ports,
// latency, uptime, build and per-subscription replication state
// (cluster_status).
func (c *Client) ClusterStatus(ctx context.Context) (ClusterStatusReply, error) {
	return call[ClusterStatusReply](ctx, c, "cluster_status", nil)
}

// ClusterNetwork asks every node reachable through the mesh for its live
// routes and desired routes (cluster_network).
func (c *Client) ClusterNetwork(ctx context.Context, req ClusterNetworkRequest) (ClusterNetworkReply, error) {
	return call[ClusterNetworkReply](ctx, c, "cluster_network", req)
}

// PurgeStream removes the node's stored transactions of one table
// (purge_stream); never another table's, never on another node.
func (c *Client) PurgeStream(ctx context.Context, req PurgeStreamRequest) (MessageReply, error) {
	return call[MessageReply](ctx, c, "purge_stream", req)
}

// CreateTable makes the node hold a table (create_table); idempotent.
func (c *Client) CreateTable(ctx context.Context, req CreateTableRequest) (MessageReply, error) {
	return call[MessageReply](ctx, c, "create_table", req)
}

// DescribeAll lists the node's tables with where their transactions are
// (describe_all).
func (c *Client) DescribeAll(ctx context.Context) (DescribeAllReply, error) {
	return call[DescribeAllReply](ctx, c, "describe_all", nil)
}
