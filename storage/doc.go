// Package storage keeps clusterd's desired state in Badger: routes, registered
// nodes with their subscriptions, the tables this node holds, and small
// bookkeeping values. Every write is synced before it returns, so a caller
// may acknowledge a change as soon as a write method has returned nil.
// Concurrent writers share fsyncs: Badger batches commits that arrive together.
//
// The package imports none of clusterd's other packages.
package storage
