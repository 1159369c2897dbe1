package node_test

import (
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/clusterd/clusterd/node"
	"github.com/clusterd/clusterd/node/nodetest"
)

func get(t *testing.T, port int, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", port, path))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestHealthAndMetricsEndpoints(t *testing.T) {
	n := nodetest.StartNamed(t, "web")
	port := n.HTTPPort()
	if code, body := get(t, port, "/livez"); code != 200 || body != "ok\n" {
		t.Fatalf("/livez: %d %q", code, body)
	}
	nodetest.Eventually(t, 5*time.Second, "/readyz 200", func() bool { code, _ := get(t, port, "/readyz"); return code == 200 })
	if code, body := get(t, port, "/"); code != 405 || body != `{"error":"Use POST with a JSON body carrying \"operation\""}` {
		t.Fatalf("GET /: %d %s", code, body)
	}
	if code, body := get(t, port, "/nope"); code != 404 || body != `{"error":"Not found: /nope"}` {
		t.Fatalf("GET /nope: %d %s", code, body)
	}

	tok := nodetest.SuperUser(t, n)
	nodetest.Op(t, n, "cluster_get_routes", `{}`)
	nodetest.Op(t, n, "cluster_set_routes", `{}`)
	nodetest.HTTP(t, n, "", `{"operation":"cluster_get_routes"}`)
	nodetest.HTTP(t, n, tok, `{"operation":"no_such_operation"}`)
	code, metrics := get(t, port, "/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{
		`clusterd_requests_total{operation="cluster_get_routes",status="200"} 1`,
		`clusterd_requests_total{operation="cluster_set_routes",status="400"} 1`,
		`clusterd_requests_total{operation="cluster_get_routes",status="401"} 1`,
		`clusterd_requests_total{operation="unknown",status="400"} 1`,
		`clusterd_reconcile_total{result="converged",worker="routes"}`,
		`clusterd_build_info{go_version="` + runtime.Version() + `",version="` + node.Version + `"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
