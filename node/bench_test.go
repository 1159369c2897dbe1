package node_test

import (
	"slices"
	"testing"
	"time"

	"github.com/clusterd/clusterd/node"
	"github.com/clusterd/clusterd/node/nodetest"
	"github.com/nats-io/nats.go"
)

// BenchmarkEcho is BenchmarkGetRoutes' floor: a raw request/reply echo on
// the node's leaf server, the responder connected in-process as clusterd's
// own connection is, the requester over TCP carrying the same Authorization
// header (as clusterbench's echo floor).
func BenchmarkEcho(b *testing.B) {
	n := nodetest.StartNamed(b, "a")
	srv, err := n.Servers.InternalConn("echo")
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	if _, err := srv.Subscribe("echo", func(m *nats.Msg) { _ = m.Respond(m.Data) }); err != nil {
		b.Fatal(err)
	}
	_ = srv.Flush()
	nc := nodetest.Connect(b, n)
	msg := nats.NewMsg("echo")
	msg.Header.Set("Authorization", "Bearer "+nodetest.SuperUser(b, n))
	msg.Data = []byte(`{}`)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := nc.RequestMsg(msg, time.Second); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGetRoutes(b *testing.B) {
	n := nodetest.StartNamed(b, "a")
	nc := nodetest.Connect(b, n)
	tok := nodetest.SuperUser(b, n)
	msg := nats.NewMsg("ops.cluster.cluster_get_routes")
	msg.Header.Set("Authorization", "Bearer "+tok)
	msg.Data = []byte(`{}`)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r, err := nc.RequestMsg(msg, time.Second)
		if err != nil || r.Header.Get("Nats-Service-Error-Code") != "" {
			b.Fatal(err, string(r.Data))
		}
	}
}

// BenchmarkSetNodeReplication is one client's set_node_replication on a pair,
// flipping the publish flag so every request changes both records.
func BenchmarkSetNodeReplication(b *testing.B) {
	a := nodetest.StartNamed(b, "a")
	p := nodetest.StartNamed(b, "b")
	nodetest.Op(b, p, "cluster_set_routes", map[string]any{"server": "hub", "routes": []any{nodetest.ClusterRoute(a)}})
	nodetest.Eventually(b, 5*time.Second, "mesh", func() bool { return len(a.Servers.RoutedPeers()) == 1 })
	for _, n := range []*node.Node{a, p} {
		nodetest.Op(b, n, "create_table", map[string]any{"table": "dog"})
	}
	sub := func(pub bool) map[string]any {
		return map[string]any{"node_name": "b", "subscriptions": []any{map[string]any{"table": "dog", "subscribe": true, "publish": pub}}}
	}
	if r := nodetest.Op(b, a, "add_node", sub(true)); r.Status != 200 {
		b.Fatal(string(r.Body))
	}
	nc := nodetest.Connect(b, a)
	tok := nodetest.SuperUser(b, a)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if r := nodetest.Request(b, nc, "ops.cluster.set_node_replication", tok, sub(i%2 == 0)); r.Status != 200 {
			b.Fatal(string(r.Body))
		}
		lat = append(lat, time.Since(t0))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
}
