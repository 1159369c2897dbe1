package node_test

import (
	"testing"
	"time"

	"github.com/clusterd/clusterd/node/nodetest"
	"github.com/nats-io/nats.go"
)

// BenchmarkEcho is the floor: a raw request/reply echo on the node's leaf
// server, through the same connection kind a client uses.
func BenchmarkEcho(b *testing.B) {
	n := nodetest.StartNamed(b, "a")
	srv := nodetest.Connect(b, n)
	if _, err := srv.Subscribe("echo", func(m *nats.Msg) { _ = m.Respond(m.Data) }); err != nil {
		b.Fatal(err)
	}
	_ = srv.Flush()
	nc := nodetest.Connect(b, n)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := nc.Request("echo", []byte(`{}`), time.Second); err != nil {
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
