package bench

import (
	"context"
	"encoding/json"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/clusterd/clusterd/events"
	"github.com/clusterd/clusterd/node"
)

func TestScratchProcMutate(t *testing.T) {
	r := &runner{sz: sizesFor(false), ctx: context.Background(), log: io.Discard}
	r.dir = t.TempDir()
	bin, err := r.clusterdBinary()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(r.dir, "issuer.key")
	key, _ := issuerKey(keyFile)
	tok, _ := events.Mint(key, "admin", events.SuperUser, time.Hour)
	ca, _ := procConfig(r.dir, "a", keyFile, 2*time.Second)
	pa, err := startProc(bin, ca)
	if err != nil {
		t.Fatal(err)
	}
	defer pa.kill()
	cb, _ := procConfig(r.dir, "b", keyFile, 2*time.Second)
	cb.Clustering.HubServer.Cluster.Network.Routes = []node.RouteConfig{{Host: "127.0.0.1", Port: ca.Clustering.HubServer.Cluster.Network.Port}}
	pb, err := startProc(bin, cb)
	if err != nil {
		t.Fatal(err)
	}
	defer pb.kill()
	na, _ := pa.conn()
	nb, _ := pb.conn()
	tables := tableNames(4)
	createTables(na, tok, tables)
	createTables(nb, tok, tables)
	time.Sleep(time.Second)
	if _, err := call(na, tok, "add_node", map[string]any{"node_name": "b", "subscriptions": subs(tables)}); err != nil {
		t.Fatal(err)
	}
	for _, flip := range []bool{false, true} {
		var lat []time.Duration
		for i := 0; i < 300; i++ {
			body, _ := json.Marshal(map[string]any{"node_name": "b", "subscriptions": []any{map[string]any{"table": tables[0], "subscribe": true, "publish": !flip || i%2 == 0}}})
			t0 := time.Now()
			resp, err := na.RequestMsg(opMsg(tok, "set_node_replication", body), 5*time.Second)
			if err != nil || replyOK(resp) != nil {
				t.Fatal(err, resp)
			}
			lat = append(lat, time.Since(t0))
		}
		t.Logf("processes, flip=%v: p50 %v p90 %v p99 %v", flip, pct(lat, 50), pct(lat, 90), pct(lat, 99))
	}
}
