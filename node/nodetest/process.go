package nodetest

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/clusterd/clusterd/auth"
	"github.com/clusterd/clusterd/events"
	"github.com/clusterd/clusterd/node"
	"github.com/nats-io/nats.go"
	"gopkg.in/yaml.v3"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Binary builds cmd/clusterd once per test process and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "clusterd-bin-")
		if err != nil {
			buildErr = err
			return
		}
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		binPath = filepath.Join(dir, "clusterd")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/clusterd")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// Proc is a clusterd node running as a real process, for crash tests.
type Proc struct {
	Cfg     node.Config
	LogPath string
	t       testing.TB
	cmd     *exec.Cmd
	done    chan error
	fdLimit int
}

// StartProcFDLimit is StartProc with the process' file descriptor limit
// (soft and hard) set to fdLimit.
func StartProcFDLimit(t testing.TB, cfg node.Config, fdLimit int) *Proc {
	t.Helper()
	p := &Proc{Cfg: cfg, t: t, LogPath: filepath.Join(cfg.RootPath, "..", cfg.Clustering.NodeName+".log"), fdLimit: fdLimit}
	p.start()
	t.Cleanup(func() { p.Kill() })
	return p
}

// Pid is the running process' id.
func (p *Proc) Pid() int {
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// StartProc writes cfg to a file and runs the binary on it until the node is
// ready. The process is killed when the test ends.
func StartProc(t testing.TB, cfg node.Config) *Proc {
	t.Helper()
	p := &Proc{Cfg: cfg, t: t, LogPath: filepath.Join(cfg.RootPath, "..", cfg.Clustering.NodeName+".log")}
	p.start()
	t.Cleanup(func() { p.Kill() })
	return p
}

func (p *Proc) start() {
	t := p.t
	t.Helper()
	b, err := yaml.Marshal(p.Cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(p.Cfg.RootPath, "..", p.Cfg.Clustering.NodeName+".yaml")
	if err := os.WriteFile(cfgFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.OpenFile(p.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(Binary(t), "--config", cfgFile)
	if p.fdLimit > 0 {
		// ulimit -n sets the soft and the hard limit: the node cannot raise it.
		p.cmd = exec.Command("sh", "-c", fmt.Sprintf(`ulimit -n %d && exec "$0" "$@"`, p.fdLimit), Binary(t), "--config", cfgFile)
	}
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	p.cmd.Env = append(os.Environ()[:0:0], "PATH="+os.Getenv("PATH"), "HOME="+os.Getenv("HOME"))
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.done = make(chan error, 1)
	go func() { p.done <- p.cmd.Wait(); logf.Close() }()
	url := fmt.Sprintf("http://127.0.0.1:%d/readyz", p.Cfg.OperationsAPI.Network.Port)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		select {
		case err := <-p.done:
			log, _ := os.ReadFile(p.LogPath)
			t.Fatalf("%s exited before ready: %v\n%s", p.Cfg.Clustering.NodeName, err, log)
		default:
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(p.LogPath)
			t.Fatalf("%s not ready after 30s:\n%s", p.Cfg.Clustering.NodeName, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Kill sends SIGKILL and waits for the process to be gone.
func (p *Proc) Kill() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	p.cmd = nil
}

// Stop sends SIGTERM and returns the exit error (nil for a clean exit).
func (p *Proc) Stop() error {
	if p.cmd == nil {
		return errors.New("not running")
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.cmd = nil
		return err
	case <-time.After(30 * time.Second):
		p.Kill()
		return errors.New("did not stop within 30s of SIGTERM")
	}
}

// Restart starts the process again on the same config and data.
func (p *Proc) Restart() { p.t.Helper(); p.start() }

// Conn connects to the node's leaf client port as the operator user.
func (p *Proc) Conn(t testing.TB) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(fmt.Sprintf("nats://127.0.0.1:%d", p.Cfg.Clustering.LeafServer.Network.Port),
		nats.UserInfo(p.Cfg.Clustering.LeafServer.Operator.User, p.Cfg.Clustering.LeafServer.Operator.Password), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// Token mints a super_user token with the node's issuer key.
func (p *Proc) Token(t testing.TB) string {
	t.Helper()
	k, _, err := auth.LoadOrCreateIssuerKey(filepath.Join(p.Cfg.RootPath, "issuer.key"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := auth.Mint(k, "admin", events.SuperUser, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// ProcConfig is Config with fixed free ports and rootPath in its own temp
// dir (so the config and log files can sit beside it).
func ProcConfig(t testing.TB, name string) node.Config {
	cfg := FixedPorts(t, Config(t, name))
	cfg.RootPath = filepath.Join(t.TempDir(), "data")
	return cfg
}

// Signal sends sig to the process (SIGSTOP/SIGCONT freeze and thaw it).
func (p *Proc) Signal(sig syscall.Signal) {
	p.t.Helper()
	if p.cmd == nil || p.cmd.Process == nil {
		p.t.Fatal("process not running")
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
}
