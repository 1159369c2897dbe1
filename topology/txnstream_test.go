package topology

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestLastSeqFollowsTheStream: LastSeq (what cluster_status compares a
// subscriber's position with to detect a recreated stream) is 0 before the
// stream exists and while it is empty, then its last sequence.
func TestLastSeqFollowsTheStream(t *testing.T) {
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, JetStreamDomain: "a",
		StoreDir: t.TempDir(), NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	defer s.Shutdown()
	if !s.ReadyForConnections(5 * time.Second) {
		t.Fatal("server not ready")
	}
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ts := &TxnStream{JS: js, NC: nc, Node: "a"}
	ctx := context.Background()
	want := func(stage string, n uint64) {
		t.Helper()
		if got, err := ts.LastSeq(ctx); err != nil || got != n {
			t.Fatalf("%s: LastSeq = %d, %v; want %d", stage, got, err, n)
		}
	}
	want("no stream", 0)
	if _, err := ts.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	want("empty stream", 0)
	for i := 0; i < 3; i++ {
		if _, err := js.Publish(ctx, "txn.data.dog.a", []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	want("three transactions", 3)
}
