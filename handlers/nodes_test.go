package handlers

import (
	"strings"
	"testing"
)

func TestNodeOperationValidationMessages(t *testing.T) {
	o := newOps(t)
	ok := `{"table":"dog","subscribe":true,"publish":true}`
	cases := []struct {
		name string
		run  runner
		body string
		want string
	}{
		{"add: empty", o.run("add_node"), `{}`, "'node_name' is required. 'subscriptions' is required"},
		{"add: types", o.run("add_node"), `{"node_name":5,"subscriptions":{}}`, "'node_name' must be a string. 'subscriptions' must be an array"},
		{"add: empty name, no items", o.run("add_node"), `{"node_name":"","subscriptions":[]}`, "'node_name' is not allowed to be empty. 'subscriptions' must contain at least 1 items"},
		{"add: bad name", o.run("add_node"), `{"node_name":"a.b","subscriptions":[` + ok + `]}`, "'node_name' invalid, must not contain ., * or >"},
		{"add: wildcard name", o.run("add_node"), `{"node_name":"a>","subscriptions":[` + ok + `]}`, "'node_name' invalid, must not contain ., * or >"},
		{"add: own name", o.run("add_node"), `{"node_name":"n1","subscriptions":[` + ok + `]}`, "'node_name' cannot be this nodes name"},
		{"add: item not object", o.run("add_node"), `{"node_name":"b","subscriptions":[1]}`, "'subscriptions[0]' must be of type object"},
		{"add: item fields", o.run("add_node"), `{"node_name":"b","subscriptions":[` + ok + `,{}]}`,
			"'subscriptions[1].table' is required. 'subscriptions[1].subscribe' is required. 'subscriptions[1].publish' is required"},
		{"add: item types", o.run("add_node"), `{"node_name":"b","subscriptions":[{"table":1,"subscribe":"yes","publish":2,"database":false}]}`,
			"'subscriptions[0].database' must be a string. 'subscriptions[0].table' must be a string. 'subscriptions[0].subscribe' must be a boolean. 'subscriptions[0].publish' must be a boolean"},
		{"add: start_time format", o.run("add_node"), `{"node_name":"b","subscriptions":[{"table":"t","subscribe":true,"publish":true,"start_time":"yesterday"}]}`,
			"'subscriptions[0].start_time' must be in ISO 8601 date format"},
		{"add: start_time date", o.run("add_node"), `{"node_name":"b","subscriptions":[{"table":"t","subscribe":true,"publish":true,"start_time":"2024-02-30"}]}`,
			"'subscriptions[0].start_time' must be a valid date"},
		{"add: table token", o.run("add_node"), `{"node_name":"b","subscriptions":[{"table":"a.b","subscribe":true,"publish":true}]}`,
			"'subscriptions[0].table' invalid, must not contain ., *, > or whitespace"},
		{"add: reserved database", o.run("add_node"), `{"node_name":"b","subscriptions":[{"database":"_clusterd","table":"t","subscribe":true,"publish":true}]}`,
			"'subscriptions[0].database' invalid, '_clusterd' is reserved"},
		{"add: inactive", o.run("add_node"), `{"node_name":"b","subscriptions":[` + ok + `,{"table":"t","subscribe":false,"publish":"false"}]}`,
			"'subscriptions[1]' subscribe and/or publish must be set to true when adding a node"},
		{"update: empty", o.run("update_node"), `{}`, "'node_name' is required. 'subscriptions' is required"},
		{"set_node_replication: own name", o.run("set_node_replication"), `{"node_name":"n1","subscriptions":[` + ok + `]}`, "'node_name' cannot be this nodes name"},
		{"remove: empty", o.run("remove_node"), `{}`, "'node_name' is required"},
		{"remove: type", o.run("remove_node"), `{"node_name":[]}`, "'node_name' must be a string"},
		{"remove: unknown", o.run("remove_node"), `{"node_name":"b"}`, "Node 'b' was not found."},
		{"configure: empty", o.run("configure_cluster"), `{}`, "'connections' is required"},
		{"configure: type", o.run("configure_cluster"), `{"connections":"b"}`, "'connections' must be an array"},
		{"configure: nested", o.run("configure_cluster"), `{"connections":[{"node_name":"b"},{"subscriptions":[{"table":"t"}]}]}`,
			"'connections[0].subscriptions' is required. 'connections[1].node_name' is required. 'connections[1].subscriptions[0].subscribe' is required. 'connections[1].subscriptions[0].publish' is required"},
		{"configure: nested start_time", o.run("configure_cluster"), `{"connections":[{"node_name":"b","subscriptions":[{"table":"t","subscribe":true,"publish":true,"start_time":"x"}]}]}`,
			"'connections[0].subscriptions[0].start_time' must be in ISO 8601 date format"},
		{"configure: inactive", o.run("configure_cluster"), `{"connections":[{"node_name":"b","subscriptions":[{"table":"t","subscribe":false,"publish":false}]}]}`,
			"'connections[0].subscriptions[0]' subscribe and/or publish must be set to true when adding a node"},
		{"configure: duplicate", o.run("configure_cluster"), `{"connections":[{"node_name":"b","subscriptions":[` + ok + `]},{"node_name":"b","subscriptions":[` + ok + `]}]}`,
			"'connections[1].node_name' 'b' is listed more than once"},
		{"create_table: empty", o.run("create_table"), `{}`, "'table' is required"},
		{"create_table: types", o.run("create_table"), `{"table":"","database":3}`, "'database' must be a string. 'table' is not allowed to be empty"},
		{"create_table: token", o.run("create_table"), `{"table":"x y"}`, "'table' invalid, must not contain ., *, > or whitespace"},
		{"create_table: long", o.run("create_table"), `{"table":"` + strings.Repeat("t", 251) + `"}`, "'table' length must be less than or equal to 250 characters long"},
		{"add: long name", o.run("add_node"), `{"node_name":"` + strings.Repeat("n", 251) + `","subscriptions":[` + ok + `]}`, "'node_name' length must be less than or equal to 250 characters long"},
		{"invalid json", o.run("add_node"), `{"node_name":`, "Invalid JSON body: unexpected EOF"},
		{"array body", o.run("remove_node"), `[]`, "Invalid JSON body: expected a JSON object, got an array"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := reject(t, o, c.run, c.body); got != c.want {
				t.Fatalf("message\n got: %s\nwant: %s", got, c.want)
			}
		})
	}
}

func TestClusteringDisabledRefusesNodeOperationsBeforeValidation(t *testing.T) {
	o := newOps(t)
	o.ClusteringEnabled = false
	for name, run := range map[string]runner{
		"add_node": o.run("add_node"), "update_node": o.run("update_node"), "remove_node": o.run("remove_node"), "configure_cluster": o.run("configure_cluster"),
	} {
		if got := reject(t, o, run, `{"not":"valid"}`); got != "Clustering must be enabled to perform this operation." {
			t.Fatalf("%s: %s", name, got)
		}
	}
}
