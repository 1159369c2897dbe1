package node_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/clusterd/clusterd/node"
	"github.com/clusterd/clusterd/node/nodetest"
	"github.com/nats-io/nats.go"
)

// Reply types as HarperDB's Go SDK (github.com/HarperDB-Add-Ons/sdk-go)
// declares them: integers where it has integers. Decoding a reply into
// them is what a HarperDB client does.
type (
	sdkRoute struct {
		Host string `json:"host"`
		Port int    `json:"port"`
	}
	sdkNode struct {
		Name          string     `json:"name"`
		ResponseTime  int        `json:"response_time"`
		ConnectedNoes []string   `json:"connected_nodes"`
		Routes        []sdkRoute `json:"routes"`
	}
	sdkClusterNetworkResponse struct {
		Nodes []sdkNode `json:"nodes"`
	}
	sdkSubscription struct {
		Subscribe bool   `json:"subscribe"`
		Publish   bool   `json:"publish"`
		Schema    string `json:"schema,omitempty"`
		Table     string `json:"table"`
		Database  string `json:"database,omitempty"`
	}
	sdkMessageResponse struct {
		Message string `json:"message"`
	}
	// HarperDB 4.x's cluster_status connection (the SDK keeps it untyped).
	sdkConnection struct {
		NodeName string `json:"node_name"`
		Status   string `json:"status"`
		Ports    struct {
			Clustering    int `json:"clustering"`
			OperationsAPI int `json:"operations_api"`
		} `json:"ports"`
		LatencyMS     int               `json:"latency_ms"`
		Uptime        string            `json:"uptime"`
		Subscriptions []sdkSubscription `json:"subscriptions"`
	}
	sdkClusterStatus struct {
		NodeName    string          `json:"node_name"`
		IsEnabled   bool            `json:"is_enabled"`
		Connections []sdkConnection `json:"connections"`
	}
	sdkRecord struct {
		CreatedTime float64 `json:"__createdtime__"`
		UpdatedTime float64 `json:"__updatedtime__"`
	}
	sdkRole struct {
		sdkRecord
		Role       string         `json:"role"`
		ID         string         `json:"id"`
		Permission map[string]any `json:"permission"`
	}
	sdkUser struct {
		sdkRecord
		Active   bool    `json:"active"`
		Role     sdkRole `json:"role"`
		Username string  `json:"username"`
	}
	sdkTokens struct {
		OperationToken string `json:"operation_token"`
		RefreshToken   string `json:"refresh_token"`
	}
)

