// Package handlers implements the clustering operations. Each is a method
// of a typed request — AddNode(ctx, caller, AddNodeRequest) (AddNodeReply,
// error) — behind one adapter (typed.go) that answers a gate first
// (clustering disabled), decodes and validates the body against the
// operation's schema (validate.go; HarperDB's messages, every problem
// together) and runs the request's own cross-field check. An operation
// applies the request to desired state in storage, announces the change on
// the bus so topology workers converge, and returns the reply. A reply
// reporting a change is only returned after the change is synced to disk.
// The node operations (add_node, update_node, remove_node, configure_cluster)
// hand the change to the membership package, which runs the protocol with
// the peer, and phrase its typed errors in HarperDB's words (nodes.go).
// purge_stream has no gate: it validates the body before it refuses
// clustering disabled. Every operation runs under a deadline derived from
// clustering.requestTimeout (Ops.deadline). Dependencies are narrow
// interfaces given to New, which says what an absent one means.
package handlers
