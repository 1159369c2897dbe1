package bench

import (
	"bufio"
	"crypto/ed25519"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/clusterd/clusterd/auth"
	"github.com/clusterd/clusterd/node"
	"github.com/clusterd/clusterd/topology"
	"github.com/nats-io/nats.go"
	"go.uber.org/zap"
	"gopkg.in/yaml.v3"
)

// childEnv names the role of a process clusterbench re-executes itself as.
const childEnv = "CLUSTERBENCH_CHILD"

// IsChild says whether this process was started by Run as a helper
// process; main (and a test binary's TestMain) then calls RunChild instead.
func IsChild() bool { return os.Getenv(childEnv) != "" }

// RunChild runs the helper role: "servers" starts a node's hub and leaf
// servers alone (the memory floor), prints "ready" and waits for SIGTERM.
func RunChild() {
	switch os.Getenv(childEnv) {
	case "servers":
		dir := os.Getenv("CLUSTERBENCH_DIR")
		s, err := topology.StartServers(topology.ServerOptions{NodeName: "floor", Host: "127.0.0.1", ClusterName: "clusterd",
			User: "cluster_user", Password: benchPassword, StoreDir: filepath.Join(dir, "jetstream"), Log: zap.NewNop()})
		if err != nil {
			fmt.Fprintln(os.Stderr, "servers:", err)
			os.Exit(1)
		}
		fmt.Println("ready")
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		<-sig
		s.Shutdown()
		os.Exit(0)
	default:
		fmt.Fprintln(os.Stderr, "unknown child role", os.Getenv(childEnv))
		os.Exit(2)
	}
}

const benchPassword = "clusterbench-secret"

// rssMB reads a process's resident set size.
func rssMB(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			if err != nil {
				return 0, err
			}
			return float64(kb) / 1024, nil
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}

// floorRSS: the memory of a process that runs a node's two servers and
// nothing else (this binary, re-executed).
func (r *runner) floorRSS() error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	dir := filepath.Join(r.dir, "rss-floor")
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), childEnv+"=servers", "CLUSTERBENCH_DIR="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		return fmt.Errorf("servers process did not start: %q %v", line, err)
	}
	time.Sleep(r.sz.settle)
	v, err := rssMB(cmd.Process.Pid)
	if err != nil {
		return err
	}
	r.set("floor.rss.servers", v)
	return nil
}

// clusterdBinary returns the clusterd binary, building ./cmd/clusterd of
// this module when none was given.
func (r *runner) clusterdBinary() (string, error) {
	if r.opts.Clusterd != "" {
		return r.opts.Clusterd, nil
	}
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..")
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return "", fmt.Errorf("cannot find the module to build clusterd (give --clusterd): %w", err)
	}
	bin := filepath.Join(r.dir, "clusterd")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/clusterd")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/clusterd: %v\n%s", err, out)
	}
	r.opts.Clusterd = bin
	return bin, nil
}

// proc is a clusterd node running as a real process.
type proc struct {
	bin  string
	cfg  node.Config
	file string
	log  string
	cmd  *exec.Cmd
	done chan error
}

func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var out []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}

// procConfig is a process node's config: fixed free ports (a restarted node
// is found where its peers' routes point), data under dir/name, the shared
// issuer key.
func procConfig(dir, name, issuerKey string, timeout time.Duration) (node.Config, error) {
	cfg := node.Default()
	cfg.Clustering.RequestTimeout = timeout
	cfg.RootPath = filepath.Join(dir, name, "data")
	cfg.Clustering.NodeName = name
	cfg.Clustering.Password = benchPassword
	cfg.Clustering.LeafServer.Operator.Password = benchPassword + "-operator"
	cfg.Auth.IssuerKeyFile = issuerKey
	cfg.Logging.Level = "warn"
	p, err := freePorts(5)
	if err != nil {
		return cfg, err
	}
	cfg.OperationsAPI.Network.Host, cfg.OperationsAPI.Network.Port = "127.0.0.1", p[0]
	cfg.Clustering.HubServer.Network = node.Network{Host: "127.0.0.1", Port: p[1]}
	cfg.Clustering.HubServer.LeafNodes.Network.Port = p[2]
	cfg.Clustering.HubServer.Cluster.Network.Port = p[3]
	cfg.Clustering.LeafServer.Network.Port = p[4]
	return cfg, nil
}

func startProc(bin string, cfg node.Config) (*proc, error) {
	p := &proc{bin: bin, cfg: cfg}
	base := filepath.Dir(cfg.RootPath)
	if err := os.MkdirAll(base, 0o700); err != nil {
		return nil, err
	}
	p.file = filepath.Join(base, "clusterd.yaml")
	p.log = filepath.Join(base, "clusterd.log")
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(p.file, b, 0o600); err != nil {
		return nil, err
	}
	return p, p.start()
}

// start runs the process and waits for /readyz.
func (p *proc) start() error {
	logf, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	p.cmd = exec.Command(p.bin, "--config", p.file)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	p.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	if err := p.cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	p.done = make(chan error, 1)
	go func() { p.done <- p.cmd.Wait(); logf.Close() }()
	url := fmt.Sprintf("http://127.0.0.1:%d/readyz", p.cfg.OperationsAPI.Network.Port)
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if resp, err := client.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		select {
		case err := <-p.done:
			b, _ := os.ReadFile(p.log)
			p.cmd = nil
			return fmt.Errorf("%s exited before ready: %v\n%s", p.cfg.Clustering.NodeName, err, tail(string(b), 2000))
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after 60s", p.cfg.Clustering.NodeName)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	p.cmd = nil
}

func (p *proc) conn() (*nats.Conn, error) {
	return nats.Connect(fmt.Sprintf("nats://127.0.0.1:%d", p.cfg.Clustering.LeafServer.Network.Port),
		nats.UserInfo(p.cfg.Clustering.LeafServer.Operator.User, p.cfg.Clustering.LeafServer.Operator.Password), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
}

func issuerKey(path string) (ed25519.PrivateKey, error) {
	k, _, err := auth.LoadOrCreateIssuerKey(path)
	return k, err
}