func basicAuth(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

var adminBasic = basicAuth("admin", nodetest.AdminPassword)

// transport sends one operation to a node with a raw Authorization value.
type transport struct {
	name string
	call func(t *testing.T, n *node.Node, authz, op string, body map[string]any) nodetest.Reply
}

func transports(t *testing.T) []transport {
	conns := map[*node.Node]*nats.Conn{}
	return []transport{
		{"HTTP", func(t *testing.T, n *node.Node, authz, op string, body map[string]any) nodetest.Reply {
			t.Helper()
			b := map[string]any{"operation": op}
			for k, v := range body {
				b[k] = v
			}
			data, _ := json.Marshal(b)
			return httpRaw(t, n.HTTPPort(), authz, string(data))
		}},
		{"NATS", func(t *testing.T, n *node.Node, authz, op string, body map[string]any) nodetest.Reply {
			t.Helper()
			nc := conns[n]
			if nc == nil {
				nc = nodetest.Connect(t, n)
				conns[n] = nc
			}
			data := []byte("{}")
			if body != nil {
				data, _ = json.Marshal(body)
			}
			return rawRequest(t, nc, "ops.cluster."+op, authz, string(data))
		}},
	}
}

// decode decodes a 200 reply into out, strictly typed.
func decode(t *testing.T, what string, r nodetest.Reply, out any) {
	t.Helper()
	if r.Status != 200 {
		t.Fatalf("%s: %d %s", what, r.Status, r.Body)
	}
	if err := json.Unmarshal(r.Body, out); err != nil {
		t.Fatalf("%s: %s does not decode as HarperDB's SDK types it: %v", what, r.Body, err)
	}
}

// Every clustering operation works with HarperDB's Basic credentials, over
// HTTP and over NATS, and its reply decodes into the types HarperDB's Go SDK
// uses (integer response_time and latency_ms; ports always an object).
func TestClusteringOperationsWithBasicAuth(t *testing.T) {
	nodes := mesh(t, "a", "b")
	a, b := nodes[0], nodes[1]
	for _, tr := range transports(t) {
		t.Run(tr.name, func(t *testing.T) {
			call := func(n *node.Node, op string, body map[string]any) nodetest.Reply {
				t.Helper()
				return tr.call(t, n, adminBasic, op, body)
			}
			var msg sdkMessageResponse
			for _, n := range nodes {
				decode(t, "create_table", call(n, "create_table", map[string]any{"table": "dog"}), &msg)
			}
			subs := []any{map[string]any{"database": "data", "table": "dog", "subscribe": true, "publish": true}}
			decode(t, "add_node", call(a, "add_node", map[string]any{"node_name": "b", "subscriptions": subs}), &msg)
			if msg.Message != "Successfully added 'b' to manifest" {
				t.Fatalf("add_node: %q", msg.Message)
			}
			decode(t, "update_node", call(a, "update_node", map[string]any{"node_name": "b", "subscriptions": subs}), &msg)
			decode(t, "set_node_replication", call(a, "set_node_replication", map[string]any{"node_name": "b", "subscriptions": subs}), &msg)

			var st sdkClusterStatus
			decode(t, "cluster_status", call(a, "cluster_status", nil), &st)
			if st.NodeName != "a" || !st.IsEnabled || len(st.Connections) != 1 {
				t.Fatalf("cluster_status: %+v", st)
			}
			if c := st.Connections[0]; c.NodeName != "b" || c.Status != "open" || c.LatencyMS < 1 || c.Ports.Clustering != b.Servers.Ports().Cluster ||
				c.Ports.OperationsAPI != b.HTTPPort() || len(c.Subscriptions) != 1 || c.Subscriptions[0].Table != "dog" {
				t.Fatalf("cluster_status connection: %+v", c)
			}
			var net sdkClusterNetworkResponse
			decode(t, "cluster_network", call(a, "cluster_network", nil), &net)
			if len(net.Nodes) != 2 {
				t.Fatalf("cluster_network: %+v", net)
			}
			for _, nn := range net.Nodes {
				if nn.ResponseTime < 1 || len(nn.ConnectedNoes) != 1 {
					t.Fatalf("cluster_network node: %+v", nn)
				}
			}
			var all map[string]map[string]struct {
				Messages int `json:"messages"`
			}
			decode(t, "describe_all", call(a, "describe_all", nil), &all)
			if _, ok := all["data"]["dog"]; !ok {
				t.Fatalf("describe_all: %+v", all)
			}
			decode(t, "purge_stream", call(a, "purge_stream", map[string]any{"table": "dog"}), &msg)
			if msg.Message != "Successfully purged table 'data.dog'" {
				t.Fatalf("purge_stream: %q", msg.Message)
			}
			route := []any{map[string]any{"host": "127.0.0.1", "port": 1}}
			decode(t, "cluster_set_routes", call(a, "cluster_set_routes", map[string]any{"server": "leaf", "routes": route}), &msg)
			var routes struct {
				Hub  []sdkRoute `json:"hub"`
				Leaf []sdkRoute `json:"leaf"`
			}
			decode(t, "cluster_get_routes", call(a, "cluster_get_routes", nil), &routes)
			if len(routes.Leaf) != 1 || routes.Leaf[0].Port != 1 {
				t.Fatalf("cluster_get_routes: %+v", routes)
			}
			decode(t, "cluster_delete_routes", call(a, "cluster_delete_routes", map[string]any{"routes": route}), &msg)
			decode(t, "remove_node", call(a, "remove_node", map[string]any{"node_name": "b"}), &msg)
			if msg.Message != "Successfully removed 'b' from manifest" {
				t.Fatalf("remove_node: %q", msg.Message)
			}
			decode(t, "configure_cluster", call(a, "configure_cluster", map[string]any{"connections": []any{
				map[string]any{"node_name": "b", "subscriptions": subs}}}), &msg)
			if msg.Message != "Configure cluster complete." {
				t.Fatalf("configure_cluster: %q", msg.Message)
			}
			decode(t, "remove_node", call(a, "remove_node", map[string]any{"node_name": "b"}), &msg)

			// The same operations refuse a wrong password and no credentials
			// with HarperDB's words, and a cluster_user with its 403.
			for authz, want := range map[string]string{"": "Must login", basicAuth("admin", "wrong"): "Login failed"} {
				r := tr.call(t, a, authz, "cluster_get_routes", nil)
				if r.Status != 401 || r.Error() != want {
					t.Fatalf("%q: %d %s, want 401 %s", authz, r.Status, r.Body, want)
				}
			}
		})
	}
}

// The token pair of create_authentication_tokens, end to end: create, use,
// refresh (body or header), drop the user, refused; a user re-created under
// the same name does not revive the old tokens.
func TestOperationTokensEndToEnd(t *testing.T) {
	n := nodetest.StartNamed(t, "tok")
	for _, tr := range transports(t) {
		t.Run(tr.name, func(t *testing.T) {
			admin := func(op string, body map[string]any) nodetest.Reply {
				t.Helper()
				return tr.call(t, n, adminBasic, op, body)
			}
			var msg sdkMessageResponse
			decode(t, "add_user", admin("add_user", map[string]any{"username": "bob", "password": "pw", "role": "super_user", "active": true}), &msg)
			if msg.Message != "bob successfully added" {
				t.Fatalf("add_user: %q", msg.Message)
			}
			var toks sdkTokens
			decode(t, "create_authentication_tokens", tr.call(t, n, "", "create_authentication_tokens", map[string]any{"username": "bob", "password": "pw"}), &toks)
			if toks.OperationToken == "" || toks.RefreshToken == "" {
				t.Fatalf("tokens: %+v", toks)
			}
			// HarperDB's lifetimes: 1 day and 30 days.
			for tok, want := range map[string]time.Duration{toks.OperationToken: 24 * time.Hour, toks.RefreshToken: 30 * 24 * time.Hour} {
				if got := lifetime(t, tok); got != want {
					t.Fatalf("token lives %v, want %v", got, want)
				}
			}
			bearer := "Bearer " + toks.OperationToken
			if r := tr.call(t, n, bearer, "cluster_get_routes", nil); r.Status != 200 {
				t.Fatalf("operation token: %d %s", r.Status, r.Body)
			}
			var me sdkUser
			decode(t, "user_info", tr.call(t, n, bearer, "user_info", nil), &me)
			if me.Username != "bob" || me.Role.Role != "super_user" {
				t.Fatalf("user_info: %+v", me)
			}
			if r := tr.call(t, n, "Bearer "+toks.RefreshToken, "cluster_get_routes", nil); r.Status != 401 ||
				r.Error() != "Unauthorized: a refresh token only mints operation tokens (refresh_operation_token); send the operation token" {
				t.Fatalf("refresh token as bearer: %d %s", r.Status, r.Body)
			}
			var fresh struct {
				OperationToken string `json:"operation_token"`
			}
			decode(t, "refresh_operation_token", tr.call(t, n, "", "refresh_operation_token", map[string]any{"refresh_token": toks.RefreshToken}), &fresh)
			var viaHeader struct {
				OperationToken string `json:"operation_token"`
			}
			decode(t, "refresh_operation_token (header)", tr.call(t, n, "Bearer "+toks.RefreshToken, "refresh_operation_token", nil), &viaHeader)
			for _, tok := range []string{fresh.OperationToken, viaHeader.OperationToken} {
				if r := tr.call(t, n, "Bearer "+tok, "cluster_get_routes", nil); r.Status != 200 {
					t.Fatalf("refreshed token: %d %s", r.Status, r.Body)
				}
			}
			if r := tr.call(t, n, "", "refresh_operation_token", map[string]any{"refresh_token": toks.OperationToken}); r.Status != 401 ||
				r.Error() != "Unauthorized: an operation token cannot refresh; send the refresh token" {
				t.Fatalf("operation token as refresh token: %d %s", r.Status, r.Body)
			}
			// Without credentials in the body, tokens are for the caller.
			var own sdkTokens
			decode(t, "create_authentication_tokens (header)", tr.call(t, n, basicAuth("bob", "pw"), "create_authentication_tokens", nil), &own)

			decode(t, "drop_user", admin("drop_user", map[string]any{"username": "bob"}), &msg)
			gone := "Unauthorized: the token's user 'bob' no longer exists"
			for _, tok := range []string{toks.OperationToken, fresh.OperationToken, own.OperationToken} {
				if r := tr.call(t, n, "Bearer "+tok, "cluster_get_routes", nil); r.Status != 401 || r.Error() != gone {
					t.Fatalf("dropped user's token: %d %s", r.Status, r.Body)
				}
			}
			if r := tr.call(t, n, "", "refresh_operation_token", map[string]any{"refresh_token": toks.RefreshToken}); r.Status != 401 || r.Error() != gone {
				t.Fatalf("dropped user's refresh token: %d %s", r.Status, r.Body)
			}
			// Re-created: the old tokens stay dead, the new password works.
			decode(t, "add_user", admin("add_user", map[string]any{"username": "bob", "password": "pw", "role": "super_user", "active": true}), &msg)
			if r := tr.call(t, n, "Bearer "+toks.OperationToken, "cluster_get_routes", nil); r.Status != 401 || r.Error() != gone {
				t.Fatalf("old token after re-creation: %d %s", r.Status, r.Body)
			}
			if r := tr.call(t, n, "", "create_authentication_tokens", map[string]any{"username": "bob", "password": "nope"}); r.Status != 401 || r.Error() != "Login failed" {
				t.Fatalf("wrong password: %d %s", r.Status, r.Body)
			}
			decode(t, "drop_user", admin("drop_user", map[string]any{"username": "bob"}), &msg)
		})
	}
}

// lifetime is exp - iat of a token.
func lifetime(t *testing.T, tok string) time.Duration {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q", tok)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct{ Iat, Exp int64 }
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return time.Duration(c.Exp-c.Iat) * time.Second
}

// A changed password, role, active flag or a dropped user applies to the
// very next request, although verified credentials are cached.
func TestCredentialChangesApplyAtOnce(t *testing.T) {
	n := nodetest.StartNamed(t, "creds")
	for _, tr := range transports(t) {
		t.Run(tr.name, func(t *testing.T) {
			admin := func(op string, body map[string]any) {
				t.Helper()
				if r := tr.call(t, n, adminBasic, op, body); r.Status != 200 {
					t.Fatalf("%s: %d %s", op, r.Status, r.Body)
				}
			}
			expect := func(authz, op string, status int, msg string) {
				t.Helper()
				r := tr.call(t, n, authz, op, nil)
				if r.Status != status || (msg != "" && r.Error() != msg) {
					t.Fatalf("%s: %d %s, want %d %s", op, r.Status, r.Body, status, msg)
				}
			}
			admin("add_user", map[string]any{"username": "carl", "password": "one", "role": "super_user", "active": true})
			one, two := basicAuth("carl", "one"), basicAuth("carl", "two")
			for i := 0; i < 3; i++ {
				expect(one, "cluster_get_routes", 200, "")
			}
			admin("alter_user", map[string]any{"username": "carl", "password": "two"})
			expect(one, "cluster_get_routes", 401, "Login failed")
			expect(two, "cluster_get_routes", 200, "")
			admin("alter_user", map[string]any{"username": "carl", "role": "cluster_user"})
			expect(two, "cluster_get_routes", 403, "This operation is not authorized due to role restrictions and/or invalid database items")
			expect(two, "user_info", 200, "")
			admin("alter_user", map[string]any{"username": "carl", "active": false})
			expect(two, "user_info", 401, "Login failed")
			admin("alter_user", map[string]any{"username": "carl", "active": true, "role": "super_user"})
			expect(two, "cluster_get_routes", 200, "")
			admin("drop_user", map[string]any{"username": "carl"})
			expect(two, "cluster_get_routes", 401, "Login failed")
			// A role losing super_user takes its users' rights at once.
			r := tr.call(t, n, adminBasic, "add_role", map[string]any{"role": "ops", "permission": map[string]any{"super_user": true}})
			var role sdkRole
			decode(t, "add_role", r, &role)
			admin("add_user", map[string]any{"username": "dora", "password": "pw", "role": "ops", "active": true})
			dora := basicAuth("dora", "pw")
			expect(dora, "cluster_get_routes", 200, "")
			admin("alter_role", map[string]any{"id": role.ID, "permission": map[string]any{"super_user": false}})
			expect(dora, "cluster_get_routes", 403, "")
			expect(dora, "list_users", 403, "")
			admin("drop_user", map[string]any{"username": "dora"})
			admin("drop_role", map[string]any{"id": role.ID})
		})
	}
}

// After 5 wrong passwords a user's further attempts wait (429), on HTTP and
// NATS alike; credentials already verified keep working; the lock passes.
func TestWrongPasswordsAreRateLimited(t *testing.T) {
	n := nodetest.StartNamed(t, "limit")
	tr := transports(t)
	httpT, natsT := tr[0], tr[1]
	if r := httpT.call(t, n, adminBasic, "add_user", map[string]any{"username": "eve", "password": "right", "role": "super_user", "active": true}); r.Status != 200 {
		t.Fatal(string(r.Body))
	}
	if r := httpT.call(t, n, adminBasic, "cluster_get_routes", nil); r.Status != 200 {
		t.Fatal(string(r.Body))
	}
	for i := 0; i < 5; i++ {
		for _, user := range []string{"eve", "admin"} {
			if r := natsT.call(t, n, basicAuth(user, "guess"), "cluster_get_routes", nil); r.Status != 401 || r.Error() != "Login failed" {
				t.Fatalf("guess %d for %s: %d %s", i, user, r.Status, r.Body)
			}
		}
	}
	locked := regexp.MustCompile(`^Too many failed logins for user 'eve'; retry in [12]s$`)
	for _, tr := range []transport{httpT, natsT} {
		for _, pw := range []string{"guess", "right"} {
			r := tr.call(t, n, basicAuth("eve", pw), "cluster_get_routes", nil)
			if r.Status != 429 || !locked.MatchString(r.Error()) {
				t.Fatalf("%s %s during the lock: %d %s", tr.name, pw, r.Status, r.Body)
			}
		}
	}
	// admin's verified credentials are not locked out by the guesses.
	if r := httpT.call(t, n, adminBasic, "cluster_get_routes", nil); r.Status != 200 {
		t.Fatalf("admin during the lock: %d %s", r.Status, r.Body)
	}
	nodetest.Eventually(t, 30*time.Second, "the lock to pass", func() bool {
		return httpT.call(t, n, basicAuth("eve", "right"), "cluster_get_routes", nil).Status == 200
	})
}

// Users live in the state store: a restart keeps them, and a first start's
// admin (password generated and printed once) is not created again.
func TestUsersSurviveRestartAndTheAdminIsCreatedOnce(t *testing.T) {
	cfg := nodetest.Config(t, "restart")
	cfg.Auth.AdminPassword = ""
	start := func() (*node.Node, string) {
		t.Helper()
		var out bytes.Buffer
		n, err := node.Start(context.Background(), cfg, node.Options{Stdout: &out})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = n.Close() })
		return n, out.String()
	}
	n, out := start()
	m := regexp.MustCompile(`Created super_user 'admin' with password (\S+) \(shown once; change it with alter_user\)\. Try:\n` +
		`  curl -u 'admin:(\S+)' http://127\.0\.0\.1:(\d+)/`).FindStringSubmatch(out)
	if m == nil || m[1] != m[2] || m[3] != fmt.Sprint(n.HTTPPort()) {
		t.Fatalf("first start printed:\n%s", out)
	}
	generated := basicAuth("admin", m[1])
	if r := httpRaw(t, n.HTTPPort(), generated, `{"operation":"add_user","username":"fred","password":"pw","role":"cluster_user","active":true}`); r.Status != 200 {
		t.Fatal(string(r.Body))
	}
	_ = n.Close()
	n, out = start()
	if strings.Contains(out, "Created super_user") {
		t.Fatalf("restart printed an admin again:\n%s", out)
	}
	for _, authz := range []string{generated, basicAuth("fred", "pw")} {
		if r := httpRaw(t, n.HTTPPort(), authz, `{"operation":"user_info"}`); r.Status != 200 {
			t.Fatalf("after restart: %d %s", r.Status, r.Body)
		}
	}
	// Neither list_users nor the store's files show the password.
	r := httpRaw(t, n.HTTPPort(), generated, `{"operation":"list_users"}`)
	var users []sdkUser
	decode(t, "list_users", r, &users)
	if len(users) != 2 || users[0].Username != "admin" || users[1].Username != "fred" || bytes.Contains(r.Body, []byte(m[1])) || bytes.Contains(r.Body, []byte("argon2")) {
		t.Fatalf("list_users: %s", r.Body)
	}
}

