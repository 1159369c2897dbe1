package bench

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

func TestScratchRead(t *testing.T) {
	r := &runner{sz: sizesFor(false), ctx: context.Background(), log: io.Discard}
	r.dir = t.TempDir()
	r.report = &Report{Figures: catalogue()}
	if err := r.floorEcho(); err != nil {
		t.Fatal(err)
	}
	a, _ := r.startNode("a", nil)
	defer a.close()
	time.Sleep(500 * time.Millisecond)
	conns, _ := dial(a.n.LeafURL(), 1, nats.UserInfo(a.n.Config.Clustering.User, a.n.Password()))
	get := func(int) *nats.Msg { return opMsg(a.tok, "cluster_get_routes", []byte(`{}`)) }
	for i := 0; i < 3; i++ {
		one, err := requestLoad(conns[:1], get, r.sz.warm, 0, r.sz.reqCount, replyOK)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("echo p50 %.1f | get_routes p50 %v p99 %v", *r.report.byID()["floor.echo.p50"].Value, pct(one.lat, 50), pct(one.lat, 99))
	}
}
