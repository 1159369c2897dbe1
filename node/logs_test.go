package node_test

import (
	"strings"
	"testing"
	"time"

	"github.com/clusterd/clusterd/node/nodetest"
	"go.uber.org/zap/zapcore"
)

// remove_node's "Check the logs for more details" has a log line to check:
// at warn, naming the peer and why it could not be told, when the reply
// goes out (not seconds later).
func TestRemoveNodeLogsWhatItsReplyPointsTo(t *testing.T) {
	a, logs := nodetest.StartLogged(t, nodetest.Config(t, "la"))
	b := nodetest.StartNamed(t, "lb")
	nodetest.Op(t, b, "cluster_set_routes", map[string]any{"server": "hub", "routes": []any{nodetest.ClusterRoute(a)}})
	op(t, a, "create_table", map[string]any{"table": "dog"}, 200)
	op(t, b, "create_table", map[string]any{"table": "dog"}, 200)
	nodetest.Eventually(t, 30*time.Second, "add_node", func() bool {
		return nodetest.Op(t, a, "add_node", map[string]any{"node_name": "lb", "subscriptions": []any{sub("dog", true, true)}}).Status == 200
	})
	b.Close()
	rep := op(t, a, "remove_node", map[string]any{"node_name": "lb"}, 200)
	if !strings.Contains(rep["message"].(string), "Check the logs for more details") {
		t.Fatalf("reply: %v", rep)
	}
	found := false
	for _, e := range logs.FilterMessage("remove_node: removed locally, the remote node was not told; it is told once it answers").All() {
		m := e.ContextMap()
		found = found || e.Level == zapcore.WarnLevel && m["peer"] == "lb" && m["error"] != nil && m["node"] == "la"
	}
	if !found {
		t.Fatalf("no warn line naming the peer; warn lines: %q", warnLines(logs))
	}
}
