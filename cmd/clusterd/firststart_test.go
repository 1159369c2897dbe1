package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clusterd/clusterd/node/nodetest"
)

func portEnv(api, hub, hubLeaf, cluster, leaf int) []string {
	return []string{
		"OPERATIONSAPI_NETWORK_PORT=" + strconv.Itoa(api),
		"CLUSTERING_HUBSERVER_NETWORK_PORT=" + strconv.Itoa(hub),
		"CLUSTERING_HUBSERVER_LEAFNODES_NETWORK_PORT=" + strconv.Itoa(hubLeaf),
		"CLUSTERING_HUBSERVER_CLUSTER_NETWORK_PORT=" + strconv.Itoa(cluster),
		"CLUSTERING_LEAFSERVER_NETWORK_PORT=" + strconv.Itoa(leaf),
	}
}

// A first start on a port another program holds is refused at once, names
// the key and the port, prints no password hint, logs no `node stopped`,
// and leaves no rootPath (no generated password or issuer key) behind; the
// next start, on free ports, is the first start and prints the hint.
func TestPortInUseIsRefusedAtOnceAndLeavesNothing(t *testing.T) {
	bin := buildBinary(t)
	root := filepath.Join(t.TempDir(), "data")
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	leaf := held.Addr().(*net.TCPAddr).Port
	ports := freePorts(t, 4)
	env := append(append(os.Environ(), "ROOTPATH="+root, "CLUSTERING_NODENAME=busy1"), portEnv(ports[0], ports[1], ports[2], ports[3], leaf)...)

	p := start(t, bin, env)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		t.Fatalf("still running 15 s after starting on a port in use:\n%s", p.stderr.String())
	}
	var ee *exec.ExitError
	if !errors.As(p.err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("exit: %v", p.err)
	}
	want := fmt.Sprintf("clusterd: cannot start: clustering.leafServer.network.port %d on 127.0.0.1 is in use. Another clusterd node or program holds it", leaf)
	if !strings.Contains(p.stderr.String(), want) {
		t.Fatalf("stderr lacks %q:\n%s", want, p.stderr.String())
	}
	for _, bad := range []string{"node stopped", "authentication error", "generated issuer key"} {
		if strings.Contains(p.stderr.String(), bad) {
			t.Fatalf("stderr has %q:\n%s", bad, p.stderr.String())
		}
	}
	if p.stdout.String() != "" {
		t.Fatalf("stdout: %q", p.stdout.String())
	}
	if _, err := os.Stat(root); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("rootPath left behind (%v)", err)
	}

	// Once the port is free, this is the first start: the hint is printed.
	held.Close()
	p = start(t, bin, env)
	waitReady(t, p, ports[0])
	nodetest.Eventually(t, 10*time.Second, "the password hint", func() bool {
		return strings.Contains(p.stdout.String(), fmt.Sprintf("--server nats://127.0.0.1:%d", leaf))
	})
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if logLine(p.stderr.String(), "node stopped") == nil || logLine(p.stderr.String(), "shutting down")["node"] != "busy1" {
		t.Fatalf("stop logs:\n%s", p.stderr.String())
	}
}

// With port 0 the first-start hint names the port the leaf server really
// bound (not :0), and it is printed only after `node started`.
func TestFirstStartHintNamesTheRealPort(t *testing.T) {
	bin := buildBinary(t)
	root := filepath.Join(t.TempDir(), "data")
	env := append(append(os.Environ(), "ROOTPATH="+root, "CLUSTERING_NODENAME=zero1"), portEnv(0, 0, 0, 0, 0)...)
	p := start(t, bin, env)
	var stderrAtHint string
	nodetest.Eventually(t, 60*time.Second, "the password hint", func() bool {
		select {
		case <-p.done:
			t.Fatalf("exited: %v\n%s", p.err, p.stderr.String())
		default:
		}
		stderrAtHint = p.stderr.String()
		return strings.Contains(p.stdout.String(), "nats context save")
	})
	started := logLine(stderrAtHint, "node started")
	if started == nil {
		t.Fatalf("hint printed before `node started`:\n%s", stderrAtHint)
	}
	leaf := int(started["leaf_port"].(float64))
	if leaf == 0 || !strings.Contains(p.stdout.String(), fmt.Sprintf("--server nats://127.0.0.1:%d ", leaf)) {
		t.Fatalf("hint does not name leaf port %d:\n%s", leaf, p.stdout.String())
	}
	p.stop(t, syscall.SIGTERM)
}
