// Package events carries requests and changes through clusterd.
//
// Requests arrive from NATS (micro endpoints) or HTTP and enter a Watermill
// router as messages on the "ops" topic; middleware recovers panics, turns
// errors into replies, tags request ids, counts metrics and checks the
// caller's role claim before an operation handler runs. Changes to desired
// state are announced on a Bus so topology workers wake up.
package events
