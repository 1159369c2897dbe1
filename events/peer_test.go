package events

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"go.uber.org/zap"
)

func peerTestConn(t *testing.T) *nats.Conn {
	t.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	if !s.ReadyForConnections(5 * time.Second) {
		t.Fatal("server not ready")
	}
	t.Cleanup(s.Shutdown)
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// Inter-node calls are answered only when signed with the cluster password.
func TestPeerCallsRefuseNonMembers(t *testing.T) {
	nc := peerTestConn(t)
	handlers := map[string]PeerHandler{"echo": func(_ context.Context, from string, body []byte) (any, error) {
		return map[string]string{"from": from}, nil
	}}
	srv, err := StartPeerServer(nc, "b", "right-password", handlers, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()

	var got map[string]string
	if err := NewPeerClient(nc, "a", "right-password", time.Second).Call(context.Background(), "b", "echo", struct{}{}, &got); err != nil || got["from"] != "a" {
		t.Fatalf("member call: %v %v", got, err)
	}
	err = NewPeerClient(nc, "a", "wrong-password", time.Second).Call(context.Background(), "b", "echo", struct{}{}, &got)
	var re *RemoteError
	if !errors.As(err, &re) || re.Message != "inter-node request is not signed by a cluster member" {
		t.Fatalf("non-member call: %v", err)
	}
	// A replayed or tampered request is refused too.
	msg := nats.NewMsg(peerPrefix + "b.echo")
	msg.Header.Set(hdrFrom, "a")
	msg.Header.Set(hdrTime, "0")
	msg.Header.Set(hdrSig, newPeerAuth("right-password").sign(msg.Subject, "a", "0", nil))
	resp, err := nc.RequestMsg(msg, time.Second)
	if err != nil || string(resp.Data) != `{"error":"inter-node request is too old (or clocks disagree by more than 2m)"}` {
		t.Fatalf("stale call: %v %s", err, resp.Data)
	}
	if err := NewPeerClient(nc, "a", "right-password", 200*time.Millisecond).Call(context.Background(), "nobody", "echo", struct{}{}, nil); !errors.Is(err, ErrNotListening) {
		t.Fatalf("call to a missing node: %v", err)
	}
}

// Notify reaches the handler signed like a call; a notification from a
// non-member does not.
func TestPeerNotifyRunsTheHandlerOnlyForMembers(t *testing.T) {
	nc := peerTestConn(t)
	got := make(chan string, 2)
	handlers := map[string]PeerHandler{"synced": func(_ context.Context, from string, body []byte) (any, error) {
		got <- from + " " + string(body)
		return nil, nil
	}}
	srv, err := StartPeerServer(nc, "b", "right-password", handlers, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	if err := NewPeerClient(nc, "x", "wrong-password", time.Second).Notify("b", "synced", map[string]int{"n": 0}); err != nil {
		t.Fatal(err)
	}
	if err := NewPeerClient(nc, "a", "right-password", time.Second).Notify("b", "synced", map[string]int{"n": 1}); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-got:
		if s != `a {"n":1}` {
			t.Fatalf("handler ran with %q", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the notification never reached the handler")
	}
	select {
	case s := <-got:
		t.Fatalf("a second notification ran the handler: %q", s)
	case <-time.After(100 * time.Millisecond):
	}
}
