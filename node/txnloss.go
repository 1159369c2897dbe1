package node

import (
	"context"
	"path/filepath"
	"time"

	"github.com/clusterd/clusterd/events"
	"github.com/clusterd/clusterd/topology"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// txnCountsFile holds the transaction stream's per-subject counts written at
// a clean stop (see topology.TxnLoss).
const txnCountsFile = "txn-counts.json"

// newTxnLoss builds the watcher of lost transactions; the operations are
// given it at construction, startTxnLoss starts it.
func (n *Node) newTxnLoss(txn *topology.TxnStream) *topology.TxnLoss {
	lost := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "clusterd_txn_lost_messages_total",
		Help: "Transactions found missing from the transaction stream after a restart (damaged JetStream files), re-fetched or not.",
	})
	if err := n.Metrics.Registry.Register(lost); err != nil {
		n.log.Warn("lost-transaction metric not registered", zap.Error(err))
		lost = nil
	}
	return &topology.TxnLoss{Stream: txn, Store: n.Store, Log: n.log, Lost: lost,
		CountsFile: filepath.Join(n.Config.RootPath, txnCountsFile),
		Refetch:    func() { n.Bus.Publish(events.NodesChanged) }}
}

// startTxnLoss compares the transaction stream with the counts of the last
// clean stop, before the workers start, and keeps watching re-fetches.
func (n *Node) startTxnLoss(loss *topology.TxnLoss) {
	n.Loss = loss
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.Loss.Check(ctx); err != nil {
		n.log.Error("could not check the transaction stream for lost transactions", zap.Error(err))
	}
}

// saveTxnCounts records the stream's counts at a clean stop, for the next
// start to compare.
func (n *Node) saveTxnCounts() {
	if n.Loss == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Loss.SaveCounts(ctx); err != nil {
		n.log.Warn("could not record the transaction stream's counts; the next start cannot check it for lost transactions", zap.Error(err))
	}
}
