package node_test

import (
	"testing"
	"time"

	"github.com/clusterd/clusterd/node/nodetest"
)

func TestHubRouteMeshesLiveAndDeleteTakesItDown(t *testing.T) {
	a := nodetest.StartNamed(t, "a")
	b := nodetest.StartNamed(t, "b")

	r := nodetest.Op(t, a, "cluster_set_routes", map[string]any{"server": "hub", "routes": []any{nodetest.ClusterRoute(b)}})
	if r.Status != 200 {
		t.Fatalf("set routes: %d %s", r.Status, r.Body)
	}
	nodetest.Eventually(t, 2*time.Second, "hubs meshed", func() bool {
		return len(a.Servers.RoutedPeers()) == 1 && len(b.Servers.RoutedPeers()) == 1
	})

	// ops.cluster stays node-local: a request sent on b is answered by b even
	// when a is the only other responder in the mesh.
	nc := nodetest.Connect(t, b)
	tok := nodetest.SuperUser(t, b)
	got := nodetest.Request(t, nc, "ops.cluster.cluster_get_routes", tok, "{}")
	if string(got.Body) != `{"hub":[],"leaf":[]}` {
		t.Fatalf("b answered with a's routes (or failed): %s", got.Body)
	}

	r = nodetest.Op(t, a, "cluster_delete_routes", map[string]any{"routes": []any{nodetest.ClusterRoute(b)}})
	if r.Status != 200 {
		t.Fatalf("delete routes: %d %s", r.Status, r.Body)
	}
	nodetest.Eventually(t, 10*time.Second, "route gone", func() bool {
		return len(a.Servers.RoutedPeers()) == 0 && len(b.Servers.RoutedPeers()) == 0
	})
}
