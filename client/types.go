package client

import "time"

// The request and reply types mirror the wire JSON of SPEC §5 field for field,
// so what a client sends is what `nats req` would send.

// Route servers of cluster_set_routes.
const (
	// Hub routes point at another node's clustering port and join the hubs
	// into one mesh.
	Hub = "hub"
	// Leaf routes point at another hub's leafnode port and make this node's
	// leaf server a leafnode of it.
	Leaf = "leaf"
)

// Route is a host and port of a remote hub listener.
type Route struct {
	Host string `json:"host"`
	Port int    `json:"port"`
}

// MessageReply is the reply of operations that only report what they did.
type MessageReply struct {
	Message string `json:"message"`
}

// SetRoutesRequest is cluster_set_routes' body. Server is Hub or Leaf.
type SetRoutesRequest struct {
	Server string  `json:"server"`
	Routes []Route `json:"routes"`
}

// SetRoutesReply lists the routes added (Set) and those already present in
// either list (Skipped).
type SetRoutesReply struct {
	Message string  `json:"message"`
	Set     []Route `json:"set"`
	Skipped []Route `json:"skipped"`
}

// GetRoutesReply is a node's desired routes.
type GetRoutesReply struct {
	Hub  []Route `json:"hub"`
	Leaf []Route `json:"leaf"`
}

// DeleteRoutesRequest is cluster_delete_routes' body.
type DeleteRoutesRequest struct {
	Routes []Route `json:"routes"`
}

// DeleteRoutesReply lists the routes removed and those that were not there.
type DeleteRoutesReply struct {
	Message string  `json:"message"`
	Deleted []Route `json:"deleted"`
	Skipped []Route `json:"skipped"`
}

// Subscription is the replication of one table between the addressed node and
// a peer, from the addressed node's point of view: Subscribe pulls the peer's
// transactions of the table here, Publish lets the peer pull this node's.
// Database defaults to "data"; Schema is HarperDB's name for it (replies carry
// both). A nil StartTime means "from now" on a new subscription and "keep the
// current position" on an existing one.
type Subscription struct {
	Database  string     `json:"database,omitempty"`
	Schema    string     `json:"schema,omitempty"`
	Table     string     `json:"table"`
	Subscribe bool       `json:"subscribe"`
	Publish   bool       `json:"publish"`
	StartTime *time.Time `json:"start_time,omitempty"`
}

// NodeRequest is the body of add_node, update_node and set_node_replication,
// and one connection of configure_cluster.
type NodeRequest struct {
	NodeName      string         `json:"node_name"`
	Subscriptions []Subscription `json:"subscriptions"`
}

// AddNodeReply is add_node's reply (and each connection's response in
// configure_cluster's).
type AddNodeReply struct {
	Message string         `json:"message"`
	Added   []Subscription `json:"added"`
	Skipped []Subscription `json:"skipped"`
}

// UpdateNodeReply is the reply of update_node and set_node_replication.
type UpdateNodeReply struct {
	Message string         `json:"message"`
	Updated []Subscription `json:"updated"`
	Skipped []Subscription `json:"skipped"`
}

// RemoveNodeRequest is remove_node's body.
type RemoveNodeRequest struct {
	NodeName string `json:"node_name"`
}

// ConfigureClusterRequest is configure_cluster's body: the whole desired set
// of peers (empty removes every peer).
type ConfigureClusterRequest struct {
	Connections []NodeRequest `json:"connections"`
}

// ConfigureConnection is one peer's outcome in configure_cluster's reply.
type ConfigureConnection struct {
	NodeName string       `json:"node_name"`
	Response AddNodeReply `json:"response"`
}

// ConfigureClusterReply is configure_cluster's reply. FailedNodes lists the
// peers that could not be configured when only some could.
type ConfigureClusterReply struct {
	Message     string                `json:"message"`
	Connections []ConfigureConnection `json:"connections"`
	FailedNodes []string              `json:"failed_nodes,omitempty"`
}

// Connection states in cluster_status.
const (
	StatusOpen         = "open"
	StatusClosed       = "closed"
	StatusNoResponders = "NoResponders"
	StatusTimeout      = "Timeout"
)

// ClusterStatusReply is cluster_status' reply; Connections are sorted by
// node name.
type ClusterStatusReply struct {
	NodeName    string             `json:"node_name"`
	IsEnabled   bool               `json:"is_enabled"`
	Connections []ConnectionStatus `json:"connections"`
	// LinkProblems are the addressed node's link faults (empty when none).
	LinkProblems []LinkProblem `json:"link_problems,omitempty"`
}

