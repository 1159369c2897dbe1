// Package topology runs a node's embedded NATS servers and the workers that
// converge them to the desired state in storage.
//
// Each node has a hub server (client port, leafnode listener, cluster
// listener meshing with other hubs through routes; no JetStream) and a leaf
// server (client port, JetStream with domain = node name) that is a leafnode
// of its own hub and, through leaf routes, of other nodes' hubs.
//
// Workers are level-triggered: they wake on change events, on a periodic
// resync and at start-up, read the whole desired state and the servers'
// observed state, apply the difference, and retry with capped backoff.
package topology
