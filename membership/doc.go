// Package membership runs the node-record protocol: the records two nodes
// keep of each other (the subscriptions between them, each the mirror image
// of the other's) and the calls that keep them in step.
//
// The flow of a change about a peer, on the node that takes the operation:
// take this node's lock for the pair (locks.go), commit the change locally
// together with a "sync" notice, tell the peer (node_set, node_set_batch or
// node_remove), and on a failure put the local record back (link.go,
// notices.go). Concurrent updates about one peer whose tables are all held
// here are batched into one call and one commit. The peer applies the change
// under its own lock for the pair (callee.go), may answer before its write is
// on disk, and confirms it later with node_synced, in order per caller
// (confirmChains); only then does the caller drop its notice. Notices that
// stay — the peer was down, timed out, or the process crashed — are the
// outbox: ReconcileNotices, run by the node on a topology.Loop, brings each
// peer's record in line with this node's until it succeeds. configure_cluster
// (configure.go) tells every peer first and then switches the whole local
// setup in one transaction.
//
// No node waits, while holding anything, for a peer that may be waiting for
// it: a callee waits for its lock only when its name sorts after the
// caller's, and otherwise answers busy at once; the caller then puts its
// change back, lets go of its lock, backs off with jitter and retries (see
// calleeLock). Every chain of waits climbs the name order, so none closes
// into a cycle. Protocol.Run owns every goroutine the protocol starts.
package membership
