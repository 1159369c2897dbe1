package node_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/clusterd/clusterd/node"
	"github.com/clusterd/clusterd/node/nodetest"
)

// natsOn returns a function running the nats CLI against n's leaf port as the
// operator user, with no user contexts.
func natsOn(t *testing.T, n *node.Node) func(args ...string) string {
	bin := natsCLI(t)
	home := t.TempDir()
	return func(args ...string) string {
		t.Helper()
		full := append([]string{"--server", n.LeafURL(), "--user", n.OperatorUser(), "--password", n.OperatorPassword()}, args...)
		cmd := exec.Command(bin, full...)
		cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+home, "NATS_CONTEXT=")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("nats %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
}

func serves(n *node.Node, op string) bool {
	for _, o := range n.Ops.Operations() {
		if o.Name == op {
			return true
		}
	}
	return false
}

// The real nats CLI against two nodes, one operation of each family (routes
// are in TestNatsCLIAgainstANode): tables, nodes, and, once served, status,
// network and purge; errors carry the service headers and a JSON body; micro
// info and stats show the version, the endpoints and per-endpoint outcomes.
func TestNatsCLIOperationFamilies(t *testing.T) {
	nodes := mesh(t, "a", "b")
	a, b := nodes[0], nodes[1]
	nats := natsOn(t, a)
	auth := func(n *node.Node) []string { return []string{"-H", "Authorization:Bearer " + nodetest.SuperUser(t, n)} }
	req := func(subject, body string, n *node.Node) string {
		t.Helper()
		return nats(append([]string{"req", subject, body}, auth(n)...)...)
	}
	expect := func(out string, want ...string) {
		t.Helper()
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Fatalf("want %q in:\n%s", w, out)
			}
		}
	}
	noError := func(out string) {
		t.Helper()
		if strings.Contains(out, "Nats-Service-Error") {
			t.Fatalf("unexpected error reply:\n%s", out)
		}
	}

	// tables
	out := req("ops.cluster.create_table", `{"database":"dev","table":"dog"}`, a)
	expect(out, `{"message":"table 'dev.dog' successfully created."}`)
	noError(out)
	out = req("ops.node.b.cluster.create_table", `{"database":"dev","table":"dog"}`, b) // b, from a's port
	expect(out, `{"message":"table 'dev.dog' successfully created."}`)
	out = req("ops.cluster.describe_all", `{}`, a)
	expect(out, `{"dev":{"dog":{"stream":"txn","filter_subject":"txn.dev.dog.*","messages":0,"first_seq":0,"last_seq":0}}}`)

	// nodes
	sub := `{"node_name":"b","subscriptions":[{"database":"dev","table":"dog","subscribe":true,"publish":true}]}`
	out = req("ops.cluster.add_node", sub, a)
	expect(out, `"message":"Successfully added 'b' to manifest"`)
	noError(out)
	out = req("ops.cluster.add_node", sub, a)
	expect(out, "Nats-Service-Error-Code: 400", "Nats-Service-Error: Node 'b' has already been added, perform update_node to proceed.",
		`{"error":"Node 'b' has already been added, perform update_node to proceed."}`)
	out = req("ops.cluster.set_node_replication", strings.Replace(sub, `"publish":true`, `"publish":false`, 1), a)
	expect(out, `"message":"Successfully updated 'b'"`, `"publish":false`)
	tok, err := a.Token("bob", "cluster_user", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	out = nats("req", "ops.cluster.remove_node", `{"node_name":"b"}`, "-H", "Authorization:Bearer "+tok)
	expect(out, "Nats-Service-Error-Code: 403", "Nats-Service-Error: This operation is not authorized due to role restrictions and/or invalid database items",
		`{"error":"This operation is not authorized due to role restrictions and/or invalid database items","unauthorized_access":["Operation 'removeNode' is restricted to 'super_user' roles"],"invalid_schema_items":[]}`)

	if serves(a, "cluster_status") {
		out = req("ops.cluster.cluster_status", `{}`, a)
		expect(out, `"node_name":"a"`, `"is_enabled":true`, `"connections":[{"node_name":"b"`)
		noError(out)
	} else {
		t.Log("cluster_status not served by this build: not run")
	}
	if serves(a, "cluster_network") {
		out = req("ops.cluster.cluster_network", `{"timeout":3000,"routes":false}`, a)
		expect(out, `{"nodes":[{"name":"a"`, `{"name":"b"`)
		noError(out)
		out = req("ops.cluster.cluster_network", `{"timeout":0}`, a)
		expect(out, "Nats-Service-Error-Code: 400", `{"error":"'timeout' must be greater than or equal to 1"}`)
	} else {
		t.Log("cluster_network not served by this build: not run")
	}
	if serves(a, "purge_stream") {
		out = req("ops.cluster.purge_stream", `{"database":"dev","table":"dog"}`, a)
		expect(out, `{"message":"Successfully purged table 'dev.dog'"}`)
		noError(out)
	} else {
		t.Log("purge_stream not served by this build: not run")
	}

	out = req("ops.cluster.remove_node", `{"node_name":"b"}`, a)
	expect(out, `{"message":"Successfully removed 'b' from manifest"}`)

	// micro info: version, the node, every endpoint; per-endpoint data.
	out = nats("micro", "info", "clusterd") // the instance of the node the CLI is connected to
	expect(out, "Version: "+node.Version, "Subject: ops.cluster.add_node", "Endpoint Specific Statistics", `"statuses"`)
	if !strings.Contains(out, "node: a") {
		t.Fatalf("micro info does not name the node:\n%s", out)
	}
	var info struct {
		Info struct {
			Version   string `json:"version"`
			Endpoints []struct {
				Name string `json:"name"`
			} `json:"endpoints"`
		} `json:"info"`
	}
	if err := json.Unmarshal([]byte(nats("micro", "info", "clusterd", "--json")), &info); err != nil {
		t.Fatal(err)
	}
	if info.Info.Version != node.Version || len(info.Info.Endpoints) != len(a.Ops.Operations()) {
		t.Fatalf("micro info: version %q, %d endpoints for %d operations", info.Info.Version, len(info.Info.Endpoints), len(a.Ops.Operations()))
	}

	var stats []struct {
		Endpoints []struct {
			Name        string `json:"name"`
			NumRequests int    `json:"num_requests"`
			Data        struct {
				Requests         int            `json:"requests"`
				Errors           int            `json:"errors"`
				Statuses         map[string]int `json:"statuses"`
				LastError        string         `json:"last_error"`
				AverageReplyTime string         `json:"average_reply_time"`
			} `json:"data"`
		} `json:"endpoints"`
	}
	// Each node's instance, seen from a CLI connected to that node (the
	// micro protocol stays in the caller's account on its node).
	for _, n := range []*node.Node{a, b} {
		var one = stats[:0:0]
		out = natsOn(t, n)("micro", "stats", "clusterd", "--json")
		if err := json.Unmarshal([]byte(out), &one); err != nil || len(one) != 1 {
			t.Fatalf("micro stats on %s: %v (%d instances)\n%s", n.Name(), err, len(one), out)
		}
		stats = append(stats, one...)
	}
	byNode := map[string]map[string]int{} // endpoint -> status -> count, over both instances
	for _, s := range stats {
		for _, e := range s.Endpoints {
			if byNode[e.Name] == nil {
				byNode[e.Name] = map[string]int{}
			}
			for st, n := range e.Data.Statuses {
				byNode[e.Name][st] += n
			}
			if e.Name == "add_node" && e.Data.Errors > 0 && e.Data.LastError != "400 Node 'b' has already been added, perform update_node to proceed." {
				t.Fatalf("add_node last_error = %q", e.Data.LastError)
			}
			if e.Data.Requests > 0 {
				if _, err := time.ParseDuration(e.Data.AverageReplyTime); err != nil || e.Data.AverageReplyTime == "0s" {
					t.Fatalf("%s average_reply_time %q", e.Name, e.Data.AverageReplyTime)
				}
			}
		}
	}
	if got := byNode["add_node"]; got["200"] != 1 || got["400"] != 1 {
		t.Fatalf("add_node statuses %v, want one 200 and one 400\n%s", got, out)
	}
	if got := byNode["remove_node"]; got["200"] != 1 || got["403"] != 1 {
		t.Fatalf("remove_node statuses %v, want one 200 and one 403", got)
	}
	// b's create_table, addressed from a, is counted by b's instance.
	if got := byNode["create_table"]; got["200"] != 2 {
		t.Fatalf("create_table statuses %v, want two 200 (a's local, b's addressed)", got)
	}
}
