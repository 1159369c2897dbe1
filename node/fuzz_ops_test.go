package node_test

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/clusterd/clusterd/node"
	"github.com/clusterd/clusterd/node/nodetest"
)

// One fuzz target per operation, each on a real node pair (a and b, routed,
// both holding data.dog, a replicating it with b). Every body must get a
// reply within the CLI's 5 s that
//   - is not a panic (the recoverer's 500 "Internal error …"),
//   - is 200, a 4xx, or a 5xx the operations reference documents for
//     reaching another node,
//   - names no Go type,
// and a refused request (4xx) must leave the desired state as it was.
//
// `go test` runs the seeds; fuzz one with
//   go test -run '^$' -fuzz '^FuzzOpAddNode$' -fuzztime 30s ./node

var goTypeWords = regexp.MustCompile(`Go (struct|value)|json: |\b(u?int(8|16|32|64)?|float(32|64))\b|map\[|\[\]byte|interface \{|\*[a-z]+\.[A-Z]|unmarshal|goroutine|panic`)

// documented5xx are the server-side failures an operation may answer with
// when bad input names another node (docs/operations.md).
var documented5xx = []string{"Unable to ", "Error returned from remote node ", "Failed to configure the cluster.", "The node is not connected to the mesh yet"}

// desired is the state a refused request must not change: routes, nodes,
// tables, users and roles.
func desired(t *testing.T, n *node.Node) string {
	t.Helper()
	r, err := n.Store.Routes()
	if err != nil {
		t.Fatal(err)
	}
	ns, err := n.Store.Nodes()
	if err != nil {
		t.Fatal(err)
	}
	ts, err := n.Store.Tables()
	if err != nil {
		t.Fatal(err)
	}
	us, err := n.Store.Users()
	if err != nil {
		t.Fatal(err)
	}
	rs, err := n.Store.Roles()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal([]any{r, ns, ts, us, rs})
	return string(b)
}

func fuzzOperation(f *testing.F, op string, seeds ...string) {
	f.Helper()
	common := []string{``, `{}`, `[]`, `null`, `"x"`, `{"operation":"` + op + `"}`, `{"operation":5}`, `{"operation":"other"}`,
		`{"node_name":1e400}`, `{"table":"bad\fname"}`, `{"timeout":1e300}`, `{"options":{"keep":1e30}}`, "{\"table\":\"\xff\"}"}
	for _, s := range append(common, seeds...) {
		f.Add([]byte(s))
	}
	a := nodetest.StartNamed(f, "a")
	b := nodetest.StartNamed(f, "b")
	nc := nodetest.Connect(f, a)
	tok := nodetest.SuperUser(f, a)
	setup := func(t testing.TB) {
		if r := nodetest.Request(t, nc, "ops.cluster.cluster_set_routes", tok, map[string]any{"server": "hub", "routes": []any{nodetest.ClusterRoute(b)}}); r.Status != 200 {
			t.Fatalf("set routes: %s", r.Body)
		}
		for _, n := range []*node.Node{a, b} {
			if r := nodetest.Op(t, n, "create_table", map[string]any{"table": "dog"}); r.Status != 200 {
				t.Fatalf("create_table: %s", r.Body)
			}
		}
	}
	setup(f)
	nodetest.Eventually(f, 10*time.Second, "pair routed", func() bool { return len(a.Servers.RoutedPeers()) == 1 })
	if r := nodetest.Request(f, nc, "ops.cluster.add_node", tok, map[string]any{"node_name": "b", "subscriptions": []any{map[string]any{"table": "dog", "subscribe": true, "publish": true}}}); r.Status != 200 {
		f.Fatalf("add_node: %s", r.Body)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		before := desired(t, a)
		start := time.Now()
		r := nodetest.Request(t, nc, "ops.cluster."+op, tok, body)
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("%s %q: reply after %v", op, body, d)
		}
		var reply map[string]any
		if err := json.Unmarshal(r.Body, &reply); err != nil && r.Status != 200 {
			t.Fatalf("%s %q: %d reply is not a JSON object: %s", op, body, r.Status, r.Body)
		}
		msg, _ := reply["error"].(string)
		if goTypeWords.MatchString(string(r.Body)) && r.Status != 200 {
			t.Fatalf("%s %q: reply shows a Go type: %s", op, body, r.Body)
		}
		switch {
		case r.Status == 200:
		case r.Status >= 400 && r.Status < 500:
			if after := desired(t, a); after != before {
				t.Fatalf("%s %q: refused with %d (%s) but the desired state changed:\nbefore %s\nafter  %s", op, body, r.Status, msg, before, after)
			}
		default:
			ok := false
			for _, p := range documented5xx {
				ok = ok || strings.HasPrefix(msg, p)
			}
			if !ok {
				t.Fatalf("%s %q: undocumented %d: %s", op, body, r.Status, r.Body)
			}
		}
		// Whatever the body did, the pair still answers.
		if r := nodetest.Request(t, nc, "ops.cluster.cluster_get_routes", tok, map[string]any{}); r.Status != 200 {
			t.Fatalf("after %s %q the node no longer answers: %d %s", op, body, r.Status, r.Body)
		}
	})
}

func fuzzSub(extra string) string {
	return fmt.Sprintf(`{"node_name":"b","subscriptions":[{"table":"dog","subscribe":true,"publish":true%s}]}`, extra)
}

