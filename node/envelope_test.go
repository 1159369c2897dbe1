package node_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/clusterd/clusterd/node/nodetest"
)

// wantError checks an error reply as a NATS client sees it: the status in
// Nats-Service-Error-Code, the message in Nats-Service-Error and in the
// body's "error".
func wantError(t *testing.T, r nodetest.Reply, status int, msg string) {
	t.Helper()
	if r.Status != status || r.Error() != msg {
		t.Fatalf("got %d %s\nwant %d {\"error\":%q}", r.Status, r.Body, status, msg)
	}
	if got := r.Header.Get("Nats-Service-Error-Code"); got != fmt.Sprint(status) {
		t.Fatalf("Nats-Service-Error-Code = %q, want %d", got, status)
	}
	if got := r.Header.Get("Nats-Service-Error"); got != msg {
		t.Fatalf("Nats-Service-Error = %q, want %q", got, msg)
	}
	var body map[string]any
	if err := json.Unmarshal(r.Body, &body); err != nil {
		t.Fatalf("error body is not JSON: %s", r.Body)
	}
}

// wantHTTPError checks an error reply of the HTTP operations API.
func wantHTTPError(t *testing.T, r nodetest.Reply, status int, msg string) {
	t.Helper()
	if r.Status != status || r.Error() != msg {
		t.Fatalf("got HTTP %d %s\nwant %d {\"error\":%q}", r.Status, r.Body, status, msg)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
}

func TestEnvelopeErrorsOverNATSChangeNothing(t *testing.T) {
	n := nodetest.StartNamed(t, "env")
	nc := nodetest.Connect(t, n)
	tok := nodetest.SuperUser(t, n)
	huge := `{"server":"hub","routes":[{"host":"h","port":1}],"pad":"` + strings.Repeat("x", 2<<20) + `"}`

	cases := []struct {
		name, subject, body string
		status              int
		msg                 string // exact, or a prefix when it ends in ": "
	}{
		{"not json", "ops.cluster.cluster_set_routes", `server=hub`, 400, "Invalid JSON body: "},
		{"truncated json", "ops.cluster.cluster_set_routes", `{"server":"hub","routes":[`, 400, "Invalid JSON body: "},
		{"array", "ops.cluster.cluster_set_routes", `[{"server":"hub","routes":[{"host":"h","port":1}]}]`, 400, "Invalid JSON body: expected a JSON object, got an array"},
		{"string", "ops.cluster.cluster_delete_routes", `"routes"`, 400, "Invalid JSON body: expected a JSON object, got a string"},
		{"number", "ops.cluster.cluster_get_routes", `1`, 400, "Invalid JSON body: expected a JSON object, got a number"},
		{"huge", "ops.cluster.cluster_set_routes", huge, 400,
			fmt.Sprintf("Invalid JSON body: body is %d bytes, larger than the 1048576 byte limit", len(huge))},
		{"wrong types", "ops.cluster.cluster_set_routes", `{"server":"hub","routes":[{"host":"h","port":"x"}]}`, 400, "'routes[0].port' must be a number"},
		{"operation contradicts subject", "ops.cluster.cluster_set_routes",
			`{"operation":"cluster_delete_routes","server":"hub","routes":[{"host":"h","port":1}]}`, 400,
			"Operation in body 'cluster_delete_routes' does not match subject operation 'cluster_set_routes'"},
		{"operation contradicts node subject", "ops.node.env.cluster.cluster_get_routes", `{"operation":"cluster_set_routes"}`, 400,
			"Operation in body 'cluster_set_routes' does not match subject operation 'cluster_get_routes'"},
		{"operation not a string", "ops.cluster.cluster_set_routes", `{"operation":5,"server":"hub","routes":[{"host":"h","port":1}]}`, 400,
			"'operation' must be a string"},
		{"unknown operation", "ops.cluster.cluster_frobnicate", `{}`, 400, "Operation 'cluster_frobnicate' not found"},
		{"unknown operation with junk body", "ops.cluster.drop_everything", `\x00`, 400, "Operation 'drop_everything' not found"},
		{"unknown operation on node subject", "ops.node.env.cluster.cluster_frobnicate", `{}`, 400, "Operation 'cluster_frobnicate' not found"},
	}
	before := n.Store.Commits()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := nodetest.Request(t, nc, c.subject, tok, c.body)
			if strings.HasSuffix(c.msg, ": ") {
				if r.Status != c.status || !strings.HasPrefix(r.Error(), c.msg) || len(r.Error()) <= len(c.msg) {
					t.Fatalf("got %d %s, want %d with an error starting %q and saying why", r.Status, r.Body, c.status, c.msg)
				}
				wantError(t, r, c.status, r.Error())
				return
			}
			wantError(t, r, c.status, c.msg)
		})
	}
	if got := n.Store.Commits(); got != before {
		t.Fatalf("rejected requests made %d store commits", got-before)
	}
	// The node is unharmed and its state untouched.
	if got := nodetest.Routes(t, n); got != `{"hub":[],"leaf":[]}` {
		t.Fatalf("routes after bad input: %s", got)
	}
	r := nodetest.Request(t, nc, "ops.cluster.cluster_set_routes", tok,
		`{"operation":"cluster_set_routes","server":"leaf","routes":[{"host":"127.0.0.1","port":"1"}]}`)
	if r.Status != 200 || r.Header.Get("Nats-Service-Error-Code") != "" || r.Header.Get("Nats-Service-Error") != "" {
		t.Fatalf("a valid request after bad ones: %d %s %v", r.Status, r.Body, r.Header)
	}
	if string(r.Body) != `{"message":"cluster routes successfully set","set":[{"host":"127.0.0.1","port":1}],"skipped":[]}` {
		t.Fatalf("set: %s", r.Body)
	}
}

