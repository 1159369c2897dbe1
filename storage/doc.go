// Package storage keeps clusterd's desired state in Badger: routes, registered
// nodes with their subscriptions (one key per subscription, so a change costs
// the same whatever the number of tables), the tables this node holds, and
// small bookkeeping values. Update and its kin return once the write is
// synced, so a caller may acknowledge a change as soon as they return nil;
// UpdateThenSync and UpdateAsync tell apart committed and synced for callers
// that can use the difference. Concurrent writers share a Badger transaction
// and an fsync (group commit, commit.go).
//
// The package imports none of clusterd's other packages.
package storage
