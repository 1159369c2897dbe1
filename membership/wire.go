package membership

import "github.com/clusterd/clusterd/storage"

// Inter-node calls of the protocol.
const (
	CallNodeSet      = "node_set"
	CallNodeSetBatch = "node_set_batch"
	CallNodeRemove   = "node_remove"
	CallNodeSynced   = "node_synced"
)

// Mode says how a peer's subscriptions are applied to its record.
type Mode string

// Modes of node_set.
const (
	// Add records a new peer (add_node); like Replace on the wire.
	Add Mode = "add"
	// Update upserts subscriptions, keeping the others (update_node).
	Update Mode = "update"
	// Replace makes the subscriptions the whole record (configure_cluster,
	// and notices re-syncing a peer).
	Replace Mode = "replace"
)

// peerSetRequest asks a peer to record the caller with these subscriptions
// (already mirrored to the peer's point of view).
type peerSetRequest struct {
	Mode          Mode                   `json:"mode"`
	Subscriptions []storage.Subscription `json:"subscriptions"`
	CallerTables  []storage.TableKey     `json:"caller_tables"`
	// Intent, when set, names the caller's "sync" notice (its time): the
	// peer may answer once its write is queued, before it is committed and
	// synced, and confirms it is on disk with node_synced, upon which the
	// caller drops the notice. Without the confirmation (the peer crashed
	// or lost power first, or its write failed) the notice stays, and the
	// caller's notices worker re-syncs the peer.
	Intent string `json:"intent,omitempty"`
}

// nodeSynced confirms that a node_set carrying Intent is on the peer's disk.
type nodeSynced struct {
	Intent string `json:"intent"`
}

type peerSetReply struct {
	Skipped      []storage.TableKey `json:"skipped"`
	CalleeTables []storage.TableKey `json:"callee_tables"`
}

// peerSetBatch asks a peer to apply several node_set requests, in order, in
// one transaction (concurrent update_node requests about the same peer).
type peerSetBatch struct {
	Requests []peerSetRequest `json:"requests"`
	Intent   string           `json:"intent,omitempty"` // as peerSetRequest's
}

type peerSetBatchReply struct {
	Replies []peerSetReply `json:"replies"`
}
