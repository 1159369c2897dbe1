package demo_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clusterd/clusterd/client"
	"github.com/clusterd/clusterd/node/demo"
	"github.com/clusterd/clusterd/node/nodetest"
	"github.com/nats-io/nats.go"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func find(t *testing.T, out, pattern string) [][]string {
	t.Helper()
	m := regexp.MustCompile(pattern).FindAllStringSubmatch(out, -1)
	if len(m) == 0 {
		t.Fatalf("no %q in the guide:\n%s", pattern, out)
	}
	return m
}

// natsCLI finds the nats CLI (natscli v0.5.0) or returns "".
func natsCLI() string {
	if p, err := exec.LookPath("nats"); err == nil {
		return p
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		p := filepath.Join(strings.TrimSpace(string(out)), "bin", "nats")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// `clusterd demo` as a user meets it: the guide's addresses, token and
// commands work, replication flows between all three nodes, and Ctrl-C leaves
// nothing running and nothing on disk.
func TestDemoRunsAndStopsCleanly(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- demo.Run(ctx, demo.Options{BasePort: 0}, out) }()
	nodetest.Eventually(t, 60*time.Second, "the demo guide", func() bool {
		select {
		case err := <-done:
			t.Fatalf("demo stopped early: %v\n%s", err, out)
		default:
		}
		return strings.Contains(out.String(), "Press Ctrl-C")
	})
	guide := out.String()
	t.Log(guide)

	token := find(t, guide, `export CLUSTERD_TOKEN=(\S+)`)[0][1]
	password := find(t, guide, `--password (\S+)`)[0][1]
	dir := find(t, guide, `Data: (\S+) \(removed on exit\)`)[0][1]
	// The guide's credentials are the operator's; the cluster secret, which
	// only nodes hold, is never shown.
	if cluster, err := os.ReadFile(filepath.Join(dir, "cluster-password")); err != nil || strings.Contains(guide, strings.TrimSpace(string(cluster))) {
		t.Fatalf("the guide shows the cluster password (or it is missing: %v)", err)
	}
	rows := find(t, guide, `(?m)^  (node\d)\s+(nats://127\.0\.0\.1:(\d+))\s+http://127\.0\.0\.1:(\d+)\s+(\d+)$`)
	if len(rows) != 3 {
		t.Fatalf("want 3 nodes in the guide, got %v", rows)
	}
	var ports []int
	clients := map[string]*client.Client{}
	for _, r := range rows {
		for _, s := range r[3:] {
			p, _ := strconv.Atoi(s)
			ports = append(ports, p)
		}
		nc, err := nats.Connect(r[2], nats.UserInfo("operator", password), nats.NoReconnect())
		if err != nil {
			t.Fatalf("connect to %s at %s: %v", r[1], r[2], err)
		}
		defer nc.Close()
		clients[r[1]] = client.New(nc, client.WithToken(token))
	}

	// A write on node2 reaches node1 and node3.
	tx2, err := clients["node2"].Transactions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx2.Publish(ctx, demo.Database, demo.Table, []byte("from-node2")); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"node1", "node3"} {
		tx, err := clients[name].Transactions(ctx)
		if err != nil {
			t.Fatal(err)
		}
		cons, err := tx.Consumer(ctx, demo.Database, demo.Table, client.FromOrigin("node2"))
		if err != nil {
			t.Fatal(err)
		}
		nodetest.Eventually(t, 10*time.Second, "node2's write on "+name, func() bool {
			b, err := cons.FetchNoWait(10)
			if err != nil {
				t.Fatal(err)
			}
			for m := range b.Messages() {
				if string(m.Data()) == "from-node2" {
					return true
				}
			}
			return false
		})
	}

	// The printed nats CLI commands work as printed.
	if bin := natsCLI(); bin != "" {
		home := t.TempDir()
		sh := func(line string) string {
			t.Helper()
			cctx, ccancel := context.WithTimeout(ctx, 20*time.Second)
			defer ccancel()
			cmd := exec.CommandContext(cctx, "sh", "-c", line)
			cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+home, "NATS_CONTEXT=", "CLUSTERD_TOKEN="+token,
				"PATH="+filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"))
			b, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%s: %v\n%s", line, err, b)
			}
			return string(b)
		}
		lines := find(t, guide, `(?m)^  (nats .*)$`)
		if _, err := exec.LookPath("curl"); err == nil {
			lines = append(lines, find(t, guide, `(?m)^  (curl .*)$`)...)
		}
		for _, m := range lines {
			line := m[1]
			o := sh(line)
			switch {
			case strings.Contains(line, "describe_all"):
				// nats req and curl alike
				if !strings.Contains(o, `"dog":{"stream":"txn","filter_subject":"txn.dev.dog.*"`) {
					t.Fatalf("%s:\n%s", line, o)
				}
			case strings.Contains(line, "cluster_get_routes"):
				if !strings.Contains(o, `"hub":[{"host":"127.0.0.1"`) || strings.Contains(o, "Nats-Service-Error") {
					t.Fatalf("%s:\n%s", line, o)
				}
			case strings.Contains(line, "curl -s -u admin:"):
				// HarperDB's Basic credentials, the demo's admin user.
				if !strings.Contains(o, `"node_name":"node1","is_enabled":true`) {
					t.Fatalf("%s:\n%s", line, o)
				}
			case strings.Contains(line, "micro info"):
				if !strings.Contains(o, "describe_all") {
					t.Fatalf("%s:\n%s", line, o)
				}
			case strings.Contains(line, " sub "):
				if !strings.Contains(o, `{"id":2,"name":"Penny"}`) || !strings.Contains(o, "from-node2") {
					t.Fatalf("%s: the write on node1 did not show on node3:\n%s", line, o)
				}
			}
		}
	} else {
		t.Log("nats CLI not installed: the printed commands were not run (go install github.com/nats-io/natscli/nats@v0.5.0)")
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("demo.Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("demo did not stop within 30s of Ctrl-C")
	}
	if !strings.Contains(out.String(), "Stopped; nothing is left running.") {
		t.Fatalf("no stop message:\n%s", out)
	}
	for _, p := range ports {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			t.Errorf("port %d still taken after the demo stopped: %v", p, err)
			continue
		}
		l.Close()
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temporary data directory %s still there: %v", dir, err)
	}
}

