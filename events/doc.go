// Package events carries requests and changes through clusterd.
//
// Requests arrive from NATS (micro endpoints) or HTTP and enter a Watermill
// router as messages on the "ops" topic; middleware recovers panics, turns
// errors into replies, tags request ids, counts metrics and checks the
// caller's role claim before an operation handler runs. Operations that only
// read local state (LocalRead) run the same handler and middleware, composed
// once as the router composes them, on the goroutine that received the
// request: they skip the router's goroutine hand-offs, not its middleware. Changes to desired
// state are announced on a Bus so topology workers wake up.
package events
