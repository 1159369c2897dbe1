// Package client calls a clusterd node's clustering operations over NATS with
// typed requests and replies, and writes and reads table transactions.
//
// A Client sends each operation as a request on ops.cluster.<operation>
// (answered by the node its connection is attached to) or, with WithNode, on
// ops.node.<name>.cluster.<operation> (answered by that node from anywhere in
// the mesh). Every request carries "Authorization: Bearer <token>": a fixed
// token (WithToken, e.g. from `clusterd token`), one from a TokenSource, or
// tokens minted with an issuer key the nodes trust (WithIssuerKey). Every
// operation needs the super_user role.
//
// Refusals come back as *Error with the HTTP-style status of the
// Nats-Service-Error-Code header and the reply's JSON body:
//
//	_, err := c.AddNode(ctx, req)
//	var e *client.Error
//	if errors.As(err, &e) && e.Status == 400 {
//		log.Print(e.Message) // HarperDB's wording, e.g. "'node_name' is required"
//	}
//
// Failures to get a reply at all (no node listening, timeout) wrap the nats
// errors (nats.ErrNoResponders, context.DeadlineExceeded).
//
// Transactions writes a table's transactions on a node (a JetStream publish to
// txn.<database>.<table>.<node>, returned once stored) and reads every
// transaction of that table the node holds, local and replicated, from the
// stream and subject filter describe_all reports.
package client
