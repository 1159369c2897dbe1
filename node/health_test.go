package node_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clusterd/clusterd/node"
	"github.com/clusterd/clusterd/node/nodetest"
	"github.com/clusterd/clusterd/storage"
)

func httpGet(t *testing.T, n *node.Node, path string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d%s", n.HTTPPort(), path))
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// postOp sends an operation to n's HTTP operations API with an
// Authorization header when token is not empty.
func postOp(t *testing.T, n *node.Node, token, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, fmt.Sprintf("http://127.0.0.1:%d/", n.HTTPPort()), bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("POST /: %v", err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("POST / reply: %v", err)
	}
	return resp.StatusCode, out
}

// metric returns the value of the sample whose line starts with series
// (name and labels exactly as exposed, e.g. `x_total{a="b"}`), or -1.
func metric(text, series string) float64 {
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}

func scrape(t *testing.T, n *node.Node) string {
	t.Helper()
	code, text := httpGet(t, n, "/metrics")
	if code != 200 {
		t.Fatalf("/metrics = %d", code)
	}
	return text
}

func TestMetricsMove(t *testing.T) {
	nodes := settledMesh(t, "a", "b")
	a := nodes[0]
	for _, n := range nodes {
		nodetest.Op(t, n, "create_table", map[string]any{"table": "dog"})
	}
	if r := nodetest.Op(t, a, "add_node", map[string]any{"node_name": "b", "subscriptions": []any{
		map[string]any{"table": "dog", "subscribe": true, "publish": true},
	}}); r.Status != 200 {
		t.Fatalf("add_node: %s", r.Body)
	}
	before := scrape(t, a)
	ok := metric(before, `clusterd_requests_total{operation="cluster_status",status="200"}`)
	bad := metric(before, `clusterd_requests_total{operation="purge_stream",status="400"}`)
	durations := metric(before, `clusterd_request_duration_seconds_count{operation="cluster_status"}`)
	passes := metric(before, `clusterd_reconcile_duration_seconds_count{worker="replication"}`)

	nodetest.Op(t, a, "cluster_status", "{}")
	nodetest.Op(t, a, "cluster_status", "{}")
	nodetest.Op(t, a, "purge_stream", "{}")
	nodetest.Op(t, a, "no_such_op", "{}")
	// A peer that is gone leaves a notice to deliver: the notices worker's
	// queue grows.
	if err := a.Store.Update(func(tx *storage.Tx) error {
		return tx.PutNode(storage.Node{Name: "gone", Added: time.Now(), Subscriptions: []storage.Subscription{{Database: "data", Table: "dog", Publish: true}}})
	}); err != nil {
		t.Fatal(err)
	}
	if r := nodetest.Op(t, a, "remove_node", map[string]any{"node_name": "gone"}); r.Status != 200 {
		t.Fatalf("remove_node: %s", r.Body)
	}

	var after string
	nodetest.Eventually(t, 10*time.Second, "counters to move", func() bool {
		after = scrape(t, a)
		return metric(after, `clusterd_reconcile_duration_seconds_count{worker="replication"}`) > passes &&
			metric(after, `clusterd_worker_queue_depth{worker="notices"}`) == 1
	})
	if got := metric(after, `clusterd_requests_total{operation="cluster_status",status="200"}`); got != max(ok, 0)+2 {
		t.Errorf("cluster_status 200 count went from %v to %v, want +2", ok, got)
	}
	if got := metric(after, `clusterd_requests_total{operation="purge_stream",status="400"}`); got != max(bad, 0)+1 {
		t.Errorf("purge_stream 400 count went from %v to %v, want +1", bad, got)
	}
	if got := metric(after, `clusterd_requests_total{operation="unknown",status="400"}`); got < 1 {
		t.Errorf("unknown operations are not counted under a bounded label: %v", got)
	}
	if got := metric(after, `clusterd_request_duration_seconds_count{operation="cluster_status"}`); got != max(durations, 0)+2 {
		t.Errorf("cluster_status duration count went from %v to %v, want +2", durations, got)
	}
	for _, series := range []string{
		`clusterd_reconcile_total{result="converged",worker="routes"}`,
		`clusterd_reconcile_duration_seconds_count{worker="routes"}`,
		`clusterd_reconcile_duration_seconds_count{worker="notices"}`,
		`clusterd_worker_queue_depth{worker="routes"}`,
		`clusterd_worker_queue_depth{worker="replication"}`,
		`clusterd_replication_lag_messages{peer="b"}`,
		fmt.Sprintf(`clusterd_build_info{go_version=%q,version=%q}`, runtime.Version(), node.Version),
	} {
		if metric(after, series) < 0 {
			t.Errorf("/metrics has no %s", series)
		}
	}
	if got := metric(after, `clusterd_worker_queue_depth{worker="replication"}`); got != 0 {
		t.Errorf("replication queue depth = %v with every subscription sourced", got)
	}
}

// seedUnreachablePeer records, in a stopped node's store, a peer that does
// not exist with a subscription to pull from it: replication can never
// converge while it is there.
func seedUnreachablePeer(t *testing.T, cfg node.Config) {
	t.Helper()
	st, err := storage.Open(filepath.Join(cfg.RootPath, "state"))
	if err != nil {
		t.Fatal(err)
	}
	dog := storage.TableKey{Database: "data", Table: "dog"}
	if _, err := st.PutTables([]storage.Table{{TableKey: dog}}); err != nil {
		t.Fatal(err)
	}
	if err := st.Update(func(tx *storage.Tx) error {
		return tx.PutNode(storage.Node{Name: "ghost", Added: time.Now(), Subscriptions: []storage.Subscription{{Database: "data", Table: "dog", Subscribe: true}}})
	}); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestReadyzWaitsForConvergenceAndLivezDoesNot(t *testing.T) {
	cfg := nodetest.Config(t, "r")
	if err := os.MkdirAll(cfg.RootPath, 0o700); err != nil {
		t.Fatal(err)
	}
	seedUnreachablePeer(t, cfg)
	n := nodetest.Start(t, cfg)

	if code, body := httpGet(t, n, "/livez"); code != 200 || body != "ok\n" {
		t.Errorf("/livez = %d %q", code, body)
	}
	// Routes converge; replication cannot, and readiness holds off however
	// long its worker retries.
	nodetest.Eventually(t, 10*time.Second, "routes converged", func() bool {
		code, body := httpGet(t, n, "/readyz")
		if code != 503 {
			t.Fatalf("/readyz = %d %q while replication cannot converge", code, body)
		}
		return body == "not ready: replication not converged yet\n"
	})
	for i := 0; i < 3; i++ {
		if code, body := httpGet(t, n, "/readyz"); code != 503 || body != "not ready: replication not converged yet\n" {
			t.Fatalf("/readyz = %d %q, want 503 while replication cannot converge", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code, m := postOp(t, n, nodetest.SuperUser(t, n), `{"operation":"remove_node","node_name":"ghost"}`); code != 200 {
		t.Fatalf("remove_node = %d %v", code, m)
	}
	nodetest.Eventually(t, 10*time.Second, "/readyz 200", func() bool {
		code, body := httpGet(t, n, "/readyz")
		return code == 200 && body == "ok\n"
	})
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if ok, reason := n.Ready(); ok || reason != "shutting down" {
		t.Errorf("after Close: Ready() = %v %q", ok, reason)
	}
}

func TestStatusOperationsOverHTTPWithRoleClaims(t *testing.T) {
	n := nodetest.StartNamed(t, "h")
	nodetest.Op(t, n, "create_table", map[string]any{"table": "dog"})
	super := nodetest.SuperUser(t, n)
	clusterUser, err := n.Token("replicator", "cluster_user", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		body, handler string
		wantOK        func(map[string]any) bool
	}{
		{`{"operation":"cluster_status"}`, "clusterStatus", func(m map[string]any) bool {
			return m["node_name"] == "h" && m["is_enabled"] == true
		}},
		{`{"operation":"cluster_network","timeout":500}`, "clusterNetwork", func(m map[string]any) bool {
			nodes, _ := m["nodes"].([]any)
			return len(nodes) == 1
		}},
		{`{"operation":"purge_stream","table":"dog","options":{"keep":1}}`, "purgeStream", func(m map[string]any) bool {
			return m["message"] == "Successfully purged table 'data.dog'"
		}},
	} {
		code, m := postOp(t, n, super, c.body)
		if code != 200 || !c.wantOK(m) {
			t.Errorf("%s as super_user = %d %v", c.body, code, m)
		}
		code, m = postOp(t, n, clusterUser, c.body)
		want := fmt.Sprintf("[Operation '%s' is restricted to 'super_user' roles]", c.handler)
		if code != 403 || fmt.Sprint(m["unauthorized_access"]) != want {
			t.Errorf("%s as cluster_user = %d %v", c.body, code, m)
		}
		code, m = postOp(t, n, "", c.body)
		if code != 401 || m["error"] != "Must login" {
			t.Errorf("%s without a token = %d %v", c.body, code, m)
		}
		// The same over NATS.
		var op struct {
			Operation string `json:"operation"`
		}
		_ = json.Unmarshal([]byte(c.body), &op)
		r := nodetest.Request(t, nodetest.Connect(t, n), "ops.cluster."+op.Operation, clusterUser, c.body)
		if r.Status != 403 || r.Header.Get("Nats-Service-Error-Code") != "403" {
			t.Errorf("%s over NATS as cluster_user = %d %s", c.body, r.Status, r.Body)
		}
	}
}

// natsBinary returns the nats CLI, skipping the test when it is not installed.
func natsBinary(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("NATS_CLI"), filepath.Join(os.Getenv("HOME"), "go", "bin", "nats"), "/root/go/bin/nats"} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("nats"); err == nil {
		return p
	}
	t.Skip("nats CLI not installed (go install github.com/nats-io/natscli/nats@v0.5.0)")
	return ""
}

func TestStatusOperationsFromTheNatsCLI(t *testing.T) {
	bin := natsBinary(t)
	nodes := settledMesh(t, "a", "b")
	a := nodes[0]
	nodetest.Op(t, a, "create_table", map[string]any{"table": "dog"})
	tok := nodetest.SuperUser(t, a)
	run := func(args ...string) string {
		t.Helper()
		base := []string{"--server", a.LeafURL(), "--user", a.OperatorUser(), "--password", a.OperatorPassword()}
		cmd := exec.Command(bin, append(base, args...)...)
		cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "XDG_CONFIG_HOME="+t.TempDir())
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("nats %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	out := run("req", "--raw", "-H", "Authorization:Bearer "+tok, "ops.cluster.cluster_status", "{}")
	if !strings.Contains(out, `{"node_name":"a","is_enabled":true,"connections":[]}`) {
		t.Errorf("cluster_status from the CLI: %s", out)
	}
	out = run("req", "--raw", "-H", "Authorization:Bearer "+tok, "ops.cluster.cluster_network", `{"routes":false}`)
	if !regexp.MustCompile(`"name":"a","response_time":[0-9.]+,"connected_nodes":\["b"\]\}`).MatchString(out) {
		t.Errorf("cluster_network from the CLI: %s", out)
	}
	out = run("req", "--raw", "-H", "Authorization:Bearer "+tok, "ops.cluster.purge_stream", `{"table":"dog"}`)
	if !strings.Contains(out, `{"message":"Successfully purged table 'data.dog'"}`) {
		t.Errorf("purge_stream from the CLI: %s", out)
	}
	out = run("micro", "info", "clusterd")
	for _, ep := range []string{"cluster_status", "cluster_network", "purge_stream"} {
		if !strings.Contains(out, "ops.cluster."+ep) {
			t.Errorf("nats micro info does not list %s:\n%s", ep, out)
		}
	}
}
