package events

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/clusterd/clusterd/auth"
	"go.uber.org/zap"
)

func newDispatcher(t testing.TB, ops ...Operation) (*Dispatcher, ed25519.PrivateKey) {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	authn := auth.NewAuthenticator(auth.NewVerifier(auth.Limits{}, key.Public().(ed25519.PublicKey)), nil)
	d, err := NewDispatcher(ops, authn, NewMetrics("test"), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d, key
}

func mint(t testing.TB, key ed25519.PrivateKey, role string) string {
	t.Helper()
	tok, err := auth.Mint(key, "u", role, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return "Bearer " + tok
}

func TestDispatcherTurnsPanicsAndErrorsIntoReplies(t *testing.T) {
	d, key := newDispatcher(t,
		Operation{Name: "boom", Handler: "boom", Run: func(context.Context, Caller, []byte) (any, error) { panic("kaboom") }},
		Operation{Name: "fail", Handler: "fail", Run: func(context.Context, Caller, []byte) (any, error) {
			return nil, errors.New("load routes: disk on fire")
		}},
		Operation{Name: "ok", Handler: "ok", Run: func(_ context.Context, c Caller, _ []byte) (any, error) {
			return map[string]string{"user": c.User}, nil
		}},
	)
	admin := mint(t, key, SuperUser)
	ctx := context.Background()

	status, body := d.DispatchSync(ctx, Request{Op: "boom", Body: []byte(`{}`), Authorization: admin, RequestID: "req-1"})
	if status != 500 || string(body) != `{"error":"Internal error while running 'boom' (request id req-1); the node logged the details"}` {
		t.Fatalf("panic: %d %s", status, body)
	}
	status, body = d.DispatchSync(ctx, Request{Op: "fail", Body: []byte(`{}`), Authorization: admin})
	if status != 500 || string(body) != `{"error":"load routes: disk on fire"}` {
		t.Fatalf("error: %d %s", status, body)
	}
	// The router survives both.
	status, body = d.DispatchSync(ctx, Request{Op: "ok", Body: []byte(`{"operation":"ok"}`), Authorization: admin})
	if status != 200 || string(body) != `{"user":"u"}` {
		t.Fatalf("ok: %d %s", status, body)
	}

	// Order of checks: token, then operation, then role, then the body.
	status, body = d.DispatchSync(ctx, Request{Op: "nope", Body: []byte(`junk`)})
	if status != 401 || string(body) != `{"error":"Must login"}` {
		t.Fatalf("unknown op without token: %d %s", status, body)
	}
	status, body = d.DispatchSync(ctx, Request{Op: "nope", Body: []byte(`junk`), Authorization: mint(t, key, "cluster_user")})
	if status != 400 || string(body) != `{"error":"Operation 'nope' not found"}` {
		t.Fatalf("unknown op: %d %s", status, body)
	}
	status, body = d.DispatchSync(ctx, Request{Op: "ok", Body: []byte(`{"operation":"other"}`), Authorization: mint(t, key, "cluster_user")})
	if status != 403 || !strings.Contains(string(body), `"unauthorized_access":["Operation 'ok' is restricted to 'super_user' roles"]`) {
		t.Fatalf("role before body: %d %s", status, body)
	}
	status, body = d.DispatchSync(ctx, Request{Op: "ok", Body: []byte(`{"operation":"other"}`), Authorization: admin})
	if status != 400 || string(body) != `{"error":"Operation in body 'other' does not match subject operation 'ok'"}` {
		t.Fatalf("operation mismatch: %d %s", status, body)
	}
}

func TestDispatcherFinishesInFlightRequestsAndRefusesNewOnesWhenClosed(t *testing.T) {
	release := make(chan struct{})
	running := make(chan struct{})
	d, key := newDispatcher(t, Operation{Name: "slow", Handler: "slow", Run: func(context.Context, Caller, []byte) (any, error) {
		close(running)
		<-release
		return map[string]bool{"done": true}, nil
	}})
	admin := mint(t, key, SuperUser)
	got := make(chan string, 1)
	d.Dispatch(Request{Op: "slow", Authorization: admin}, func(status int, body []byte) { got <- string(body) })
	<-running

	closed := make(chan error, 1)
	go func() { closed <- d.Close() }()
	// New requests are refused while the in-flight one is still running…
	deadline := time.Now().Add(5 * time.Second)
	for {
		d.mu.RLock()
		closing := d.closing
		d.mu.RUnlock()
		if closing {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Close did not stop intake")
		}
		time.Sleep(time.Millisecond)
	}
	status, body := d.DispatchSync(context.Background(), Request{Op: "slow", Authorization: admin})
	if status != 503 || string(body) != `{"error":"Service is shutting down, retry on another node or later"}` {
		t.Fatalf("request after Close: %d %s", status, body)
	}
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) before the in-flight request finished", err)
	default:
	}
	// …and the in-flight one is still answered.
	close(release)
	if b := <-got; b != `{"done":true}` {
		t.Fatalf("in-flight reply %s", b)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
}
