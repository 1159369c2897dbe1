package topology

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func startJS(t testing.TB, domain string) (*TxnStream, jetstream.JetStream) {
	t.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, JetStreamDomain: domain,
		StoreDir: t.TempDir(), NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(s.Shutdown)
	if !s.ReadyForConnections(5 * time.Second) {
		t.Fatal("server not ready")
	}
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	ts := &TxnStream{JS: js, NC: nc, Node: domain}
	if _, err := ts.Ensure(context.Background()); err != nil {
		t.Fatal(err)
	}
	return ts, js
}

// TestPeerLastSeqsIsInclusive: the window checks that keep lanes exact rest
// on PeerLastSeqs counting a message at exactly upTo.
func TestPeerLastSeqsIsInclusive(t *testing.T) {
	ts, js := startJS(t, "a")
	ctx := context.Background()
	for _, subj := range []string{"txn.data.x.a", "txn.data.y.a", "txn.data.x.a", "txn.data.y.a"} { // seqs 1..4
		if _, err := js.Publish(ctx, subj, []byte("m")); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		upTo uint64
		x, y uint64
	}{{0, 0, 0}, {1, 1, 0}, {2, 1, 2}, {3, 3, 2}, {4, 3, 4}, {9, 3, 4}} {
		got, err := ts.PeerLastSeqs(ctx, "a", []string{"txn.data.x.a", "txn.data.y.a", "txn.data.z.a"}, c.upTo)
		if err != nil {
			t.Fatal(err)
		}
		if got["txn.data.x.a"] != c.x || got["txn.data.y.a"] != c.y || got["txn.data.z.a"] != 0 {
			t.Errorf("up to %d: %v, want x %d y %d", c.upTo, got, c.x, c.y)
		}
	}
}
