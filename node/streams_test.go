package node_test

import (
	"context"
	"testing"
	"time"

	"github.com/clusterd/clusterd/node"
	"github.com/clusterd/clusterd/node/nodetest"
	"github.com/nats-io/nats.go/jetstream"
)

// txnConfig reads n's transaction stream settings as JetStream reports them.
func txnConfig(t *testing.T, n *node.Node) jetstream.StreamConfig {
	t.Helper()
	js, err := jetstream.New(nodetest.Connect(t, n))
	if err != nil {
		t.Fatal(err)
	}
	var cfg jetstream.StreamConfig
	nodetest.Eventually(t, 10*time.Second, "txn stream on "+n.Name(), func() bool {
		s, err := js.Stream(context.Background(), "txn")
		if err != nil {
			return false
		}
		cfg = s.CachedInfo().Config
		return true
	})
	return cfg
}

// TestConfigStreamLimitsReachTheTxnStream checks clustering.leafServer.streams
// end to end: a node creates its transaction stream with them, and a node
// restarted with other values (or whose stream is changed behind its back)
// brings the existing stream in line.
func TestConfigStreamLimitsReachTheTxnStream(t *testing.T) {
	cfg := nodetest.Config(t, "a")
	// maxAge shorter than JetStream's default 2 min duplicate window: the
	// window follows it (JetStream refuses a window longer than maxAge).
	cfg.Clustering.LeafServer.Streams.MaxAge = time.Minute
	a := nodetest.Start(t, cfg)
	op(t, a, "create_table", map[string]any{"table": "dog"}, 200)
	op(t, a, "describe_all", "{}", 200)
	if got := txnConfig(t, a); got.MaxAge != time.Minute || got.Duplicates != time.Minute {
		t.Fatalf("maxAge 1m: stream has max age %v, duplicate window %v; want 1m and 1m", got.MaxAge, got.Duplicates)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}

	// Only the duplicate window changes: the existing stream is updated.
	cfg.Clustering.LeafServer.Streams.DuplicateWindow = 3 * time.Second
	a = nodetest.Start(t, cfg)
	want := func(c jetstream.StreamConfig) bool { return c.MaxAge == time.Minute && c.Duplicates == 3*time.Second }
	nodetest.Eventually(t, 15*time.Second, "restarted node updates its stream", func() bool { return want(txnConfig(t, a)) })

	// Changed behind the node's back (by someone with clusterd's own
	// credentials: no app user can): restored by a later pass.
	js, err := jetstream.New(nodetest.Internal(t, a))
	if err != nil {
		t.Fatal(err)
	}
	drifted := txnConfig(t, a)
	drifted.Duplicates = 30 * time.Second
	if _, err := js.UpdateStream(context.Background(), drifted); err != nil {
		t.Fatal(err)
	}
	nodetest.Eventually(t, 15*time.Second, "duplicate window restored", func() bool { return want(txnConfig(t, a)) })
}