func TestEnvelopeErrorsOverHTTPChangeNothing(t *testing.T) {
	n := nodetest.StartNamed(t, "envhttp")
	tok := nodetest.SuperUser(t, n)
	cases := []struct {
		name, body string
		status     int
		msg        string // exact, or a prefix when it ends in ": "
	}{
		{"not json", `operation=cluster_get_routes`, 400, "Invalid JSON body: "},
		{"array", `[{"operation":"cluster_get_routes"}]`, 400, "Invalid JSON body: expected a JSON object, got an array"},
		{"string", `"cluster_get_routes"`, 400, "Invalid JSON body: expected a JSON object, got a string"},
		{"number", `7`, 400, "Invalid JSON body: expected a JSON object, got a number"},
		{"boolean", `true`, 400, "Invalid JSON body: expected a JSON object, got a boolean"},
		{"null", `null`, 400, "Invalid JSON body: expected a JSON object, got null"},
		{"empty", ``, 400, "Invalid JSON body: "},
		{"no operation", `{"server":"hub","routes":[]}`, 400, "'operation' is required"},
		{"operation not a string", `{"operation":["cluster_get_routes"]}`, 400, "'operation' must be a string"},
		{"unknown operation", `{"operation":"cluster_frobnicate"}`, 400, "Operation 'cluster_frobnicate' not found"},
		{"wrong types", `{"operation":"cluster_set_routes","server":"core","routes":[{"host":"","port":-1}]}`, 400,
			"'server' must be one of [hub, leaf]. 'routes[0].host' is not allowed to be empty. 'routes[0].port' must be greater than or equal to 0"},
		{"huge", `{"operation":"cluster_set_routes","server":"hub","routes":[],"pad":"` + strings.Repeat("x", 2<<20) + `"}`, 413,
			"Request body is larger than the 1048576 byte limit"},
	}
	before := n.Store.Commits()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := nodetest.HTTP(t, n, tok, c.body)
			if strings.HasSuffix(c.msg, ": ") {
				if r.Status != c.status || !strings.HasPrefix(r.Error(), c.msg) || len(r.Error()) <= len(c.msg) {
					t.Fatalf("got %d %s, want %d with an error starting %q and saying why", r.Status, r.Body, c.status, c.msg)
				}
				return
			}
			wantHTTPError(t, r, c.status, c.msg)
		})
	}
	if got := n.Store.Commits(); got != before {
		t.Fatalf("rejected requests made %d store commits", got-before)
	}
	r := nodetest.HTTP(t, n, tok, `{"operation":"cluster_set_routes","server":"hub","routes":[{"host":"127.0.0.1","port":"9"}]}`)
	if r.Status != 200 || string(r.Body) != `{"message":"cluster routes successfully set","set":[{"host":"127.0.0.1","port":9}],"skipped":[]}` {
		t.Fatalf("valid set over HTTP: %d %s", r.Status, r.Body)
	}
	r = nodetest.HTTP(t, n, tok, `{"operation":"cluster_get_routes"}`)
	if r.Status != 200 || string(r.Body) != `{"hub":[{"host":"127.0.0.1","port":9}],"leaf":[]}` {
		t.Fatalf("get over HTTP: %d %s", r.Status, r.Body)
	}
}