// A second run on the same directory converges to the same cluster, even on
// other ports (stale routes are dropped), and keeps the data.
func TestDemoResumesOnItsDirectory(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	first, err := demo.Start(ctx, demo.Options{Dir: dir})
	if err != nil {
		// DefaultBasePort may be taken on this machine; free ports show the same.
		if first, err = demo.Start(ctx, demo.Options{Dir: dir, BasePort: 0}); err != nil {
			t.Fatal(err)
		}
	}
	password, operatorPassword, token := first.Password, first.OperatorPassword, first.Token
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := demo.Start(ctx, demo.Options{Dir: dir, BasePort: 0})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if again.Password != password || again.OperatorPassword != operatorPassword {
		t.Fatal("a password changed between runs")
	}
	c, err := again.Client(0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.New(c.Conn(), client.WithToken(token)).GetRoutes(ctx); err != nil {
		t.Fatalf("the first run's token is not trusted any more: %v", err)
	}
	routes, err := c.GetRoutes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var want []client.Route
	for _, n := range again.Nodes[1:] {
		want = append(want, client.Route{Host: "127.0.0.1", Port: n.Servers.Ports().Cluster})
	}
	if !slices.Equal(routes.Hub, want) || len(routes.Leaf) != 0 {
		t.Fatalf("node1 routes %+v, want exactly %+v", routes, want)
	}
	all, err := c.DescribeAll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Each run's check wrote one transaction on node1.
	if got := all[demo.Database][demo.Table].Messages; got < 2 {
		t.Fatalf("node1 holds %d transactions of %s.%s after two runs, want at least 2", got, demo.Database, demo.Table)
	}
}
