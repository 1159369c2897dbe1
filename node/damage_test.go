package node_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clusterd/clusterd/node/nodetest"
)

// runUntilExit runs the clusterd binary on cfgFile with extra args and
// returns its output once it exits (failing the test if it is still
// running after 60 s).
func runUntilExit(t *testing.T, cfgFile string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, nodetest.Binary(t), append([]string{"--config", cfgFile}, args...)...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("clusterd %v did not exit:\n%s", args, out)
	}
	if err == nil {
		t.Fatalf("clusterd %v exited 0, want a refusal:\n%s", args, out)
	}
	return string(out)
}

// startBinary runs the binary with extra args until /readyz answers 200 and
// returns a stop function (SIGTERM, wait).
func startBinary(t *testing.T, cfgFile string, port int, args ...string) func() {
	t.Helper()
	logf, err := os.CreateTemp(t.TempDir(), "log")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(nodetest.Binary(t), append([]string{"--config", cfgFile}, args...)...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	stop := func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	t.Cleanup(stop)
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", port))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return stop
			}
		}
		select {
		case <-done:
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("clusterd %v exited before ready:\n%s", args, b)
		default:
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("clusterd %v not ready:\n%s", args, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A damaged or lost state store is never taken for an empty one: the node
// refuses to start, naming the file and what to do, and starts again with
// --begin-anew, which moves the damaged store aside.
func TestDamagedStateStoreRefusesToStart(t *testing.T) {
	cases := []struct {
		name   string
		damage func(t *testing.T, state string)
		want   []string
	}{
		{"truncated MANIFEST", func(t *testing.T, state string) {
			p := filepath.Join(state, "MANIFEST")
			st, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(p, st.Size()/2); err != nil {
				t.Fatal(err)
			}
		}, []string{"MANIFEST", "is damaged", "--begin-anew", "backup"}},
		{"truncated table", func(t *testing.T, state string) {
			m, _ := filepath.Glob(filepath.Join(state, "*.sst"))
			if len(m) == 0 {
				t.Fatal("no table file after a clean stop")
			}
			st, _ := os.Stat(m[0])
			if err := os.Truncate(m[0], st.Size()/2); err != nil {
				t.Fatal(err)
			}
		}, []string{".sst", "is damaged", "--begin-anew"}},
		{"state store removed", func(t *testing.T, state string) {
			if err := os.RemoveAll(state); err != nil {
				t.Fatal(err)
			}
		}, []string{"is empty or missing", "started before", "--begin-anew"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := nodetest.ProcConfig(t, "dmg1")
			p := nodetest.StartProc(t, cfg)
			tok := p.Token(t)
			nc := p.Conn(t)
			if r := nodetest.Request(t, nc, "ops.cluster.cluster_set_routes", tok, map[string]any{"server": "hub", "routes": []any{map[string]any{"host": "10.9.9.9", "port": 9932}}}); r.Status != 200 {
				t.Fatalf("set routes: %s", r.Body)
			}
			nc.Close()
			if err := p.Stop(); err != nil {
				t.Fatalf("clean stop: %v", err)
			}
			state := filepath.Join(cfg.RootPath, "state")
			c.damage(t, state)
			cfgFile := filepath.Join(cfg.RootPath, "..", "dmg1.yaml")

			out := runUntilExit(t, cfgFile)
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("refusal lacks %q:\n%s", w, out)
				}
			}
			if strings.Contains(out, "panic") || strings.Contains(out, "goroutine ") {
				t.Fatalf("refusal is a panic:\n%s", out)
			}

			stop := startBinary(t, cfgFile, cfg.OperationsAPI.Network.Port, "--begin-anew")
			nc = p.Conn(t)
			r := nodetest.Request(t, nc, "ops.cluster.cluster_get_routes", tok, map[string]any{})
			if r.Status != 200 || strings.Contains(string(r.Body), "10.9.9.9") {
				t.Fatalf("routes after beginning anew: %d %s", r.Status, r.Body)
			}
			aside, _ := filepath.Glob(state + ".damaged-*")
			if c.name != "state store removed" && len(aside) != 1 {
				t.Fatalf("damaged store not moved aside: %v", aside)
			}
			nc.Close()
			stop()
			// Once begun anew, a plain start works.
			startBinary(t, cfgFile, cfg.OperationsAPI.Network.Port)()
		})
	}
}
