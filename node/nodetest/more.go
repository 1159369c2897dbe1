package nodetest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/clusterd/clusterd/node"
	"github.com/nats-io/nats.go"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// StartLogged starts a node from cfg whose log (debug level and up) the test
// can inspect, and stops it when the test ends.
func StartLogged(t testing.TB, cfg node.Config) (*node.Node, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	n, err := node.Start(context.Background(), cfg, node.Options{Log: zap.New(core)})
	if err != nil {
		t.Fatalf("start node %s: %v", cfg.Clustering.NodeName, err)
	}
	t.Cleanup(func() { _ = n.Close() })
	return n, logs
}

// HTTP posts body to n's operations API (POST /) with token (empty = none).
// Reply.Status is the HTTP status.
func HTTP(t testing.TB, n *node.Node, token string, body any) Reply {
	t.Helper()
	var data []byte
	switch b := body.(type) {
	case []byte:
		data = b
	case string:
		data = []byte(b)
	default:
		var err error
		if data, err = json.Marshal(b); err != nil {
			t.Fatal(err)
		}
	}
	req, err := http.NewRequest(http.MethodPost, fmt.Sprintf("http://127.0.0.1:%d/", n.HTTPPort()), bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("POST / on %s: %v", n.Name(), err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return Reply{Status: resp.StatusCode, Body: out, Header: nats.Header(resp.Header)}
}

// Routes returns n's desired routes as cluster_get_routes reports them.
func Routes(t testing.TB, n *node.Node) string {
	t.Helper()
	r := Op(t, n, "cluster_get_routes", "{}")
	if r.Status != 200 {
		t.Fatalf("cluster_get_routes on %s: %d %s", n.Name(), r.Status, r.Body)
	}
	return string(r.Body)
}

// Consistently polls cond for the whole of d and fails the first time it
// does not hold. It is for asserting that something does NOT happen, after a
// positive signal proved the system had every chance to make it happen.
func Consistently(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if !cond() {
			t.Fatalf("%s stopped holding", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ConnectNoAuth tries to connect to url without credentials.
func ConnectNoAuth(url string) (*nats.Conn, error) {
	return nats.Connect(url, nats.NoReconnect(), nats.Timeout(2*time.Second))
}
