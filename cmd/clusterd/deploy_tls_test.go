package main

import (
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
	"strings"
	"testing"
	"time"

	"github.com/clusterd/clusterd/node"
)

// testPKI writes a CA and a server certificate for localhost/127.0.0.1 it
// signed into dir, as tls.crt, tls.key and ca.crt.
func testPKI(t *testing.T, dir string) (cert, key, ca string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "clusterd"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &k.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalPKCS8PrivateKey(k)
	cert, key, ca = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"), filepath.Join(dir, "ca.crt")
	for f, b := range map[string][]byte{
		cert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		key:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}),
		ca:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
	} {
		if err := os.WriteFile(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return cert, key, ca
}

// withTLSStandIns returns sc's environment plus overrides that point the
// HTTPS certificate files, which a pod gets from a Secret, at test files.
// Files a config names must otherwise exist (none do on this machine).
func withTLSStandIns(t *testing.T, sc shippedConfig) map[string]string {
	t.Helper()
	env := map[string]string{}
	for k, v := range sc.env {
		env[k] = v
	}
	cfg, err := node.Load(sc.file, mapEnv(env))
	if err != nil {
		t.Fatalf("%s: %v", sc.name, err)
	}
	tlsc := cfg.OperationsTLS()
	if cfg.OperationsAPI.Network.SecurePort == node.Off || tlsc.Certificate == "" {
		return env
	}
	if sc.pod == nil {
		t.Fatalf("%s names TLS files (%s), which a test cannot provide", sc.name, tlsc.Certificate)
	}
	cert, key, ca := testPKI(t, t.TempDir())
	prefix := "TLS_"
	if cfg.OperationsAPI.TLS.Certificate != "" {
		prefix = "OPERATIONSAPI_TLS_"
	}
	env[prefix+"CERTIFICATE"], env[prefix+"PRIVATEKEY"] = cert, key
	if tlsc.CertificateAuthority != "" {
		env[prefix+"CERTIFICATEAUTHORITY"] = ca
	}
	return env
}

func mapEnv(m map[string]string) []string {
	out := os.Environ()
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	return out
}

// checkOperationsAPIExample: the Kubernetes example serves the operations
// API over HTTPS only, with certificate files mounted from a Secret as a
// directory (a subPath mount never sees a rotated Secret). It returns the
// port and scheme the probes must use.
func checkOperationsAPIExample(t *testing.T, cfg node.Config, spec any, c map[string]any) (int, string) {
	t.Helper()
	nw := cfg.OperationsAPI.Network
	if nw.Port != node.Off || nw.SecurePort <= 0 {
		t.Errorf("the Kubernetes example must serve HTTPS only: port %d, securePort %d", nw.Port, nw.SecurePort)
	}
	tlsc := cfg.OperationsTLS()
	for key, file := range map[string]string{"certificate": tlsc.Certificate, "privateKey": tlsc.PrivateKey, "certificateAuthority": tlsc.CertificateAuthority} {
		if file == "" {
			t.Errorf("tls.%s is not set", key)
			continue
		}
		if src := mountedFrom(spec, c, file); !strings.HasPrefix(src, "secret:") {
			t.Errorf("tls.%s %s is not mounted from a Secret (%q)", key, file, src)
		}
		for _, m := range list(c, "volumeMounts") {
			if strings.HasPrefix(file, strings.TrimSuffix(str(m, "mountPath"), "/")+"/") && str(m, "subPath") != "" {
				t.Errorf("tls.%s %s is mounted with subPath: Secret rotations would not reach the pod", key, file)
			}
		}
	}
	return nw.SecurePort, "HTTPS"
}

// The Kubernetes example's node, started with its pod's config (ports
// moved to free ones, certificate files from a test CA), answers the
// probes as the kubelet sends them: HTTPS without verifying the
// certificate. Plain HTTP on that port gets a 400.
func TestKubernetesProbesAnswerOverHTTPS(t *testing.T) {
	for _, sc := range shippedConfigs(t) {
		if sc.pod == nil {
			continue
		}
		env := withTLSStandIns(t, sc)
		env["ROOTPATH"] = t.TempDir()
		for _, k := range []string{"OPERATIONSAPI_NETWORK_SECUREPORT", "CLUSTERING_HUBSERVER_NETWORK_PORT", "CLUSTERING_HUBSERVER_LEAFNODES_NETWORK_PORT",
			"CLUSTERING_HUBSERVER_CLUSTER_NETWORK_PORT", "CLUSTERING_LEAFSERVER_NETWORK_PORT"} {
			env[k] = "0"
		}
		env["CLUSTERING_HUBSERVER_CLUSTER_NETWORK_ROUTES"] = "[]" // the other pods do not exist here
		cfg, err := node.Load(sc.file, mapEnv(env))
		if err != nil {
			t.Fatal(err)
		}
		n, err := node.Start(t.Context(), cfg, node.Options{})
		if err != nil {
			t.Fatalf("start the example's node: %v", err)
		}
		t.Cleanup(func() { _ = n.Close() })
		kubelet := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
		base := fmt.Sprintf("https://127.0.0.1:%d", n.HTTPSPort())
		for _, path := range []string{"/livez", "/readyz"} {
			deadline := time.Now().Add(30 * time.Second)
			for {
				resp, err := kubelet.Get(base + path)
				if err == nil {
					resp.Body.Close()
					if resp.StatusCode == 200 {
						break
					}
				}
				if time.Now().After(deadline) {
					t.Fatalf("probe %s: %v", path, err)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(fmt.Sprintf("http://127.0.0.1:%d/livez", n.HTTPSPort()))
		if err == nil {
			resp.Body.Close()
		}
		if err != nil || resp.StatusCode != 400 {
			t.Fatalf("plain HTTP on the HTTPS port: %v %v", resp, err)
		}
	}
}

// deploy/README.md's openssl recipe for the TLS Secret makes files
// clusterd serves, for the names the pods are reached by.
func TestTLSSecretRecipeWorks(t *testing.T) {
	for _, tool := range []string{"openssl", "bash"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skip(tool + " not installed")
		}
	}
	b, err := os.ReadFile(filepath.Join(deployDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)<!-- tls secret -->\\s*```sh\n(.*?)```").FindSubmatch(b)
	if m == nil {
		t.Fatal("no <!-- tls secret --> block in deploy/README.md")
	}
	dir := t.TempDir()
	var script []string
	for _, line := range strings.Split(string(m[1]), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "kubectl") {
			script = append(script, line)
		}
	}
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", strings.Join(script, "\n"))
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("recipe: %v\n%s", err, out)
	}
	cfg := node.Default()
	cfg.RootPath = t.TempDir()
	cfg.Clustering.NodeName = "app-0"
	cfg.Clustering.Password = "secret"
	cfg.OperationsAPI.Network.Port, cfg.OperationsAPI.Network.SecurePort = node.Off, 0
	cfg.Clustering.HubServer.Network.Port, cfg.Clustering.HubServer.LeafNodes.Network.Port = 0, 0
	cfg.Clustering.HubServer.Cluster.Network.Port, cfg.Clustering.LeafServer.Network.Port = 0, 0
	cfg.TLS = node.TLS{Certificate: filepath.Join(dir, "tls.crt"), PrivateKey: filepath.Join(dir, "tls.key"), CertificateAuthority: filepath.Join(dir, "ca.crt")}
	if err := cfg.Check(); err != nil {
		t.Fatal(err)
	}
	n, err := node.Start(t.Context(), cfg, node.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	pem, err := os.ReadFile(cfg.TLS.CertificateAuthority)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	// The app on localhost, and a peer pod by its stable DNS name.
	for _, name := range []string{"127.0.0.1", "localhost", "app-1.app-mesh", "app-2.app-mesh.default.svc.cluster.local"} {
		conn, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", n.HTTPSPort()), &tls.Config{RootCAs: pool, ServerName: name})
		if err != nil {
			t.Fatalf("as %s: %v", name, err)
		}
		conn.Close()
	}
}
