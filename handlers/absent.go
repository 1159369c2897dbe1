package handlers

import (
	"context"
	"errors"
	"time"

	"github.com/clusterd/clusterd/events"
	"github.com/clusterd/clusterd/storage"
	"github.com/clusterd/clusterd/topology"
	"github.com/nats-io/nats.go/jetstream"
)

// The stand-ins New gives for absent dependencies (see New).

type noServers struct{}

func (noServers) RoutedNodes() []string              { return []string{} }
func (noServers) ClusterPort() int                   { return 0 }
func (noServers) LinkProblems() []topology.LinkFault { return nil }

type noReplication struct{}

var errNoReplication = errors.New("replication is not running")

func (noReplication) Status() map[string]topology.PeerReplication { return nil }
func (noReplication) Positions(context.Context, storage.Node) (map[storage.TableKey]topology.TablePosition, error) {
	return nil, errNoReplication
}

type noTxnStream struct{}

var errNoTxnStream = errors.New("the transaction stream is not running")

func (noTxnStream) Name() string                          { return topology.TxnStreamName }
func (noTxnStream) TableFilter(k storage.TableKey) string { return topology.TableSubjects(k) }
func (noTxnStream) Info(context.Context) (*jetstream.StreamInfo, error) {
	return nil, errNoTxnStream
}
func (noTxnStream) Describe(context.Context, []storage.TableKey) (map[storage.TableKey]topology.TableStats, error) {
	return nil, errNoTxnStream
}
func (noTxnStream) Purge(context.Context, ...jetstream.StreamPurgeOpt) error { return errNoTxnStream }
func (noTxnStream) LastSeq(context.Context) (uint64, error)                  { return 0, errNoTxnStream }
func (noTxnStream) LastImportedSeq(context.Context, string) (uint64, error) {
	return 0, errNoTxnStream
}
func (noTxnStream) LastMsgs(context.Context, []string) (map[string]topology.LastMsg, error) {
	return nil, errNoTxnStream
}
func (noTxnStream) Pending(context.Context, string, uint64, time.Time) (uint64, error) {
	return 0, errNoTxnStream
}

// docStore stores no node: the documentation's probes of remove_node's name
// check find none. Nothing else of it is called.
type docStore struct{ Store }

func (docStore) Node(string) (storage.Node, bool, error) { return storage.Node{}, false, nil }

type noLossGuard struct{}

func (noLossGuard) Purging(_ context.Context, purge func() error) error { return purge() }
func (noLossGuard) Records() []topology.TxnLossRecord                   { return nil }

type noMesh struct{}

func (noMesh) Broadcast(context.Context, string, any, time.Duration, func(events.PeerReply) bool) error {
	return events.Errorf(503, "The node is not connected to the mesh yet")
}
