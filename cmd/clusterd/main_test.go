package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/clusterd/clusterd/node/nodetest"
	"github.com/nats-io/nats.go"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	binDir    string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// buildBinary compiles clusterd once per test run.
func buildBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if binDir, buildErr = os.MkdirTemp("", "clusterd-bin-"); buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "clusterd")
		if out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// freePorts returns n distinct ports that were free a moment ago.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	var lns []net.Listener
	for i := 0; i < n; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}

// syncBuffer is a bytes.Buffer safe to write from exec's copier and read
// from the test.
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

type proc struct {
	cmd            *exec.Cmd
	stdout, stderr *syncBuffer
	done           chan struct{} // closed when the process has exited
	err            error         // Wait's result, once done
}

func start(t *testing.T, bin string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(bin, args...), stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// stop signals the process and returns its exit code.
func (p *proc) stop(t *testing.T, sig os.Signal) int {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
		var ee *exec.ExitError
		if errors.As(p.err, &ee) {
			return ee.ExitCode()
		}
		if p.err != nil {
			t.Fatal(p.err)
		}
		return 0
	case <-time.After(30 * time.Second):
		t.Fatalf("clusterd did not exit within 30s of %v; stderr:\n%s", sig, p.stderr.String())
		return -1
	}
}

// logLine returns the first JSON log line whose msg is msg.
func logLine(logs, msg string) map[string]any {
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil && m["msg"] == msg {
			return m
		}
	}
	return nil
}

