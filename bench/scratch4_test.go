package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/clusterd/clusterd/node"
	"github.com/clusterd/clusterd/topology"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestScratchSub(t *testing.T) {
	r := &runner{sz: sizesFor(false), ctx: context.Background(), log: io.Discard}
	r.dir = t.TempDir()
	r.report = &Report{Figures: catalogue()}
	var logs []*observer.ObservedLogs
	start := func(name string, to *member) *member {
		cfg := node.Default()
		cfg.RootPath = filepath.Join(r.dir, name)
		cfg.Clustering.NodeName = name
		cfg.Clustering.Password = benchPassword
		cfg.OperationsAPI.Network = node.Network{Host: "127.0.0.1", Port: 0}
		cfg.Clustering.HubServer.Network = node.Network{Host: "127.0.0.1", Port: 0}
		cfg.Clustering.HubServer.LeafNodes.Network.Port = 0
		cfg.Clustering.HubServer.Cluster.Network.Port = 0
		cfg.Clustering.LeafServer.Network.Port = 0
		if to != nil {
			cfg.Clustering.HubServer.Cluster.Network.Routes = []node.RouteConfig{{Host: "127.0.0.1", Port: to.n.Servers.Ports().Cluster}}
		}
		core, l := observer.New(zapcore.InfoLevel)
		logs = append(logs, l)
		n, err := node.Start(r.ctx, cfg, node.Options{Log: zap.New(core)})
		if err != nil {
			t.Fatal(err)
		}
		m := &member{n: n}
		m.nc, _ = natsConnect(n)
		m.js, _ = jsNew(m.nc)
		m.tok, _ = n.Token("admin", "super_user", time.Hour)
		return m
	}
	a := start("a", nil)
	defer a.close()
	b := start("b", a)
	defer b.close()
	waitFor(10*time.Second, time.Millisecond, "mesh", func() bool { return meshed(a, b) })
	tables := tableNames(64)
	for _, m := range []*member{a, b} {
		createTables(m.nc, m.tok, tables)
	}
	a.op("add_node", map[string]any{"node_name": "b", "subscriptions": subs(tables)})
	time.Sleep(2 * time.Second)
	if os.Getenv("BULK") != "" {
		t0 := time.Now()
		publishAll(r.ctx, a.nc, "txn.data.t0001.a", 50000, 1024, 512)
		waitHolds(r.ctx, time.Minute, "bulk", b.js, map[string]uint64{"txn.data.t0001.a": 50000})
		fmt.Println("bulk done", time.Since(t0))
	}
	if os.Getenv("FLIPS") != "" {
		conns, _ := dial(a.n.LeafURL(), 64, nats.UserInfo(a.n.Config.Clustering.User, a.n.Password()))
		flips := make([]bool, 64)
		mutate := func(i int) *nats.Msg {
			flips[i] = !flips[i]
			body, _ := json.Marshal(map[string]any{"node_name": "b", "subscriptions": []any{
				map[string]any{"table": tables[i], "subscribe": true, "publish": flips[i]}}})
			return opMsg(a.tok, "set_node_replication", body)
		}
		res, err := requestLoad(conns, mutate, 0, 2*time.Second, 0, replyOK)
		fmt.Println("flips", len(res.lat), err)
	}
	for i := 0; i < 5; i++ {
		tb := "s" + strconv.Itoa(i)
		a.op("create_table", map[string]any{"table": tb})
		b.op("create_table", map[string]any{"table": tb})
		onB, _ := watch(r.ctx, b.js, topology.TxnStreamName, "txn.data."+tb+".a")
		onA, _ := watch(r.ctx, a.js, topology.TxnStreamName, "txn.data."+tb+".b")
		n0 := []int{logs[0].Len(), logs[1].Len()}
		t0 := time.Now()
		a.op("set_node_replication", map[string]any{"node_name": "b", "subscriptions": []any{sub(tb)}})
		replied := time.Now()
		a.js.Publish(r.ctx, "txn.data."+tb+".a", []byte("x"))
		b.js.Publish(r.ctx, "txn.data."+tb+".b", []byte("x"))
		x, _ := onB.next(10 * time.Second)
		y, _ := onA.next(10 * time.Second)
		onA.stop()
		onB.stop()
		fmt.Printf("trial %d: request %v, a→b %v, b→a %v after reply\n", i, replied.Sub(t0), x.at.Sub(replied), y.at.Sub(replied))
		for j, l := range logs {
			for _, e := range l.All()[n0[j]:] {
				fmt.Printf("   %s %+v %s %v\n", []string{"a", "b"}[j], e.Time.Sub(replied), e.Message, e.ContextMap())
			}
		}
	}
}

func natsConnect(n *node.Node) (*nats.Conn, error) {
	return nats.Connect(n.LeafURL(), nats.UserInfo(n.Config.Clustering.User, n.Password()))
}

func jsNew(nc *nats.Conn) (jetstream.JetStream, error) { return jetstream.New(nc) }
