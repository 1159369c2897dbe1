// Package events carries requests and changes through clusterd.
//
// Requests arrive from NATS (micro endpoints) or HTTP and enter a Watermill
// router as messages on the "ops" topic; middleware recovers panics, turns
// errors into replies, tags request ids, counts metrics, authenticates the
// caller (an Authenticator from package auth: Basic credentials or a Bearer
// token, else a verified client certificate's user) and checks its role
// against the operation's Access before an operation handler runs, under the
// operation's deadline when it has one. Changes to desired state are
// announced on a Bus so topology workers wake up.
//
// Inter-node calls (peer.go) are signed requests on _clusterd.node.<name>.*;
// a node serves at most maxPeerCalls at once and Stop waits for them. A
// peer's error carries a code (CodeUnknownCall, CodeBusy) that callers act
// on; its text is for people.
package events
