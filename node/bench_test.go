package node_test

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
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

// benchPair starts a and b meshed, with tables t0..t<n-1> on both and
// a subscribed to b for all of them.
func benchPair(b *testing.B, n int) (a, p *node.Node) {
	a = nodetest.StartNamed(b, "a")
	p = nodetest.StartNamed(b, "b")
	nodetest.Op(b, p, "cluster_set_routes", map[string]any{"server": "hub", "routes": []any{nodetest.ClusterRoute(a)}})
	nodetest.Eventually(b, 5*time.Second, "mesh", func() bool { return len(a.Servers.RoutedPeers()) == 1 })
	var subs []any
	for i := 0; i < n; i++ {
		table := fmt.Sprintf("t%d", i)
		for _, x := range []*node.Node{a, p} {
			nodetest.Op(b, x, "create_table", map[string]any{"table": table})
		}
		subs = append(subs, map[string]any{"table": table, "subscribe": true, "publish": true})
	}
	if r := nodetest.Op(b, a, "add_node", map[string]any{"node_name": "b", "subscriptions": subs}); r.Status != 200 {
		b.Fatal(string(r.Body))
	}
	return a, p
}

// flip is a set_node_replication body for table ti with b, publish as given.
func flip(ti int, pub bool) map[string]any {
	return map[string]any{"node_name": "b", "subscriptions": []any{map[string]any{"table": fmt.Sprintf("t%d", ti), "subscribe": true, "publish": pub}}}
}

// BenchmarkSetNodeReplication is one client's set_node_replication on a pair,
// flipping the publish flag so every request changes both records.
func BenchmarkSetNodeReplication(b *testing.B) { benchSetNodeReplication(b, 1) }

// BenchmarkSetNodeReplication1000 is the same with 1000 tables subscribed:
// the cost of a change must not grow with the tables a record holds.
func BenchmarkSetNodeReplication1000(b *testing.B) { benchSetNodeReplication(b, 1000) }

func benchSetNodeReplication(b *testing.B, tables int) {
	a, _ := benchPair(b, tables)
	nc := nodetest.Connect(b, a)
	tok := nodetest.SuperUser(b, a)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if r := nodetest.Request(b, nc, "ops.cluster.set_node_replication", tok, flip(0, i%2 == 0)); r.Status != 200 {
			b.Fatal(string(r.Body))
		}
		lat = append(lat, time.Since(t0))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
}

// BenchmarkSetNodeReplication64 is 64 clients, each flipping its own table.
func BenchmarkSetNodeReplication64(b *testing.B) {
	const clients = 64
	a, _ := benchPair(b, clients)
	tok := nodetest.SuperUser(b, a)
	conns := make([]*nats.Conn, clients)
	for i := range conns {
		conns[i] = nodetest.Connect(b, a)
	}
	var next atomic.Int64
	b.ResetTimer()
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for i := 0; next.Add(1) <= int64(b.N); i++ {
				if r := nodetest.Request(b, conns[c], "ops.cluster.set_node_replication", tok, flip(c, i%2 == 0)); r.Status != 200 {
					b.Error(string(r.Body))
					return
				}
			}
		}(c)
	}
	wg.Wait()
}

// BenchmarkBasicVsBearer times cluster_get_routes over NATS with HarperDB's
// Basic credentials against the same read with a Bearer token, interleaved
// in one run (b.N of each, alternating), and reports basic/bearer: Basic
// pays its slow hash once, then a cache hit (target ≤ 1.5×).
func BenchmarkBasicVsBearer(b *testing.B) {
	n := nodetest.StartNamed(b, "a")
	nc := nodetest.Connect(b, n)
	msg := func(authz string) *nats.Msg {
		m := nats.NewMsg("ops.cluster.cluster_get_routes")
		m.Header.Set("Authorization", authz)
		m.Data = []byte(`{}`)
		return m
	}
	basic := msg(basicAuth("admin", nodetest.AdminPassword))
	bearer := msg("Bearer " + nodetest.SuperUser(b, n))
	do := func(m *nats.Msg) time.Duration {
		start := time.Now()
		r, err := nc.RequestMsg(m, 5*time.Second)
		if err != nil || r.Header.Get("Nats-Service-Error-Code") != "" {
			b.Fatal(err, string(r.Data))
		}
		return time.Since(start)
	}
	do(basic) // the one slow hash
	do(bearer)
	var tBasic, tBearer time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%2 == 0 {
			tBasic += do(basic)
			tBearer += do(bearer)
		} else {
			tBearer += do(bearer)
			tBasic += do(basic)
		}
	}
	b.ReportMetric(float64(tBasic.Nanoseconds())/float64(b.N), "basic-ns/op")
	b.ReportMetric(float64(tBearer.Nanoseconds())/float64(b.N), "bearer-ns/op")
	b.ReportMetric(float64(tBasic)/float64(tBearer), "basic/bearer")
}
