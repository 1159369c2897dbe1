// Package handlers implements the clustering operations: each decodes and
// validates its request (schemas in validate.go yield HarperDB's messages),
// applies it to desired state in storage, announces the change on the bus so
// topology workers converge, and returns the reply. A reply reporting a change
// is only returned after the change is synced to disk. The node operations
// (add_node, update_node, remove_node, configure_cluster) hand the change to
// the membership package, which runs the protocol with the peer, and phrase
// its typed errors in HarperDB's words (nodes.go).
//
// users.go serves HarperDB's user, role and token operations on the users
// and roles kept in storage, and is the auth.Directory the node
// authenticates callers with; every change it commits tells the
// Authenticator, so cached credentials never outlive it.
package handlers
