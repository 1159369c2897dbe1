package node

import (
	"go.uber.org/zap"
)

// reportBadNames warns, once per name at start, about names stored before
// the naming rule (storage.NameProblem): they are left out of replication
// and reported on their subscription in cluster_status; nothing else stops.
func (n *Node) reportBadNames() {
	bad, err := n.Store.BadNames()
	if err != nil {
		n.log.Warn("could not check stored names", zap.Error(err))
		return
	}
	for _, b := range bad {
		n.log.Warn("stored name breaks the naming rule; it is not replicated",
			zap.String("peer", b.Peer), zap.String("table", b.Table.String()), zap.String("problem", b.String()))
	}
}
