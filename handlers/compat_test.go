package handlers

import (
	"context"
	"testing"
	"time"

	"github.com/clusterd/clusterd/events"
	"github.com/clusterd/clusterd/storage"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"go.uber.org/zap"
)

// TestBatchedUpdateReachesAnOlderPeer: a peer running a clusterd from before
// node_set_batch (and node_synced) refuses the batch as an unknown call; the
// caller then sends the requests one node_set at a time, and both nodes end
// with the same records.
func TestBatchedUpdateReachesAnOlderPeer(t *testing.T) {
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(srv.Shutdown)
	if !srv.ReadyForConnections(5 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	conn := func() *nats.Conn {
		nc, err := nats.Connect(srv.ClientURL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		return nc
	}
	const password = "cluster-secret"
	caller, old := newOps(t), newOps(t)
	old.NodeName = "old"
	caller.Peers = events.NewPeerClient(conn(), caller.NodeName, password, 2*time.Second)
	old.Peers = events.NewPeerClient(conn(), old.NodeName, password, 2*time.Second)
	served := old.PeerHandlers()
	delete(served, callNodeSetBatch) // what an older version does not know
	delete(served, callNodeSynced)
	ps, err := events.StartPeerServer(conn(), old.NodeName, password, served, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ps.Stop)

	ctx, caller0 := context.Background(), events.Caller{User: "admin", Role: events.SuperUser}
	for _, o := range []*Ops{caller, old} {
		for _, table := range []string{"dog", "cat"} {
			if _, err := o.CreateTable(ctx, caller0, []byte(`{"table":"`+table+`"}`)); err != nil {
				t.Fatal(err)
			}
		}
	}
	sub := func(table string, subscribe, publish bool) storage.Subscription {
		return storage.Subscription{Database: "data", Table: table, Subscribe: subscribe, Publish: publish}
	}
	batches := [][]storage.Subscription{
		{sub("dog", true, true)},
		{sub("cat", true, false)},
		{sub("dog", false, true)}, // overrides the first, in order
	}
	if err := caller.linkHeld(ctx, "old", modeUpdate, batches); err != nil {
		t.Fatalf("batched update to an older peer: %v", err)
	}
	mine, ok, err := caller.Store.Node("old")
	if err != nil || !ok {
		t.Fatalf("caller's record of old: %v %v", ok, err)
	}
	theirs, ok, err := old.Store.Node("n1")
	if err != nil || !ok {
		t.Fatalf("old's record of the caller: %v %v", ok, err)
	}
	if len(mine.Subscriptions) != 2 || len(theirs.Subscriptions) != 2 {
		t.Fatalf("records: caller %+v, old %+v; want two subscriptions each", mine.Subscriptions, theirs.Subscriptions)
	}
	for _, s := range mine.Subscriptions {
		i := theirs.Find(s.Key())
		if i < 0 {
			t.Fatalf("old has no subscription for %v", s.Key())
		}
		if o := theirs.Subscriptions[i]; o.Subscribe != s.Publish || o.Publish != s.Subscribe {
			t.Fatalf("%v: caller %+v, old %+v: not mirror images", s.Key(), s, o)
		}
	}
	if i := mine.Find(storage.TableKey{Database: "data", Table: "dog"}); mine.Subscriptions[i].Subscribe {
		t.Fatalf("dog: the later request did not win: %+v", mine.Subscriptions[i])
	}
}