// The rest of HarperDB's wire: GET /health, remove_node validating its name
// first, purge_stream naming only the table when no database was given, and
// "ports": {} for a node that did not answer.
func TestHarperDBWireDetails(t *testing.T) {
	nodes := mesh(t, "a", "b")
	a, b := nodes[0], nodes[1]
	for _, authz := range []string{"", adminBasic} {
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/health", a.HTTPPort()), nil)
		if authz != "" {
			req.Header.Set("Authorization", authz)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET /health (%q): %v %v", authz, resp, err)
		}
		resp.Body.Close()
	}
	for body, want := range map[string]string{
		`{"node_name":"a"}`:   "'node_name' cannot be this nodes name",
		`{"node_name":"x.y"}`: "'node_name' invalid, must not contain ., * or >",
		`{"node_name":"x*"}`:  "'node_name' invalid, must not contain ., * or >",
		`{"node_name":"x>"}`:  "'node_name' invalid, must not contain ., * or >",
		`{"node_name":"zz"}`:  "Node 'zz' was not found.",
	} {
		r := nodetest.Op(t, a, "remove_node", body)
		if r.Status != 400 || r.Error() != want {
			t.Errorf("remove_node %s: %d %s, want 400 %s", body, r.Status, r.Body, want)
		}
	}
	// a holds no database at all.
	for body, want := range map[string]string{
		`{"table":"dog"}`:                  "Table 'dog' does not exist",
		`{"schema":"data","table":"dog"}`:  "Database 'data' does not exist. Table 'dog' does not exist",
		`{"database":"dev","table":"dog"}`: "Database 'dev' does not exist. Table 'dog' does not exist",
	} {
		r := nodetest.Op(t, a, "purge_stream", body)
		if r.Status != 400 || r.Error() != want {
			t.Errorf("purge_stream %s: %d %s, want 400 %s", body, r.Status, r.Body, want)
		}
	}
	for _, n := range nodes {
		nodetest.Op(t, n, "create_table", map[string]any{"table": "dog"})
	}
	if r := nodetest.Op(t, a, "add_node", map[string]any{"node_name": "b", "subscriptions": []any{sub("dog", true, true)}}); r.Status != 200 {
		t.Fatal(string(r.Body))
	}
	// Basic credentials reach another node by name too; that node checks
	// them against its own users.
	if r := rawRequest(t, nodetest.Connect(t, a), "ops.node.b.cluster.cluster_get_routes", adminBasic, `{}`); r.Status != 200 {
		t.Fatalf("Basic on ops.node.b: %d %s", r.Status, r.Body)
	}
	if r := rawRequest(t, nodetest.Connect(t, a), "ops.node.b.cluster.cluster_get_routes", basicAuth("admin", "wrong"), `{}`); r.Status != 401 || r.Error() != "Login failed" {
		t.Fatalf("wrong Basic on ops.node.b: %d %s", r.Status, r.Body)
	}
	_ = b.Close()
	r := nodetest.Op(t, a, "cluster_status", `{}`)
	if !regexp.MustCompile(`"node_name":"b","status":"(NoResponders|Timeout|closed)","ports":\{\},"subscriptions"`).Match(r.Body) {
		t.Fatalf("cluster_status with b down: %s", r.Body)
	}
}

