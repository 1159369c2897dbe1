package docs_test

import (
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clusterd/clusterd/client"
	"github.com/clusterd/clusterd/node"
	"github.com/clusterd/clusterd/node/nodetest"
)

var update = flag.Bool("update", false, "rewrite the transcripts in operations.md from a real run")

const opsDoc = "operations.md"

// A transcript is one `nats req` run shown in the docs, between
// <!-- transcript: KEY --> and <!-- /transcript --> markers.
type transcript struct {
	key     string
	op      string // skipped when the node does not serve it
	subject string
	body    string
	token   string // "" (none), "admin" or "reader" (Bearer), "basic" (the admin user's password), "basic-wrong"
}

var transcriptRE = regexp.MustCompile(`(?s)<!-- transcript: (\S+) -->\n(.*?)<!-- /transcript -->`)

// normalize drops what changes from run to run: clock times, round trips,
// latencies, uptimes, build details and fresh timestamps.
func normalize(s string) string {
	for _, r := range []struct{ re, with string }{
		{`(?m)^\d\d:\d\d:\d\d `, ""},
		{`rtt \S+`, "rtt X"},
		{`"(latency_ms|response_time)":[0-9.]+`, `"$1":0`},
		{`"(uptime|go_version|platform|arch|version)":"[^"]*"`, `"$1":"X"`},
		{`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z`, "TIME"},
		{`"(__createdtime__|__updatedtime__|txn_time)":\d+`, `"$1":0`},
		{`"id":"[0-9a-f-]{36}"`, `"id":"ID"`},
		{`"(operation_token|refresh_token)":"[^"]+"`, `"$1":"JWT"`},
	} {
		s = regexp.MustCompile(r.re).ReplaceAllString(s, r.with)
	}
	// The CLI prints headers in map order.
	lines := strings.Split(s, "\n")
	isHeader := regexp.MustCompile(`^[A-Za-z-]+: `)
	for i := 0; i < len(lines); {
		j := i
		for j < len(lines) && isHeader.MatchString(lines[j]) {
			j++
		}
		if j > i {
			sort.Strings(lines[i:j])
			i = j
		} else {
			i++
		}
	}
	return strings.Join(lines, "\n")
}