func FuzzOpClusterSetRoutes(f *testing.F) {
	fuzzOperation(f, "cluster_set_routes", `{"server":"hub","routes":[{"host":"127.0.0.1","port":"1e400"}]}`,
		`{"server":"leaf","routes":[{"host":"h","port":65536}]}`, `{"server":"hub","routes":[{"host":"","port":-1e300}]}`)
}
func FuzzOpClusterGetRoutes(f *testing.F) { fuzzOperation(f, "cluster_get_routes", `{"x":1}`) }
func FuzzOpClusterDeleteRoutes(f *testing.F) {
	fuzzOperation(f, "cluster_delete_routes", `{"routes":[{"host":"127.0.0.1","port":1e30}]}`, `{"routes":[{"host":"h","port":"9932"}]}`)
}
func FuzzOpAddNode(f *testing.F) {
	fuzzOperation(f, "add_node", fuzzSub(``), fuzzSub(`,"start_time":"99999-01-01"`), `{"node_name":"c\u2028","subscriptions":[]}`, fuzzSub(`,"database":"\u0000"`))
}
func FuzzOpUpdateNode(f *testing.F) {
	fuzzOperation(f, "update_node", fuzzSub(`,"start_time":"2024-02-30"`), fuzzSub(`,"subscribe":"true"`))
}
func FuzzOpSetNodeReplication(f *testing.F) {
	fuzzOperation(f, "set_node_replication", fuzzSub(`,"schema":"x y"`), `{"node_name":"b","subscriptions":[{"table":"dog","subscribe":false,"publish":false}]}`)
}
func FuzzOpRemoveNode(f *testing.F) {
	fuzzOperation(f, "remove_node", `{"node_name":"nobody"}`, `{"node_name":"b\u00a0"}`)
}
func FuzzOpConfigureCluster(f *testing.F) {
	fuzzOperation(f, "configure_cluster", `{"connections":[`+fuzzSub(``)+`]}`, `{"connections":[`+fuzzSub(``)+`,`+fuzzSub(``)+`]}`)
}
func FuzzOpCreateTable(f *testing.F) {
	fuzzOperation(f, "create_table", `{"table":"cat"}`, `{"database":"_clusterd","table":"x"}`, `{"table":"{{wildcard(1)}}"}`)
}
func FuzzOpDescribeAll(f *testing.F) { fuzzOperation(f, "describe_all", `{"database":1}`) }
func FuzzOpClusterStatus(f *testing.F) {
	fuzzOperation(f, "cluster_status", `{"node_name":"\u202e"}`)
}
func FuzzOpClusterNetwork(f *testing.F) {
	fuzzOperation(f, "cluster_network", `{"timeout":"1e400"}`, `{"timeout":1,"routes":"false"}`, `{"timeout":-1e400}`)
}
func FuzzOpPurgeStream(f *testing.F) {
	fuzzOperation(f, "purge_stream", `{"table":"dog","options":{"keep":"1e400"}}`, `{"table":"dog","options":{"seq":9007199254740992}}`,
		`{"table":"dog","options":{"filter":"txn.data.dog.>"}}`, `{"table":"dog","options":{"keep":1,"seq":1}}`)
}

// HarperDB's user and role operations (the seeds add a user "bob" first
// where the operation needs one).
func FuzzOpAddUser(f *testing.F) {
	fuzzOperation(f, "add_user", `{"username":"bob","password":"pw","role":"super_user","active":true}`,
		`{"username":"b\u0000b","password":"pw","role":"super_user","active":"true"}`, `{"username":"bob","password":1e400,"role":"x","active":true}`)
}
func FuzzOpAlterUser(f *testing.F) {
	fuzzOperation(f, "alter_user", `{"username":"admin","active":false}`, `{"username":"nobody","password":"x"}`)
}
func FuzzOpDropUser(f *testing.F) {
	fuzzOperation(f, "drop_user", `{"username":"nobody"}`, `{"username":""}`)
}
func FuzzOpUserInfo(f *testing.F)  { fuzzOperation(f, "user_info", `{"username":"x"}`) }
func FuzzOpListUsers(f *testing.F) { fuzzOperation(f, "list_users", `{"limit":1e400}`) }
func FuzzOpListRoles(f *testing.F) { fuzzOperation(f, "list_roles", `{"x":[]}`) }
func FuzzOpAddRole(f *testing.F) {
	fuzzOperation(f, "add_role", `{"role":"ops","permission":{"super_user":true}}`, `{"role":"ops","permission":{"super_user":"maybe"}}`,
		`{"role":"o\u2028ps","permission":{}}`)
}
func FuzzOpAlterRole(f *testing.F) {
	fuzzOperation(f, "alter_role", `{"id":"nope","permission":{"cluster_user":true}}`, `{"id":1e30,"permission":{}}`)
}
func FuzzOpDropRole(f *testing.F) {
	fuzzOperation(f, "drop_role", `{"id":"nope"}`, `{"id":"super_user"}`)
}
func FuzzOpCreateAuthenticationTokens(f *testing.F) {
	fuzzOperation(f, "create_authentication_tokens", `{"username":"admin","password":"wrong"}`, `{"username":"nobody","password":""}`)
}
func FuzzOpRefreshOperationToken(f *testing.F) {
	fuzzOperation(f, "refresh_operation_token", `{"refresh_token":"x.y.z"}`, `{"refresh_token":"eyJhbGciOiJub25lIn0.e30."}`)
}
