package bench

import (
	"context"
	"encoding/json"
	"github.com/nats-io/nats.go"
	"io"
	"os"
	"syscall"
	"testing"
	"time"
)

func TestScratchMutate(t *testing.T) {
	r := &runner{sz: sizesFor(false), ctx: context.Background(), log: io.Discard}
	r.dir = t.TempDir()
	r.report = &Report{Figures: catalogue()}
	a, err := r.startNode("a", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	b, err := r.startNode("b", a)
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	waitFor(10*time.Second, time.Millisecond, "mesh", func() bool { return meshed(a, b) })
	tables := tableNames(64)
	for _, m := range []*member{a, b} {
		createTables(m.nc, m.tok, tables)
	}
	if _, err := a.op("add_node", map[string]any{"node_name": "b", "subscriptions": subs(tables)}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	os.Setenv("CLUSTERD_TIMING", "1")
	var lat []time.Duration
	var ru0 syscall.Rusage
	syscall.Getrusage(0, &ru0)
	defer func() {
		var ru1 syscall.Rusage
		syscall.Getrusage(0, &ru1)
		cpu := time.Duration(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
		t.Logf("CPU %v for 400 ops = %v per op", cpu, cpu/400)
	}()
	for i := 0; i < 400; i++ {
		body, _ := json.Marshal(map[string]any{"node_name": "b", "subscriptions": []any{map[string]any{"table": tables[0], "subscribe": true, "publish": os.Getenv("FLIP") == "" || i%2 == 0}}})
		t0 := time.Now()
		resp, err := a.nc.RequestMsg(opMsg(a.tok, "set_node_replication", body), 5*time.Second)
		if err != nil || replyOK(resp) != nil {
			t.Fatal(err, resp)
		}
		lat = append(lat, time.Since(t0))
	}
	t.Logf("p50 %v p90 %v p99 %v", pct(lat, 50), pct(lat, 90), pct(lat, 99))
}

func TestScratchPing(t *testing.T) {
	r := &runner{sz: sizesFor(false), ctx: context.Background(), log: io.Discard}
	r.dir = t.TempDir()
	r.report = &Report{Figures: catalogue()}
	a, _ := r.startNode("a", nil)
	defer a.close()
	b, _ := r.startNode("b", a)
	defer b.close()
	waitFor(10*time.Second, time.Millisecond, "mesh", func() bool { return meshed(a, b) })
	b.nc.Subscribe("ping.b", func(m *nats.Msg) { m.Respond(m.Data) })
	b.nc.Flush()
	time.Sleep(500 * time.Millisecond)
	var lat []time.Duration
	for i := 0; i < 1000; i++ {
		t0 := time.Now()
		if _, err := a.nc.Request("ping.b", []byte("x"), time.Second); err != nil {
			t.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	t.Logf("a→b ping p50 %v p90 %v p99 %v", pct(lat, 50), pct(lat, 90), pct(lat, 99))
}

func TestScratchMutateProfile(t *testing.T) {
	TestScratchMutate(t)
}