func natsBin(t *testing.T) string {
	if p, err := exec.LookPath("nats"); err == nil {
		return p
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		p := filepath.Join(strings.TrimSpace(string(out)), "bin", "nats")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Skip("nats CLI not found; install it with: go install github.com/nats-io/natscli/nats@v0.5.0")
	return ""
}

func serves(n *node.Node, op string) bool {
	for _, o := range n.Ops.Operations() {
		if o.Name == op {
			return true
		}
	}
	return false
}

// The `nats req` transcripts in operations.md are real: this test replays
// them against two fresh nodes (node1, node2) with the real CLI and compares
// (ports shown as the defaults; clock times, latencies and fresh timestamps
// aside). `go test ./docs -update` rewrites them from the run.
func TestOperationsTranscripts(t *testing.T) {
	bin := natsBin(t)
	ctx := context.Background()
	key := filepath.Join(t.TempDir(), "issuer.key")
	var nodes []*node.Node
	for _, name := range []string{"node1", "node2"} {
		cfg := nodetest.Config(t, name)
		cfg.Auth.IssuerKeyFile = key
		nodes = append(nodes, nodetest.Start(t, cfg))
	}
	n1, n2 := nodes[0], nodes[1]
	admin := func(n *node.Node) *client.Client {
		return client.New(nodetest.Connect(t, n), client.WithIssuerKey(n.IssuerKey(), "admin", "super_user", time.Hour))
	}
	c1, c2 := admin(n1), admin(n2)
	// Set-up the transcripts do not show: node2 routes to node1 (so node1's
	// own routes are only what the transcripts set), node2 holds dev.dog,
	// node1 has two transactions of it.
	if _, err := c2.SetRoutes(ctx, client.SetRoutesRequest{Server: client.Hub, Routes: []client.Route{{Host: "127.0.0.1", Port: n1.Servers.Ports().Cluster}}}); err != nil {
		t.Fatal(err)
	}
	nodetest.Eventually(t, 10*time.Second, "node1 reaches node2 by name", func() bool { _, err := c1.OnNode("node2").GetRoutes(ctx); return err == nil })
	nodetest.Eventually(t, 10*time.Second, "node2 reaches node1 by name", func() bool { _, err := c2.OnNode("node1").GetRoutes(ctx); return err == nil })
	if _, err := c2.CreateTable(ctx, client.CreateTableRequest{Database: "dev", Table: "dog"}); err != nil {
		t.Fatal(err)
	}

	ports := map[string]string{}
	for _, n := range nodes {
		p := n.Servers.Ports()
		for real, def := range map[int]int{n.HTTPPort(): 9925, p.HubClient: 9930, p.HubLeaf: 9931, p.Cluster: 9932, p.LeafClient: 9940} {
			ports[strconv.Itoa(real)] = strconv.Itoa(def)
		}
	}
	adminTok := nodetest.SuperUser(t, n1)
	readerTok, err := n1.Token("bob", "cluster_user", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	run := func(tr transcript) string {
		t.Helper()
		args := []string{"--server", n1.LeafURL(), "--user", n1.OperatorUser(), "--password", n1.OperatorPassword(), "req", tr.subject, tr.body}
		shown := fmt.Sprintf("$ nats req %s '%s'", tr.subject, tr.body)
		switch tr.token {
		case "admin":
			args = append(args, "-H", "Authorization:Bearer "+adminTok)
			shown += ` -H "Authorization:Bearer $TOKEN"`
		case "reader":
			args = append(args, "-H", "Authorization:Bearer "+readerTok)
			shown += ` -H "Authorization:Bearer $READER_TOKEN"`
		case "basic":
			args = append(args, "-H", "Authorization:Basic "+base64.StdEncoding.EncodeToString([]byte("admin:"+nodetest.AdminPassword)))
			shown += ` -H "Authorization:Basic $(printf admin:$PASSWORD | base64)"`
		case "basic-wrong":
			args = append(args, "-H", "Authorization:Basic "+base64.StdEncoding.EncodeToString([]byte("admin:wrong")))
			shown += ` -H "Authorization:Basic $(printf admin:wrong | base64)"`
		}
		var (
			out []byte
			err error
		)
		for attempt := 0; ; attempt++ {
			cmd := exec.Command(bin, args...)
			cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+home, "NATS_CONTEXT=")
			out, err = cmd.CombinedOutput()
			// nats-server re-reads its users on every reload (a leaf route
			// change reloads the leaf server) and may refuse a client that
			// connects meanwhile: connect again, as a real client would.
			if err == nil || attempt == 3 || !strings.Contains(string(out), "Authorization Violation") {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("%s: %v\n%s", shown, err, out)
		}
		o := regexp.MustCompile(`\b\d{4,5}\b`).ReplaceAllStringFunc(string(out), func(s string) string {
			if d, ok := ports[s]; ok {
				return d
			}
			return s
		})
		return "```console\n" + shown + "\n" + strings.TrimRight(o, "\n") + "\n```\n"
	}

	dog := `{"database":"dev","table":"dog","subscribe":true,"publish":true}`
	steps := []struct {
		transcript
		before func()
	}{
		{transcript: transcript{"cluster_set_routes", "cluster_set_routes", "ops.cluster.cluster_set_routes", `{"server":"hub","routes":[{"host":"10.0.0.2","port":9932},{"host":"10.0.0.3","port":"9932"}]}`, "admin"}},
		{transcript: transcript{"cluster_set_routes-upsert", "cluster_set_routes", "ops.cluster.cluster_set_routes", `{"server":"leaf","routes":[{"host":"10.0.0.2","port":9932},{"host":"10.0.0.4","port":9931}]}`, "admin"}},
		{transcript: transcript{"cluster_set_routes-invalid", "cluster_set_routes", "ops.cluster.cluster_set_routes", `{"server":"both","routes":[{"host":"","port":-1}]}`, "admin"}},
		{transcript: transcript{"cluster_get_routes", "cluster_get_routes", "ops.cluster.cluster_get_routes", `{}`, "admin"}},
		{transcript: transcript{"cluster_delete_routes", "cluster_delete_routes", "ops.cluster.cluster_delete_routes", `{"routes":[{"host":"10.0.0.3","port":9932},{"host":"10.0.0.9","port":9932}]}`, "admin"}},
		{transcript: transcript{"create_table", "create_table", "ops.cluster.create_table", `{"database":"dev","table":"dog"}`, "admin"}},
		{transcript: transcript{"describe_all", "describe_all", "ops.cluster.describe_all", `{}`, "admin"}, before: func() {
			tx, err := c1.Transactions(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range []string{`{"id":1}`, `{"id":2}`} {
				if _, err := tx.Publish(ctx, "dev", "dog", []byte(d)); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{transcript: transcript{"describe_all-addressed", "describe_all", "ops.node.node2.cluster.describe_all", `{}`, "admin"}},
		{transcript: transcript{"add_node", "add_node", "ops.cluster.add_node", `{"node_name":"node2","subscriptions":[` + dog + `]}`, "admin"}},
		{transcript: transcript{"add_node-again", "add_node", "ops.cluster.add_node", `{"node_name":"node2","subscriptions":[` + dog + `]}`, "admin"}},
		{transcript: transcript{"update_node", "update_node", "ops.cluster.update_node", `{"node_name":"node2","subscriptions":[{"database":"dev","table":"dog","subscribe":true,"publish":false}]}`, "admin"}},
		{transcript: transcript{"set_node_replication", "set_node_replication", "ops.cluster.set_node_replication", `{"node_name":"node2","subscriptions":[{"database":"dev","table":"dog","subscribe":true,"publish":true,"start_time":"2024-01-01"},{"database":"dev","table":"cat","subscribe":true,"publish":true}]}`, "admin"}},
		{transcript: transcript{"cluster_status", "cluster_status", "ops.cluster.cluster_status", `{}`, "admin"}, before: func() {
			nodetest.Eventually(t, 10*time.Second, "node2 open and converged", func() bool {
				st, err := c1.ClusterStatus(ctx)
				if err != nil || len(st.Connections) != 1 || st.Connections[0].Status != client.StatusOpen {
					return false
				}
				for _, s := range st.Connections[0].Subscriptions {
					if !s.Converged || s.Lag == nil || *s.Lag != 0 {
						return false
					}
				}
				return true
			})
		}},
		{transcript: transcript{"cluster_network", "cluster_network", "ops.cluster.cluster_network", `{"timeout":2000,"routes":false}`, "admin"}},
		{transcript: transcript{"purge_stream", "purge_stream", "ops.cluster.purge_stream", `{"database":"dev","table":"dog","options":{"keep":1}}`, "admin"}},
		{transcript: transcript{"purge_stream-invalid", "purge_stream", "ops.cluster.purge_stream", `{"database":"dev","table":"dog","options":{"keep":1,"seq":5}}`, "admin"}},
		{transcript: transcript{"remove_node", "remove_node", "ops.cluster.remove_node", `{"node_name":"node2"}`, "admin"}},
		{transcript: transcript{"remove_node-missing", "remove_node", "ops.cluster.remove_node", `{"node_name":"node2"}`, "admin"}},
		{transcript: transcript{"configure_cluster", "configure_cluster", "ops.cluster.configure_cluster", `{"connections":[{"node_name":"node2","subscriptions":[` + dog + `]}]}`, "admin"}},
		{transcript: transcript{"error-401", "cluster_get_routes", "ops.cluster.cluster_get_routes", `{}`, ""}},
		{transcript: transcript{"error-401-login", "cluster_get_routes", "ops.cluster.cluster_get_routes", `{}`, "basic-wrong"}},
		{transcript: transcript{"add_user", "add_user", "ops.cluster.add_user", `{"username":"ops","password":"s3cret","role":"super_user","active":true}`, "basic"}},
		{transcript: transcript{"add_user-exists", "add_user", "ops.cluster.add_user", `{"username":"ops","password":"other","role":"super_user","active":true}`, "basic"}},
		{transcript: transcript{"list_users", "list_users", "ops.cluster.list_users", `{}`, "basic"}},
		{transcript: transcript{"create_authentication_tokens", "create_authentication_tokens", "ops.cluster.create_authentication_tokens", `{"username":"ops","password":"s3cret"}`, ""}},
		{transcript: transcript{"drop_user", "drop_user", "ops.cluster.drop_user", `{"username":"ops"}`, "basic"}},
		{transcript: transcript{"error-403", "cluster_get_routes", "ops.cluster.cluster_get_routes", `{}`, "reader"}},
		{transcript: transcript{"error-unknown", "", "ops.cluster.cluster_get_route", `{}`, "admin"}},
		{transcript: transcript{"error-mismatch", "cluster_get_routes", "ops.cluster.cluster_get_routes", `{"operation":"describe_all"}`, "admin"}},
	}

	b, err := os.ReadFile(opsDoc)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	inDoc := map[string]string{}
	for _, m := range transcriptRE.FindAllStringSubmatch(doc, -1) {
		inDoc[m[1]] = m[2]
	}
	fresh := map[string]string{}
	for _, s := range steps {
		if s.op != "" && !serves(n1, s.op) {
			t.Logf("%s: this build does not serve %s; transcript not checked", s.key, s.op)
			continue
		}
		if s.before != nil {
			s.before()
		}
		fresh[s.key] = run(s.transcript)
		old, ok := inDoc[s.key]
		switch {
		case !ok:
			t.Errorf("%s has no <!-- transcript: %s --> block", opsDoc, s.key)
		case !*update && normalize(old) != normalize(fresh[s.key]):
			t.Errorf("transcript %s is out of date (go test ./docs -update rewrites it):\n--- doc\n%s--- now\n%s", s.key, old, fresh[s.key])
		}
	}
	if *update {
		out := transcriptRE.ReplaceAllStringFunc(doc, func(block string) string {
			m := transcriptRE.FindStringSubmatch(block)
			if f, ok := fresh[m[1]]; ok {
				return "<!-- transcript: " + m[1] + " -->\n" + f + "<!-- /transcript -->"
			}
			return block
		})
		if err := os.WriteFile(opsDoc, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