// LinkProblem is a fault on the links between the addressed node and
// another: Kind duplicate_name, credentials, tls or unreachable; Link route
// or leafnode; Message what to do. Fatal ones make the node unready.
type LinkProblem struct {
	Kind    string    `json:"kind"`
	Link    string    `json:"link"`
	Remote  string    `json:"remote"`
	Message string    `json:"message"`
	Fatal   bool      `json:"fatal"`
	Since   time.Time `json:"since"`
	Last    time.Time `json:"last"`
	Count   int       `json:"count"`
}

// ConnectionStatus is one peer in cluster_status. Ports, LatencyMS, Uptime and
// SystemInfo are only known when the peer answered (Status "open"); Error says
// why it could not be asked otherwise.
type ConnectionStatus struct {
	NodeName      string               `json:"node_name"`
	Status        string               `json:"status"`
	Ports         Ports                `json:"ports"` // zero when the peer did not answer (the wire has {})
	LatencyMS     *int                 `json:"latency_ms,omitempty"`
	Uptime        string               `json:"uptime,omitempty"`
	Subscriptions []SubscriptionStatus `json:"subscriptions"`
	SystemInfo    *SystemInfo          `json:"system_info,omitempty"`
	Error         string               `json:"error,omitempty"`
}

// Ports are a node's clustering and operations API ports.
type Ports struct {
	Clustering    int `json:"clustering,omitempty"`
	OperationsAPI int `json:"operations_api,omitempty"`
}

// SystemInfo describes the clusterd build a node runs.
type SystemInfo struct {
	Version   string `json:"version"`
	GoVersion string `json:"go_version"`
	Platform  string `json:"platform"`
	Arch      string `json:"arch,omitempty"`
}

// SubscriptionStatus is a subscription with its replication state: whether
// the peer's transactions flow here (always true when Subscribe is false),
// the last error, and Lag, the transactions the peer holds that this node has
// not received (nil when the peer could not be asked).
type SubscriptionStatus struct {
	Subscription
	Converged bool    `json:"converged"`
	LastError string  `json:"last_error,omitempty"`
	Lag       *uint64 `json:"lag"`
}

// ClusterNetworkRequest is cluster_network's body. Timeout is in milliseconds
// (0: the node's default, 2000). ConnectedNodes and Routes default to true;
// false leaves those keys out of the reply.
type ClusterNetworkRequest struct {
	Timeout        int   `json:"timeout,omitempty"`
	ConnectedNodes *bool `json:"connected_nodes,omitempty"`
	Routes         *bool `json:"routes,omitempty"`
}

// ClusterNetworkReply lists every node that answered through the mesh, the
// addressed one included, sorted by name.
type ClusterNetworkReply struct {
	Nodes []NetworkNode `json:"nodes"`
}

// NetworkNode is one node in cluster_network's reply. ResponseTime is in
// milliseconds; ConnectedNodes (nodes its hub has a live route to) and Routes
// (its desired routes) are nil when the request turned them off.
type NetworkNode struct {
	Name           string   `json:"name"`
	ResponseTime   int      `json:"response_time"`
	ConnectedNodes []string `json:"connected_nodes,omitempty"`
	Routes         []Route  `json:"routes,omitempty"`
}

// PurgeStreamRequest is purge_stream's body.
type PurgeStreamRequest struct {
	Database string        `json:"database,omitempty"`
	Schema   string        `json:"schema,omitempty"`
	Table    string        `json:"table"`
	Options  *PurgeOptions `json:"options,omitempty"`
}

// PurgeOptions narrow a purge: keep the Keep newest transactions, or remove
// those below sequence Seq (not both), and/or only those on subject Filter
// (txn.<db>.<table>.<origin>).
type PurgeOptions struct {
	Keep   *uint64 `json:"keep,omitempty"`
	Seq    *uint64 `json:"seq,omitempty"`
	Filter string  `json:"filter,omitempty"`
}

// CreateTableRequest is create_table's body; Database defaults to "data".
type CreateTableRequest struct {
	Database string `json:"database,omitempty"`
	Schema   string `json:"schema,omitempty"`
	Table    string `json:"table"`
}

// DescribeAllReply maps database → table → where the table's transactions
// are on the addressed node.
type DescribeAllReply map[string]map[string]TableDescription

// TableDescription says where a table's transactions are (the JetStream
// stream and the subject filter selecting them, local and replicated) and
// how many the node holds.
type TableDescription struct {
	Stream        string `json:"stream"`
	FilterSubject string `json:"filter_subject"`
	Messages      uint64 `json:"messages"`
	FirstSeq      uint64 `json:"first_seq"`
	LastSeq       uint64 `json:"last_seq"`
}

// Bool returns a pointer to b, for the optional flags of ClusterNetworkRequest.
func Bool(b bool) *bool { return &b }

// Uint returns a pointer to n, for PurgeOptions.
func Uint(n uint64) *uint64 { return &n }
