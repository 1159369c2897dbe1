// Package nodetest starts real clusterd nodes for tests: embedded servers on
// 127.0.0.1 with ephemeral ports and Badger in t.TempDir().
package nodetest

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/clusterd/clusterd/node"
	"github.com/nats-io/nats.go"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

// Password is the cluster password test nodes share unless told otherwise.
const Password = "test-cluster-secret"

// AdminPassword is the password of test nodes' first-start super_user
// "admin" (HarperDB's Basic credentials).
const AdminPassword = "test-admin-password"

// OperatorPassword is the operator user's password on test nodes.
const OperatorPassword = "test-operator-secret"

// Config returns a config for a test node named name: every port 0, all on
// 127.0.0.1, rootPath in a fresh temp dir.
func Config(t testing.TB, name string) node.Config {
	cfg := node.Default()
	cfg.RootPath = t.TempDir()
	cfg.Clustering.NodeName = name
	cfg.Clustering.Password = Password
	cfg.Auth.AdminPassword = AdminPassword
	cfg.OperationsAPI.Network.Host, cfg.OperationsAPI.Network.Port = "127.0.0.1", 0
	cfg.Clustering.LeafServer.Operator.Password = OperatorPassword
	cfg.Clustering.HubServer.Network = node.Network{Host: "127.0.0.1", Port: 0}
	cfg.Clustering.HubServer.LeafNodes.Network.Port = 0
	cfg.Clustering.HubServer.Cluster.Network.Port = 0
	cfg.Clustering.LeafServer.Network.Port = 0
	cfg.Clustering.RequestTimeout = 2 * time.Second
	return cfg
}

// Start starts a node from cfg and stops it when the test ends.
func Start(t testing.TB, cfg node.Config) *node.Node {
	t.Helper()
	log := zap.NewNop()
	if testing.Verbose() {
		level := zap.WarnLevel
		if os.Getenv("CLUSTERD_TEST_LOG") == "debug" {
			level = zap.DebugLevel
		}
		if os.Getenv("CLUSTERD_TEST_LOG") == "info" {
			level = zap.InfoLevel
		}
		log = zaptest.NewLogger(t, zaptest.Level(level))
	}
	n, err := node.Start(context.Background(), cfg, node.Options{Log: log})
	if err != nil {
		t.Fatalf("start node %s: %v", cfg.Clustering.NodeName, err)
	}
	t.Cleanup(func() { _ = n.Close() })
	return n
}

// StartNamed starts a node with Config(t, name).
func StartNamed(t testing.TB, name string) *node.Node { return Start(t, Config(t, name)) }

// Connect connects a client to n's leaf client port as the operator user.
func Connect(t testing.TB, n *node.Node) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(n.LeafURL(), nats.UserInfo(n.OperatorUser(), n.OperatorPassword()))
	if err != nil {
		t.Fatalf("connect to %s: %v", n.Name(), err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// Internal connects to n's leaf server as clusterd itself (its account is
// the one the mesh carries), for tests of the mesh's own traffic.
func Internal(t testing.TB, n *node.Node) *nats.Conn {
	t.Helper()
	nc, err := n.Servers.InternalConn("test-internal")
	if err != nil {
		t.Fatalf("connect to %s: %v", n.Name(), err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// SuperUser returns a super_user token n trusts.
func SuperUser(t testing.TB, n *node.Node) string {
	t.Helper()
	tok, err := n.Token("admin", "super_user", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// Reply is an operation reply as a client sees it.
type Reply struct {
	Status int // 200, or the Nats-Service-Error-Code
	Body   []byte
	Header nats.Header
}

// JSON decodes the body into a map.
func (r Reply) JSON(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("reply is not a JSON object: %v: %s", err, r.Body)
	}
	return m
}

// Error returns the body's "error" field.
func (r Reply) Error() string {
	var e struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(r.Body, &e)
	return e.Error
}

// Request sends an operation request on subject with token (empty = none).
func Request(t testing.TB, nc *nats.Conn, subject, token string, body any) Reply {
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
	msg := nats.NewMsg(subject)
	msg.Data = data
	if token != "" {
		msg.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := nc.RequestMsg(msg, 10*time.Second)
	if err != nil {
		t.Fatalf("request %s: %v", subject, err)
	}
	r := Reply{Status: 200, Body: resp.Data, Header: resp.Header}
	if code := resp.Header.Get("Nats-Service-Error-Code"); code != "" {
		r.Status, _ = strconv.Atoi(code)
	}
	return r
}

// Op sends operation op to n (node-local subject) as super_user.
func Op(t testing.TB, n *node.Node, op string, body any) Reply {
	t.Helper()
	return Request(t, Connect(t, n), "ops.cluster."+op, SuperUser(t, n), body)
}

// Eventually polls cond until it holds or timeout passes.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// ClusterRoute returns n's clustering address as a route body element.
func ClusterRoute(n *node.Node) map[string]any {
	return map[string]any{"host": "127.0.0.1", "port": n.Servers.Ports().Cluster}
}

// LeafRoute returns n's hub leafnode listener as a route body element.
func LeafRoute(n *node.Node) map[string]any {
	return map[string]any{"host": "127.0.0.1", "port": n.Servers.Ports().HubLeaf}
}

// Name formats a test node name.
func Name(i int) string { return fmt.Sprintf("n%d", i) }

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// FixedPorts gives cfg fixed free ports, so a restarted node is found again
// where its peers' routes point. The ports are held open together while
// chosen, so they differ from each other.
func FixedPorts(t testing.TB, cfg node.Config) node.Config {
	t.Helper()
	var held []net.Listener
	pick := func() int {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, l)
		return l.Addr().(*net.TCPAddr).Port
	}
	cfg.OperationsAPI.Network.Port = pick()
	cfg.Clustering.HubServer.Network.Port = pick()
	cfg.Clustering.HubServer.LeafNodes.Network.Port = pick()
	cfg.Clustering.HubServer.Cluster.Network.Port = pick()
	cfg.Clustering.LeafServer.Network.Port = pick()
	for _, l := range held {
		l.Close()
	}
	return cfg
}
