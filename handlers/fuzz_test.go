package handlers

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/clusterd/clusterd/events"
)

// FuzzRequestDecoders feeds arbitrary bodies to every operation's decoder.
// A body may be refused (400) but must never panic, never be accepted when it
// is not a JSON object, and never produce a 500 from a decode problem.
// Operations that would reach a peer or the transaction stream run with
// clustering disabled or stop at validation, so no network is needed.
func FuzzRequestDecoders(f *testing.F) {
	for _, seed := range []string{
		`{}`, `[]`, `null`, `"x"`, `{"server":"hub","routes":[{"host":"h","port":"1"}]}`,
		`{"routes":[{"host":"h","port":1e400}]}`, `{"node_name":"b","subscriptions":[{"table":"t","subscribe":"true","publish":false,"start_time":"2024-01-01"}]}`,
		`{"connections":[{"node_name":"b","subscriptions":[]}]}`, `{"table":"t","database":"d"}`, "{\"a\":\"\xff\"}",
		`{"table":"t","options":{"keep":"1","seq":2,"filter":"txn.data.t.*"}}`,
		strings.Repeat("[", 5000), `{"node_name":"` + strings.Repeat("a", 300) + `"}`,
	} {
		f.Add([]byte(seed))
	}
	// One store for all inputs: opening Badger per input would make the
	// fuzzer crawl; accepted inputs only add routes and tables.
	o := newOps(f)
	disabled := newOps(f)
	disabled.ClusteringEnabled = false
	caller := events.Caller{User: "fuzz", Role: events.SuperUser}
	ops := map[string]runner{
		"set_routes": o.run("cluster_set_routes"), "delete_routes": o.run("cluster_delete_routes"), "create_table": o.run("create_table"),
		// With clustering disabled these stop before any peer call.
		"add_node": disabled.run("add_node"), "remove_node": disabled.run("remove_node"), "configure_cluster": disabled.run("configure_cluster"),
		// purge_stream validates fully, then stops at the clustering check.
		"purge_stream": disabled.run("purge_stream"), "cluster_status": disabled.run("cluster_status"),
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for name, run := range ops {
			_, err := run(context.Background(), caller, body)
			if err == nil {
				if _, derr := decodeObject(body); derr != nil {
					t.Fatalf("%s accepted a body that is not a JSON object: %q", name, body)
				}
				continue
			}
			var e *events.Error
			if !errors.As(err, &e) || e.Status != 400 {
				t.Fatalf("%s: body %q gave %v, want a 400", name, body, err)
			}
		}
	})
}
