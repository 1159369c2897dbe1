package events

import (
	"context"

	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
)

// A peer handler's error with a code reaches the caller with that code, so
// callers act on codes, never on text.
func TestPeerErrorsCarryTheirCode(t *testing.T) {
	nc := peerTestConn(t)
	srv, err := StartPeerServer(nc, "b", "pw", map[string]PeerHandler{
		"busy": func(context.Context, string, []byte) (any, error) {
			return nil, &CodedError{Code: CodeBusy, Message: "changing it myself"}
		},
	}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	c := NewPeerClient(nc, "a", "pw", time.Second)
	if err := c.Call(context.Background(), "b", "busy", struct{}{}, nil); !HasCode(err, CodeBusy) || err.Error() != "changing it myself" {
		t.Fatalf("busy call: %v", err)
	}
	if err := c.Call(context.Background(), "b", "nope", struct{}{}, nil); !HasCode(err, CodeUnknownCall) {
		t.Fatalf("unknown call: %v", err)
	}
}

// Stop cancels the calls in flight and waits for them: no handler runs
// after Stop returns.
func TestPeerServerStopWaitsForCallsInFlight(t *testing.T) {
	nc := peerTestConn(t)
	started := make(chan struct{})
	var finished atomic.Bool
	srv, err := StartPeerServer(nc, "b", "pw", map[string]PeerHandler{
		"slow": func(ctx context.Context, _ string, _ []byte) (any, error) {
			close(started)
			<-ctx.Done() // Stop cancels it
			// A handler slow to finish after the cancel is the subject.
			time.Sleep(50 * time.Millisecond)
			finished.Store(true)
			return nil, ctx.Err()
		},
	}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = NewPeerClient(nc, "a", "pw", 5*time.Second).Call(context.Background(), "b", "slow", struct{}{}, nil)
	}()
	select {
	case <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("the call never reached its handler")
	}
	srv.Stop()
	if !finished.Load() {
		t.Fatal("Stop returned while a call was still running")
	}
}

// An operation with a deadline sees it in its context; one without runs
// without.
func TestOperationDeadlineReachesTheOperation(t *testing.T) {
	seen := make(chan time.Duration, 2)
	run := func(ctx context.Context, _ Caller, _ []byte) (any, error) {
		dl, ok := ctx.Deadline()
		if !ok {
			seen <- 0
		} else {
			seen <- time.Until(dl)
		}
		return map[string]string{}, nil
	}
	d, key := newDispatcher(t,
		Operation{Name: "bounded", Handler: "bounded", Deadline: 3 * time.Second, Run: run},
		Operation{Name: "free", Handler: "free", Run: run})
	admin := mint(t, key, SuperUser)
	if status, body := d.DispatchSync(context.Background(), Request{Op: "bounded", Body: []byte(`{}`), Authorization: admin}); status != 200 {
		t.Fatalf("bounded: %d %s", status, body)
	}
	if left := <-seen; left <= 0 || left > 3*time.Second {
		t.Fatalf("bounded operation: %v left of its deadline, want (0, 3s]", left)
	}
	if status, body := d.DispatchSync(context.Background(), Request{Op: "free", Body: []byte(`{}`), Authorization: admin}); status != 200 {
		t.Fatalf("free: %d %s", status, body)
	}
	if left := <-seen; left != 0 {
		t.Fatalf("an operation without a deadline got one (%v)", left)
	}
}
