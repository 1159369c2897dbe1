package node

import "time"

// ReplicationPassedSince reports whether the replication worker finished a
// pass that began at or after since, converged, with nothing left to do: the
// desired state as committed before since is then what the transaction
// stream's sources are. When no pass has begun since then it asks for one, so
// a caller polling it (tests, tools) waits for the worker, not for its
// periodic resync. Safe for concurrent use.
func (n *Node) ReplicationPassedSince(since time.Time) bool {
	st := n.replLoop.Status()
	if st.LastAttempt.Before(since) {
		n.replLoop.Kick()
		return false
	}
	return st.Converged && n.Repl.Backlog() == 0
}
