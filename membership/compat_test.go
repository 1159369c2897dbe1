package membership

import (
	"context"
	"testing"

	"github.com/clusterd/clusterd/events"
	"github.com/clusterd/clusterd/storage"
)

// TestBatchedUpdateReachesAnOlderPeer: a peer running a clusterd from before
// node_set_batch (and node_synced) refuses the batch as an unknown call
// (coded unknown_call); the caller then sends the requests one node_set at a
// time, and both nodes end with the same records.
func TestBatchedUpdateReachesAnOlderPeer(t *testing.T) {
	srv := startNATS(t)
	caller := newMember(t, srv, "n1", nil)
	old := newMember(t, srv, "old", func(h map[string]events.PeerHandler) {
		delete(h, CallNodeSetBatch) // what an older version does not know
		delete(h, CallNodeSynced)
	})
	caller.createTables(t, "dog", "cat")
	old.createTables(t, "dog", "cat")
	batches := [][]storage.Subscription{
		{sub("dog", true, true)},
		{sub("cat", true, false)},
		{sub("dog", false, true)}, // overrides the first, in order
	}
	if err := caller.linkHeld(context.Background(), "old", Update, batches); err != nil {
		t.Fatalf("batched update to an older peer: %v", err)
	}
	mine, ok, err := caller.store.Node("old")
	if err != nil || !ok {
		t.Fatalf("caller's record of old: %v %v", ok, err)
	}
	if len(mine.Subscriptions) != 2 {
		t.Fatalf("caller's record %+v; want two subscriptions", mine.Subscriptions)
	}
	if ok, why := mirrored(caller, old); !ok {
		t.Fatalf("records not mirrored: %s", why)
	}
	if i := mine.Find(storage.TableKey{Database: "data", Table: "dog"}); mine.Subscriptions[i].Subscribe {
		t.Fatalf("dog: the later request did not win: %+v", mine.Subscriptions[i])
	}
}

// TestUnknownCallIsTold: a call a node does not serve comes back coded, so
// callers tell it by code, never by text.
func TestUnknownCallIsTold(t *testing.T) {
	srv := startNATS(t)
	a := newMember(t, srv, "a", nil)
	newMember(t, srv, "b", nil)
	err := a.cfg.Peers.Call(context.Background(), "b", "no_such_call", struct{}{}, nil)
	if !events.HasCode(err, events.CodeUnknownCall) {
		t.Fatalf("unknown call answered %v, want code %s", err, events.CodeUnknownCall)
	}
}
