package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
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

// The clusterd binary serving HTTPS only, on 0.0.0.0, with no certificate
// configured: it generates the self-signed pair, prints how to trust it,
// logs its fingerprint, answers over HTTPS (and refuses plain HTTP on that
// port), stops cleanly on SIGTERM, and serves the same certificate after a
// restart.
func TestBinaryServesHTTPSAndKeepsItsCertificate(t *testing.T) {
	bin := buildBinary(t)
	root := filepath.Join(t.TempDir(), "data")
	ports := freePorts(t, 5)
	env := append(os.Environ(), "ROOTPATH="+root, "CLUSTERING_NODENAME=bin1",
		"OPERATIONSAPI_NETWORK_HOST=0.0.0.0", "OPERATIONSAPI_NETWORK_PORT=-1", "OPERATIONSAPI_NETWORK_SECUREPORT="+strconv.Itoa(ports[0]),
		"CLUSTERING_HUBSERVER_NETWORK_PORT="+strconv.Itoa(ports[1]),
		"CLUSTERING_HUBSERVER_LEAFNODES_NETWORK_PORT="+strconv.Itoa(ports[2]),
		"CLUSTERING_HUBSERVER_CLUSTER_NETWORK_PORT="+strconv.Itoa(ports[3]),
		"CLUSTERING_LEAFSERVER_NETWORK_PORT="+strconv.Itoa(ports[4]),
	)
	caFile := filepath.Join(root, "keys", "certificate.pem")
	url := fmt.Sprintf("https://127.0.0.1:%d", ports[0])
	ready := func(p *proc) {
		t.Helper()
		nodetest.Eventually(t, 30*time.Second, "/readyz over HTTPS", func() bool {
			select {
			case <-p.done:
				t.Fatalf("clusterd exited early: %v\nstderr:\n%s", p.err, p.stderr.String())
			default:
			}
			if _, err := os.Stat(caFile); err != nil {
				return false
			}
			resp, err := (&http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: certPool(t, caFile)}}}).Get(url + "/readyz")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == 200
		})
	}
	p := start(t, bin, env)
	ready(p)
	logged := logLine(p.stderr.String(), "operations API certificate")
	if logged == nil || logged["self_signed"] != true {
		t.Fatalf("no certificate log line:\n%s", p.stderr.String())
	}
	fp, _ := logged["sha256"].(string)
	want := fmt.Sprintf("SHA-256 %s). Clients trust it with:\n  curl --cacert %s %s/readyz\n", fp, caFile, url)
	nodetest.Eventually(t, 10*time.Second, "the first-start hint on stdout", func() bool { return fp != "" && strings.Contains(p.stdout.String(), want) })
	if started := logLine(p.stderr.String(), "node started"); started == nil || started["operations_api_port"] != float64(0) || started["operations_api_secure_port"] != float64(ports[0]) {
		t.Fatalf("node started: %v", started)
	}
	resp, err := http.Get(strings.Replace(url, "https:", "http:", 1) + "/livez")
	if err == nil {
		resp.Body.Close()
	}
	if err != nil || resp.StatusCode != 400 {
		t.Fatalf("plain HTTP to the HTTPS port: %v %v", resp, err)
	}
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit code %d after SIGTERM; stderr:\n%s", code, p.stderr.String())
	}

	p = start(t, bin, env)
	ready(p)
	if again := logLine(p.stderr.String(), "operations API certificate"); again == nil || again["sha256"] != fp {
		t.Fatalf("after a restart the certificate is %v, was %s", again, fp)
	}
	if strings.Contains(p.stdout.String(), "Generated a self-signed certificate") {
		t.Fatal("the restart generated a certificate again")
	}
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit code %d after SIGTERM; stderr:\n%s", code, p.stderr.String())
	}
}

func certPool(t *testing.T, file string) *x509.CertPool {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(b)
	return pool
}