// No log line, at any level, carries a password or a token: not the admin's,
// not one sent to add_user or alter_user, not a wrong one, not an operation
// token.
func TestLogsCarryNoPasswordOrToken(t *testing.T) {
	n, logs := nodetest.StartLogged(t, nodetest.Config(t, "quiet"))
	secrets := []string{nodetest.AdminPassword, "first-Secret-1", "second-Secret-2", "wrong-Guess-3"}
	for _, body := range []string{
		`{"operation":"add_user","username":"hal","password":"first-Secret-1","role":"super_user","active":true}`,
		`{"operation":"alter_user","username":"hal","password":"second-Secret-2"}`,
		`{"operation":"add_user","username":"hal","password":"first-Secret-1","role":"super_user","active":true}`,
	} {
		httpRaw(t, n.HTTPPort(), adminBasic, body)
	}
	httpRaw(t, n.HTTPPort(), basicAuth("hal", "wrong-Guess-3"), `{"operation":"cluster_get_routes"}`)
	r := httpRaw(t, n.HTTPPort(), "", `{"operation":"create_authentication_tokens","username":"hal","password":"second-Secret-2"}`)
	var toks sdkTokens
	decode(t, "create_authentication_tokens", r, &toks)
	secrets = append(secrets, toks.OperationToken, toks.RefreshToken)
	httpRaw(t, n.HTTPPort(), "Bearer "+toks.OperationToken, `{"operation":"cluster_get_routes"}`)
	httpRaw(t, n.HTTPPort(), "", `{"operation":"refresh_operation_token","refresh_token":"`+toks.RefreshToken+`"}`)
	if logs.Len() == 0 {
		t.Fatal("no log lines to check")
	}
	for _, e := range logs.All() {
		line := e.Message + fmt.Sprint(e.ContextMap())
		for _, s := range secrets {
			if strings.Contains(line, s) {
				t.Fatalf("log line shows a secret: %s", line)
			}
		}
	}
}

