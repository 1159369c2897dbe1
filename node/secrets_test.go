package node_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/clusterd/clusterd/node"
	"github.com/clusterd/clusterd/node/nodetest"
	"github.com/nats-io/nats.go"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

type syncBuffer struct {
	bytes.Buffer
}

func (b *syncBuffer) Sync() error { return nil }

// TestLogsCarryNoSecrets runs two nodes with debug logging through good and
// bad requests and logins, replication and shutdown, and greps every log
// line for the cluster password, tokens and the app users' passwords.
func TestLogsCarryNoSecrets(t *testing.T) {
	var buf syncBuffer
	core := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.Lock(&buf), zap.DebugLevel)
	log := zap.New(core)
	start := func(name string) *node.Node {
		cfg := nodetest.Config(t, name)
		cfg.Clustering.LeafServer.Users = []node.LeafUser{{User: "app", Password: "leaf-user-secret-123"}}
		n, err := node.Start(context.Background(), cfg, node.Options{Log: log})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = n.Close() })
		return n
	}
	a, b := start("a"), start("b")
	tok := nodetest.SuperUser(t, a)
	weak, _ := a.Token("someone", "cluster_user", time.Hour)
	nc := nodetest.Connect(t, a)
	nodetest.Request(t, nc, "ops.cluster.cluster_set_routes", tok, map[string]any{"server": "hub", "routes": []any{nodetest.ClusterRoute(b)}})
	nodetest.Request(t, nc, "ops.cluster.cluster_get_routes", weak, "{}")
	nodetest.Request(t, nc, "ops.cluster.cluster_get_routes", tok+"tampered", "{}")
	nodetest.Request(t, nc, "ops.cluster.add_node", tok, map[string]any{"node_name": "ghost", "subscriptions": []any{sub("x", true, true)}})
	// Refused logins: the cluster user as a client (the migration warning),
	// and a wrong operator password.
	for _, cred := range [][2]string{{a.Config.Clustering.User, a.Password()}, {a.OperatorUser(), "wrong-" + a.OperatorPassword()}} {
		if c, err := nats.Connect(a.LeafURL(), nats.UserInfo(cred[0], cred[1]), nats.NoReconnect()); err == nil {
			c.Close()
			t.Fatalf("%s logged in", cred[0])
		}
	}
	nodetest.Eventually(t, 5*time.Second, "mesh", func() bool { return len(a.Servers.RoutedPeers()) == 1 })
	_ = a.Close()
	_ = b.Close()
	logs := buf.String()
	if len(logs) == 0 {
		t.Fatal("no logs captured")
	}
	for what, secret := range map[string]string{
		"cluster password": nodetest.Password, "token": tok, "cluster_user token": weak, "leaf user password": "leaf-user-secret-123",
		"operator password": nodetest.OperatorPassword,
	} {
		if strings.Contains(logs, secret) {
			t.Fatalf("logs contain the %s", what)
		}
	}
}
