package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clusterd/clusterd/node"
	"github.com/clusterd/clusterd/node/nodetest"
)

// natsArgs are the flags that reach n over NATS as its first start's
// context line does.
func natsArgs(n *node.Node) []string {
	return []string{"--server", n.LeafURL(), "--user", n.OperatorUser(), "--password", n.OperatorPassword()}
}

// replicatedPair starts two meshed nodes replicating dev.t both ways.
func replicatedPair(t *testing.T) (a, b *node.Node) {
	t.Helper()
	a, b = nodetest.StartNamed(t, "sa"), nodetest.StartNamed(t, "sb")
	if r := nodetest.Op(t, a, "cluster_set_routes", map[string]any{"server": "hub", "routes": []any{nodetest.ClusterRoute(b)}}); r.Status != 200 {
		t.Fatalf("set routes: %s", r.Body)
	}
	for _, n := range []*node.Node{a, b} {
		nodetest.Op(t, n, "create_table", map[string]any{"database": "dev", "table": "t"})
	}
	nodetest.Eventually(t, 30*time.Second, "replication set up", func() bool {
		r := nodetest.Op(t, a, "set_node_replication", map[string]any{"node_name": "sb",
			"subscriptions": []any{map[string]any{"database": "dev", "table": "t", "subscribe": true, "publish": true}}})
		return r.Status == 200
	})
	return a, b
}

func runStatus(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(append([]string{"status"}, args...), &out, &errb)
	return out.String(), err
}

// `clusterd status` as an operator reads it: over NATS, over HTTP, through
// the mesh, as JSON; a peer that is down and a route to nothing show up.
func TestStatusCommandShowsTheClusterAtAGlance(t *testing.T) {
	a, b := replicatedPair(t)
	tok := nodetest.SuperUser(t, a)
	rowRe := regexp.MustCompile(`(?m)^  sb\s+dev\.t\s+yes\s+yes\s+yes\s+0\s+-\s*$`)
	var out string
	nodetest.Eventually(t, 60*time.Second, "status to show converged replication", func() bool {
		var err error
		out, err = runStatus(t, append(natsArgs(a), "--token", tok)...)
		return err == nil && rowRe.MatchString(out)
	})
	for _, want := range []string{
		"clusterd status of sa at ",
		"(clustering enabled)",
		"NODES (2 in the mesh answered cluster_network)",
		"ROUTES of sa\n  hub   127.0.0.1:",
		"LINK PROBLEMS of sa: none",
		"PEERS of sa\n",
		"REPLICATION on sa",
	} {
		if !strings.Contains(out, want) {
			t.Fatalf("no %q in:\n%s", want, out)
		}
	}
	if !regexp.MustCompile(`(?m)^  sb\s+open\s+[0-9.]+ms\s+\S+.*\s+0\.`).MatchString(out) {
		t.Fatalf("no open peer row for sb:\n%s", out)
	}
	if !regexp.MustCompile(`(?m)^  sa\s+[0-9.]+ms\s+sb\s+127\.0\.0\.1:`).MatchString(out) {
		t.Fatalf("no node row for sa routed to sb:\n%s", out)
	}

	// HTTP, the same view.
	// (Waited for as well: a worker pass on either node may briefly report the
	// subscription as not yet converged again.)
	var httpOut string
	nodetest.Eventually(t, 30*time.Second, "--http to show converged replication", func() bool {
		var err error
		httpOut, err = runStatus(t, "--http", fmt.Sprintf("http://127.0.0.1:%d", a.HTTPPort()), "--token", tok)
		return err == nil && rowRe.MatchString(httpOut)
	})
	// Through the mesh: b's view, with a's token (the pair does not share an
	// issuer key, so b's own).
	meshOut, err := runStatus(t, append(natsArgs(a), "--node", "sb", "--token", nodetest.SuperUser(t, b))...)
	if err != nil || !strings.Contains(meshOut, "clusterd status of sb at ") || !regexp.MustCompile(`(?m)^  sa\s+dev\.t\s+yes\s+yes`).MatchString(meshOut) {
		t.Fatalf("--node sb: %v\n%s", err, meshOut)
	}
	// JSON for scripts.
	var jsonOut string
	nodetest.Eventually(t, 30*time.Second, "--json to show converged replication", func() bool {
		var err error
		jsonOut, err = runStatus(t, append(natsArgs(a), "--token", tok, "--json")...)
		var snap statusSnapshot
		return err == nil && json.Unmarshal([]byte(jsonOut), &snap) == nil && snap.Node == "sa" && len(snap.Status.Connections) == 1 &&
			snap.Status.Connections[0].Subscriptions[0].Converged && snap.Network != nil && len(snap.Network.Nodes) == 2
	})

	// A route to nothing, and the peer down.
	dead := nodetest.FreePort(t)
	nodetest.Op(t, a, "cluster_set_routes", map[string]any{"server": "hub", "routes": []any{map[string]any{"host": "127.0.0.1", "port": dead}}})
	b.Close()
	nodetest.Eventually(t, 60*time.Second, "the down peer and the dead route in status", func() bool {
		out, err = runStatus(t, append(natsArgs(a), "--token", tok)...)
		return err == nil && regexp.MustCompile(`(?m)^  sb\s+(NoResponders|Timeout)\s+-`).MatchString(out) &&
			regexp.MustCompile(fmt.Sprintf(`(?m)^  unreachable\s+route\s+127\.0\.0\.1:%d\s+no\s+`, dead)).MatchString(out) &&
			regexp.MustCompile(`(?m)^  sb\s+dev\.t\s+yes\s+yes\s+(yes|no)\s+\?\s+`).MatchString(out)
	})
}