// HarperDB Studio in a browser: its preflight is answered, and the reply to
// its request carries the origin, as HarperDB's operationsApi.network.cors
// does by default; corsAccessList limits the origins.
func TestBrowserClientsGetCORS(t *testing.T) {
	studio := "https://studio.harperdb.io"
	do := func(n *node.Node, method, origin string, preflight bool) *http.Response {
		t.Helper()
		var body *strings.Reader
		if method == http.MethodPost {
			body = strings.NewReader(`{"operation":"user_info"}`)
		} else {
			body = strings.NewReader("")
		}
		req, _ := http.NewRequest(method, fmt.Sprintf("http://127.0.0.1:%d/", n.HTTPPort()), body)
		req.Header.Set("Origin", origin)
		if preflight {
			req.Header.Set("Access-Control-Request-Method", "POST")
			req.Header.Set("Access-Control-Request-Headers", "authorization,content-type")
		} else {
			req.Header.Set("Authorization", adminBasic)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	open := nodetest.StartNamed(t, "cors")
	if r := do(open, http.MethodOptions, studio, true); r.StatusCode != 204 || r.Header.Get("Access-Control-Allow-Origin") != studio ||
		!strings.Contains(r.Header.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Fatalf("preflight: %d %v", r.StatusCode, r.Header)
	}
	if r := do(open, http.MethodPost, studio, false); r.StatusCode != 200 || r.Header.Get("Access-Control-Allow-Origin") != studio {
		t.Fatalf("request: %d %v", r.StatusCode, r.Header)
	}
	cfg := nodetest.Config(t, "cors-listed")
	cfg.OperationsAPI.Network.CORSAccessList = []string{studio}
	listed := nodetest.Start(t, cfg)
	if r := do(listed, http.MethodOptions, "https://elsewhere.example", true); r.StatusCode == 204 || r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("unlisted origin's preflight: %d %v", r.StatusCode, r.Header)
	}
	if r := do(listed, http.MethodOptions, studio, true); r.StatusCode != 204 {
		t.Fatalf("listed origin's preflight: %d %v", r.StatusCode, r.Header)
	}
	cfg = nodetest.Config(t, "cors-off")
	cfg.OperationsAPI.Network.CORS = false
	off := nodetest.Start(t, cfg)
	if r := do(off, http.MethodPost, studio, false); r.StatusCode != 200 || r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("cors off: %d %v", r.StatusCode, r.Header)
	}
}
