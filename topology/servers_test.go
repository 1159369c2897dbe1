package topology

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The unserved-operations connection inside an app account is delivered requests for unknown
// operation names only: the leaf server drops the served ones, which their
// own responder answers.
func TestUnservedOpsConnGetsOnlyUnservedOperations(t *testing.T) {
	s, err := StartServers(ServerOptions{NodeName: "u", Host: "127.0.0.1", ClusterName: "t", User: "cluster_user", Password: "secret",
		LeafUsers: []User{{Name: "app", Password: "app-secret"}}, StoreDir: filepath.Join(t.TempDir(), "js"), Operations: []string{"served"}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown()
	own, err := s.ProxyConn(AppAccount("app"), "own")
	if err != nil {
		t.Fatal(err)
	}
	defer own.Close()
	if _, err := own.Subscribe("ops.cluster.served", func(m *nats.Msg) { _ = m.Respond([]byte("served")) }); err != nil {
		t.Fatal(err)
	}
	unserved, err := s.AppUnservedConn(AppAccount("app"), "unserved")
	if err != nil {
		t.Fatal(err)
	}
	defer unserved.Close()
	var got atomic.Int64
	if _, err := unserved.Subscribe("ops.cluster.*", func(m *nats.Msg) {
		got.Add(1)
		_ = m.Respond([]byte("unknown"))
	}); err != nil {
		t.Fatal(err)
	}
	for _, nc := range []*nats.Conn{own, unserved} {
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	client, err := nats.Connect(fmt.Sprintf("nats://127.0.0.1:%d", s.Ports().LeafClient), nats.UserInfo("app", "app-secret"))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	for i := 0; i < 20; i++ {
		if r, err := client.Request("ops.cluster.served", nil, 2*time.Second); err != nil || string(r.Data) != "served" {
			t.Fatalf("served: %v %v", err, r)
		}
	}
	if r, err := client.Request("ops.cluster.other", nil, 2*time.Second); err != nil || string(r.Data) != "unknown" {
		t.Fatalf("unserved: %v %v", err, r)
	}
	if n := got.Load(); n != 1 {
		t.Fatalf("the unserved connection was delivered %d requests, want only the 1 unserved", n)
	}
}

// A node upgraded from a version without accounts keeps its transaction
// stream: JetStream data of the global account moves to ClusterdAccount.
func TestGlobalAccountStoreMovesToClusterdAccount(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "js")
	old, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoSigs: true, NoLog: true,
		JetStream: true, JetStreamDomain: "u", StoreDir: dir, ServerName: "u"})
	if err != nil {
		t.Fatal(err)
	}
	old.Start()
	if !old.ReadyForConnections(10 * time.Second) {
		t.Fatal("not ready")
	}
	nc, err := nats.Connect(old.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: TxnStreamName, Subjects: []string{"txn.>"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "txn.data.dog.u", []byte("before")); err != nil {
		t.Fatal(err)
	}
	nc.Close()
	old.Shutdown()
	old.WaitForShutdown()

	s, err := StartServers(ServerOptions{NodeName: "u", Host: "127.0.0.1", ClusterName: "t", User: "cluster_user", Password: "secret", StoreDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown()
	own, err := s.InternalConn("own")
	if err != nil {
		t.Fatal(err)
	}
	defer own.Close()
	js, _ = jetstream.New(own)
	st, err := js.Stream(ctx, TxnStreamName)
	if err != nil {
		t.Fatalf("the stream stored before accounts is gone: %v", err)
	}
	if m, err := st.GetLastMsgForSubject(ctx, "txn.data.dog.u"); err != nil || string(m.Data) != "before" {
		t.Fatalf("its message: %v", err)
	}
}
