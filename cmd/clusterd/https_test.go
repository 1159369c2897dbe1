package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/clusterd/clusterd/node"
)

// `config check` shows which operations API listeners will run, and loads
// the certificate files.
func TestConfigCheckShowsListeners(t *testing.T) {
	dir := t.TempDir()
	cert, key, ca := testPKI(t, dir)
	p := writeConfig(t, fmt.Sprintf(`
rootPath: %s
tls: {certificate: %s, privateKey: %s, certificateAuthority: %s}
operationsApi:
  network: {host: 127.0.0.1, port: 19925, securePort: 19926, mtls: {required: true}}
`, filepath.Join(dir, "data"), cert, key, ca))
	out, _, err := configCheck(t, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"# operations API: http://127.0.0.1:19925 (plain HTTP, loopback only)\n",
		"# operations API: https://127.0.0.1:19926 (HTTPS (TLS 1.2+), certificate " + cert + `, subject "CN=clusterd", valid until `,
		"client certificates required, verified with " + ca,
	} {
		if !strings.Contains(out, want) {
			t.Fatalf("want %q in:\n%s", want, out)
		}
	}
	// A key that is not the certificate's: refused, naming the files.
	_, otherKey, _ := testPKI(t, t.TempDir())
	t.Setenv("TLS_PRIVATEKEY", otherKey)
	if _, _, err := configCheck(t, p, nil); err == nil || !strings.Contains(err.Error(), "operations API TLS: certificate "+cert+" and private key "+otherKey+": private key does not match public key") {
		t.Fatalf("mismatched key: %v", err)
	}
	// Plain HTTP beyond loopback: refused with the way to HTTPS.
	t.Setenv("TLS_PRIVATEKEY", key)
	t.Setenv("OPERATIONSAPI_NETWORK_HOST", "0.0.0.0")
	if _, _, err := configCheck(t, p, nil); err == nil || !strings.Contains(err.Error(), "would serve plain HTTP on 0.0.0.0") {
		t.Fatalf("clear text beyond loopback: %v", err)
	}
}

// `clusterd token --examples` (the default on a terminal) prints the token
// alone on stdout, and on stderr a curl
// command for the node's operations API that works as printed: HTTPS with
// the CA file to trust (here the node's self-signed certificate).
func TestTokenPrintsAWorkingHTTPSExample(t *testing.T) {
	ports := freePorts(t, 5)
	cfg := node.Default()
	cfg.RootPath = t.TempDir()
	cfg.Clustering.NodeName = "n1"
	cfg.Clustering.Password = "secret"
	cfg.OperationsAPI.Network.Port, cfg.OperationsAPI.Network.SecurePort = node.Off, ports[0]
	cfg.Clustering.HubServer.Network.Port, cfg.Clustering.HubServer.LeafNodes.Network.Port = ports[1], ports[2]
	cfg.Clustering.HubServer.Cluster.Network.Port, cfg.Clustering.LeafServer.Network.Port = ports[3], ports[4]
	y, err := cfg.YAML()
	if err != nil {
		t.Fatal(err)
	}
	file := writeConfig(t, string(y))
	n, err := node.Start(t.Context(), cfg, node.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()

	var stdout, stderr bytes.Buffer
	if err := run([]string{"token", "--config", file, "--user", "admin", "--examples"}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	tok := strings.TrimSpace(stdout.String())
	if strings.Count(tok, ".") != 2 || strings.Contains(tok, "\n") {
		t.Fatalf("stdout %q, want the token alone", stdout.String())
	}
	caFile, _ := cfg.SelfSignedFiles()
	m := regexp.MustCompile(`(?m)^#   (curl .*)$`).FindStringSubmatch(stderr.String())
	if m == nil || !strings.Contains(m[1], "--cacert "+caFile) || !strings.Contains(m[1], fmt.Sprintf("https://127.0.0.1:%d/", ports[0])) {
		t.Fatalf("stderr has no curl example over HTTPS with the CA file:\n%s", stderr.String())
	}
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not installed")
	}
	cmd := exec.Command("sh", "-c", m[1]+" -sS")
	cmd.Env = append(os.Environ(), "TOKEN="+tok)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"node_name":"n1"`) {
		t.Fatalf("the printed example: %v\n%s", err, out)
	}
}