func waitReady(t *testing.T, p *proc, port int) {
	t.Helper()
	url := fmt.Sprintf("http://127.0.0.1:%d/readyz", port)
	c := &http.Client{Timeout: time.Second}
	nodetest.Eventually(t, 30*time.Second, "/readyz 200", func() bool {
		select {
		case <-p.done:
			t.Fatalf("clusterd exited early: %v\nstderr:\n%s", p.err, p.stderr.String())
		default:
		}
		resp, err := c.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}

func post(t *testing.T, port int, token, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("http://127.0.0.1:%d/", port), strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestBinaryServesStopsAndRestarts(t *testing.T) {
	bin := buildBinary(t)
	root := filepath.Join(t.TempDir(), "data")
	ports := freePorts(t, 5)
	api, hub, hubLeaf, cluster, leaf := ports[0], ports[1], ports[2], ports[3], ports[4]
	base := append(os.Environ(), "ROOTPATH="+root, "CLUSTERING_NODENAME=bin1")
	env := append(append([]string{}, base...),
		"OPERATIONSAPI_NETWORK_PORT="+strconv.Itoa(api),
		"CLUSTERING_HUBSERVER_NETWORK_PORT="+strconv.Itoa(hub),
		"CLUSTERING_HUBSERVER_LEAFNODES_NETWORK_PORT="+strconv.Itoa(hubLeaf),
		"CLUSTERING_HUBSERVER_CLUSTER_NETWORK_PORT="+strconv.Itoa(cluster),
		"CLUSTERING_LEAFSERVER_NETWORK_PORT="+strconv.Itoa(leaf),
	)

	p := start(t, bin, env)
	waitReady(t, p, api)

	started := logLine(p.stderr.String(), "node started")
	if started == nil {
		t.Fatalf("no 'node started' log line:\n%s", p.stderr.String())
	}
	for k, want := range map[string]int{"operations_api_port": api, "hub_port": hub, "hub_leafnodes_port": hubLeaf, "clustering_port": cluster, "leaf_port": leaf} {
		if got, _ := started[k].(float64); int(got) != want {
			t.Errorf("log %s = %v, want %d", k, started[k], want)
		}
	}

	// The generated secrets: kept under rootPath (0600). The operator's is
	// announced once on stdout as a nats context command; the cluster
	// password, which only nodes hold, never appears; neither is logged.
	secret := func(name string) string {
		f := filepath.Join(root, name)
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Fatalf("%s has mode %v", f, st.Mode().Perm())
		}
		raw, _ := os.ReadFile(f)
		return strings.TrimSpace(string(raw))
	}
	password, clusterPassword := secret("operator-password"), secret("cluster-password")
	if password == clusterPassword {
		t.Fatal("the operator's password is the cluster password")
	}
	wantHint := fmt.Sprintf("nats context save bin1 --server nats://127.0.0.1:%d --user operator --password %s --select", leaf, password)
	if !strings.Contains(p.stdout.String(), wantHint) {
		t.Fatalf("stdout lacks %q:\n%s", wantHint, p.stdout.String())
	}
	if strings.Contains(p.stderr.String(), password) || strings.Contains(p.stderr.String(), clusterPassword) || strings.Contains(p.stdout.String(), clusterPassword) {
		t.Fatal("a password is in the log, or the cluster password on stdout")
	}

	// clusterd token mints a token the running node trusts.
	tokCmd := exec.Command(bin, "token", "--role", "super_user", "--user", "admin", "--ttl", "1h")
	tokCmd.Env = env
	out, err := tokCmd.Output()
	if err != nil {
		t.Fatalf("clusterd token: %v", err)
	}
	tok := strings.TrimSpace(string(out))
	if strings.Count(tok, ".") != 2 {
		t.Fatalf("clusterd token printed %q", out)
	}

	status, body := post(t, api, tok, `{"operation":"cluster_get_routes"}`)
	if status != 200 || body != `{"hub":[],"leaf":[]}` {
		t.Fatalf("POST cluster_get_routes: %d %s", status, body)
	}
	status, body = post(t, api, tok, `{"operation":"cluster_set_routes","server":"leaf","routes":[{"host":"127.0.0.1","port":"1"}]}`)
	if status != 200 || body != `{"message":"cluster routes successfully set","set":[{"host":"127.0.0.1","port":1}],"skipped":[]}` {
		t.Fatalf("POST cluster_set_routes: %d %s", status, body)
	}
	if status, body := post(t, api, "", `{"operation":"cluster_get_routes"}`); status != 401 {
		t.Fatalf("POST without token: %d %s", status, body)
	}

	// The same over NATS as the operator on the leaf port. The
	// route change just made reloads the servers, which may refuse a
	// connection made at that moment once: connect as README tells clients
	// to, retrying.
	nc, err := nats.Connect(fmt.Sprintf("nats://127.0.0.1:%d", leaf), nats.UserInfo("operator", password),
		nats.RetryOnFailedConnect(true), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	msg := nats.NewMsg("ops.cluster.cluster_get_routes")
	msg.Data = []byte("{}")
	msg.Header.Set("Authorization", "Bearer "+tok)
	resp, err := nc.RequestMsg(msg, 5*time.Second)
	nc.Close()
	if err != nil {
		t.Fatalf("NATS cluster_get_routes: %v", err)
	}
	if string(resp.Data) != `{"hub":[],"leaf":[{"host":"127.0.0.1","port":1}]}` {
		t.Fatalf("NATS cluster_get_routes: %s", resp.Data)
	}

	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit code %d after SIGTERM; stderr:\n%s", code, p.stderr.String())
	}
	if logLine(p.stderr.String(), "node stopped") == nil {
		t.Fatalf("no 'node stopped' log line:\n%s", p.stderr.String())
	}

	// Second run on the same rootPath, every port 0: the node logs the ports
	// it took, keeps its routes, password and issuer key, and does not print
	// the password again.
	env0 := append(append([]string{}, base...),
		"OPERATIONSAPI_NETWORK_PORT=0", "CLUSTERING_HUBSERVER_NETWORK_PORT=0", "CLUSTERING_HUBSERVER_LEAFNODES_NETWORK_PORT=0",
		"CLUSTERING_HUBSERVER_CLUSTER_NETWORK_PORT=0", "CLUSTERING_LEAFSERVER_NETWORK_PORT=0")
	p2 := start(t, bin, env0, "--log-format", "json")
	var line map[string]any
	nodetest.Eventually(t, 30*time.Second, "'node started' with the ports taken", func() bool {
		line = logLine(p2.stderr.String(), "node started")
		return line != nil
	})
	api2 := int(line["operations_api_port"].(float64))
	for _, k := range []string{"operations_api_port", "hub_port", "hub_leafnodes_port", "clustering_port", "leaf_port"} {
		if v, _ := line[k].(float64); v == 0 {
			t.Errorf("log %s = %v, want the port taken", k, line[k])
		}
	}
	waitReady(t, p2, api2)
	status, body = post(t, api2, tok, `{"operation":"cluster_get_routes"}`)
	if status != 200 || body != `{"hub":[],"leaf":[{"host":"127.0.0.1","port":1}]}` {
		t.Fatalf("after restart: %d %s", status, body)
	}
	if strings.Contains(p2.stdout.String(), "nats context save") {
		t.Fatalf("the password hint was printed again:\n%s", p2.stdout.String())
	}
	if code := p2.stop(t, syscall.SIGINT); code != 0 {
		t.Fatalf("exit code %d after SIGINT; stderr:\n%s", code, p2.stderr.String())
	}
	if logLine(p2.stderr.String(), "node stopped") == nil {
		t.Fatalf("no 'node stopped' after SIGINT:\n%s", p2.stderr.String())
	}
}

func TestBinaryRefusesInvalidConfig(t *testing.T) {
	bin := buildBinary(t)
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "ROOTPATH="+t.TempDir(), "CLUSTERING_NODENAME=a.b", "OPERATIONSAPI_NETWORK_PORT=70000")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("want exit 1, got %v\n%s", err, out)
	}
	want := `clusterd: invalid configuration: clustering.nodeName "a.b" must not contain whitespace, '.', ',', '*' or '>'; operationsApi.network.port must be between 0 and 65535 (or -1 to turn it off), got 70000` + "\n"
	if string(out) != want {
		t.Fatalf("output\n got: %s\nwant: %s", out, want)
	}

	cmd = exec.Command(bin, "token", "--role", "super_user")
	cmd.Env = append(os.Environ(), "ROOTPATH="+t.TempDir())
	out, err = cmd.CombinedOutput()
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || string(out) != "clusterd: token: --user is required\n" {
		t.Fatalf("token without --user: %v %s", err, out)
	}
}
