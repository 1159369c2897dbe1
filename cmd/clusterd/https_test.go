package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/clusterd/clusterd/node"
	"github.com/clusterd/clusterd/node/nodetest"
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

// testCA issues server and client certificates for tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string
}

func newTestCA(t *testing.T) testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "status-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	file := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return testCA{cert: c, key: key, file: file}
}

// issue writes a certificate for cn (server and client use, 127.0.0.1).
func (ca testCA) issue(t *testing.T, cn string) (certFile, keyFile string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalPKCS8PrivateKey(key)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, cn+".pem"), filepath.Join(dir, cn+"-key.pem")
	_ = os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	_ = os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600)
	return certFile, keyFile
}

// httpsNode starts a node serving HTTPS only on a free port, with its
// config written to a file (what --config reads).
func httpsNode(t *testing.T, tune func(*node.Config)) (*node.Node, string) {
	t.Helper()
	cfg := nodetest.Config(t, "n1")
	cfg.OperationsAPI.Network.Port, cfg.OperationsAPI.Network.SecurePort = node.Off, freePorts(t, 1)[0]
	if tune != nil {
		tune(&cfg)
	}
	y, err := cfg.YAML()
	if err != nil {
		t.Fatal(err)
	}
	n := nodetest.Start(t, cfg)
	return n, writeConfig(t, string(y))
}

// `clusterd status --http https://…`: trusts the CA given with --ca, or the
// one of --config's node (here its self-signed certificate); says what to
// do when the certificate is not trusted.
func TestStatusOverHTTPS(t *testing.T) {
	t.Setenv("CLUSTERD_TOKEN", "")
	n, cfgFile := httpsNode(t, nil)
	tok := nodetest.SuperUser(t, n)
	url := fmt.Sprintf("https://127.0.0.1:%d", n.HTTPSPort())
	if _, err := runStatus(t, "--http", url, "--token", tok); err == nil || !strings.Contains(err.Error(), "pass --ca with the CA file") {
		t.Fatalf("without the CA: %v", err)
	}
	caFile, _ := n.Config.SelfSignedFiles()
	for _, args := range [][]string{
		{"--http", url, "--token", tok, "--ca", caFile},
		{"--http", url, "--config", cfgFile}, // the token and the CA from the node's config
	} {
		out, err := runStatus(t, args...)
		if err != nil || !strings.Contains(out, "clusterd status of n1 at ") {
			t.Fatalf("status %v: %v\n%s", args, err, out)
		}
	}
	if _, err := runStatus(t, "--http", strings.Replace(url, "https:", "http:", 1), "--token", tok, "--ca", caFile); err == nil ||
		!strings.Contains(err.Error(), "--ca, --cert and --key are for HTTPS") {
		t.Fatalf("--ca with http://: %v", err)
	}
}

// With operationsApi.network.mtls, a client certificate stands in for the
// token: it authenticates as the stored user its common name names.
func TestStatusOverHTTPSWithAClientCertificate(t *testing.T) {
	t.Setenv("CLUSTERD_TOKEN", "")
	t.Chdir(t.TempDir()) // no ./clusterd-data issuer key to sign a token with
	ca := newTestCA(t)
	n, _ := httpsNode(t, func(c *node.Config) {
		cert, key := ca.issue(t, "server")
		c.TLS = node.TLS{Certificate: cert, PrivateKey: key, CertificateAuthority: ca.file}
		c.OperationsAPI.Network.MTLS = node.MTLS{Enabled: true, Required: true}
	})
	url := fmt.Sprintf("https://127.0.0.1:%d", n.HTTPSPort())
	adminCert, adminKey := ca.issue(t, "admin") // the node's first-start super_user
	out, err := runStatus(t, "--http", url, "--ca", ca.file, "--cert", adminCert, "--key", adminKey)
	if err != nil || !strings.Contains(out, "clusterd status of n1 at ") {
		t.Fatalf("status with a client certificate: %v\n%s", err, out)
	}
	if _, err := runStatus(t, "--http", url, "--ca", ca.file, "--token", nodetest.SuperUser(t, n)); err == nil || !strings.Contains(err.Error(), "pass --cert and --key") {
		t.Fatalf("status without the required client certificate: %v", err)
	}
	if _, err := runStatus(t, "--http", url, "--ca", ca.file, "--cert", adminCert); err == nil || !strings.Contains(err.Error(), "--cert and --key go together") {
		t.Fatalf("--cert without --key: %v", err)
	}
}
