package node_test

import (
	"testing"

	"github.com/clusterd/clusterd/node/nodetest"
)

func TestSyncAlwaysReachesJetStream(t *testing.T) {
	cfg := nodetest.Config(t, "a")
	cfg.Clustering.LeafServer.SyncAlways = true
	n := nodetest.Start(t, cfg)
	if js := n.Servers.Leaf.JetStreamConfig(); js == nil || !js.SyncAlways {
		t.Fatalf("JetStream config %+v: want SyncAlways", js)
	}
	off := nodetest.StartNamed(t, "b")
	if js := off.Servers.Leaf.JetStreamConfig(); js == nil || js.SyncAlways {
		t.Fatalf("default JetStream config %+v: want periodic sync", js)
	}
}