// With a nats CLI context (selected, or named with --context), status needs
// nothing else but a token; refusals say what to pass.
func TestStatusCommandUsesTheNatsContextAndSaysWhatIsMissing(t *testing.T) {
	a := nodetest.StartNamed(t, "ctx1")
	tok := nodetest.SuperUser(t, a)
	cfgHome := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", cfgHome)
	t.Setenv("CLUSTERD_TOKEN", "")
	t.Setenv("ROOTPATH", t.TempDir()) // no issuer key there

	if _, err := runStatus(t, "--token", tok); err == nil || !strings.Contains(err.Error(), "no node to ask: pass --server nats://HOST:PORT") {
		t.Fatalf("no context: %v", err)
	}
	if _, err := runStatus(t, natsArgs(a)...); err == nil || !strings.Contains(err.Error(), "a super_user token is needed: pass --token, set CLUSTERD_TOKEN") {
		t.Fatalf("no token: %v", err)
	}
	if _, err := runStatus(t, "--http", "http://127.0.0.1:1", "--node", "x", "--token", tok); err == nil || !strings.Contains(err.Error(), "--node goes through the mesh") {
		t.Fatalf("--node with --http: %v", err)
	}

	ctxDir := filepath.Join(cfgHome, "nats", "context")
	if err := os.MkdirAll(ctxDir, 0o700); err != nil {
		t.Fatal(err)
	}
	ctx, _ := json.Marshal(map[string]string{"url": a.LeafURL(), "user": a.OperatorUser(), "password": a.OperatorPassword()})
	if err := os.WriteFile(filepath.Join(ctxDir, "ctx1.json"), ctx, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := runStatus(t, "--context", "ctx1", "--token", tok); err != nil || !strings.Contains(out, "clusterd status of ctx1") {
		t.Fatalf("--context: %v\n%s", err, out)
	}
	if err := os.WriteFile(filepath.Join(cfgHome, "nats", "context.txt"), []byte("ctx1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CLUSTERD_TOKEN", tok)
	if out, err := runStatus(t); err != nil || !strings.Contains(out, "PEERS of ctx1: none") {
		t.Fatalf("selected context: %v\n%s", err, out)
	}
	if _, err := runStatus(t, "--context", "nope"); err == nil || !strings.Contains(err.Error(), `nats context "nope"`) {
		t.Fatalf("unknown context: %v", err)
	}
}

// --watch refreshes until Ctrl-C (a real SIGINT), then ends with exit 0;
// with --json, one object per refresh.
func TestStatusWatchRefreshesUntilCtrlC(t *testing.T) {
	a := nodetest.StartNamed(t, "w1")
	out, errb := &syncBuffer{}, &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(append([]string{"status", "--watch", "--json", "--interval", "100ms", "--token", nodetest.SuperUser(t, a)}, natsArgs(a)...), out, errb)
	}()
	nodetest.Eventually(t, 30*time.Second, "three refreshes", func() bool {
		select {
		case err := <-done:
			t.Fatalf("status --watch ended: %v", err)
		default:
		}
		return strings.Count(out.String(), "\n") >= 3
	})
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("still watching 10 s after Ctrl-C")
	}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var snap statusSnapshot
		if err := json.Unmarshal([]byte(line), &snap); err != nil || snap.Node != "w1" {
			t.Fatalf("line %q: %v", line, err)
		}
	}
}
