// Package topology runs a node's embedded NATS servers and the workers that
// converge them to the desired state in storage.
//
// Each node has a hub server (client port, leafnode listener, cluster
// listener meshing with other hubs through routes; no JetStream) and a leaf
// server (client port, JetStream with domain = node name) that is a leafnode
// of its own hub and, through leaf routes, of other nodes' hubs.
//
// Replication (replication.go) pulls each peer's transactions through lanes
// (lanes.go): a durable consumer on the peer's stream, filtered to the
// subscribed tables, bound to one source on this node's stream. The worker
// observes the lanes, plans one kind of change with the pure planStep
// (replplan.go) and applies it: drop lost or unwanted lanes, take tables out,
// purge re-sourced tables, place tables into lanes (joining a flowing lane
// paused at an exact position, or a catch-up lane from where they must
// start), merge caught-up lanes. Subjects are read and built in one place
// (subjects.go).
//
// Workers are level-triggered: they wake on change events, on a periodic
// resync and at start-up, read the whole desired state and the servers'
// observed state, apply the difference, and retry with capped backoff.
package topology
