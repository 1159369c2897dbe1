package node_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"github.com/nats-io/nats.go/jetstream"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/clusterd/clusterd/node"
	"github.com/clusterd/clusterd/node/nodetest"
	"github.com/clusterd/clusterd/topology"
	"github.com/nats-io/nats.go"
)

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string
}

func newCA(t *testing.T, name string) testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	file := filepath.Join(t.TempDir(), name+"-ca.pem")
	_ = os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	return testCA{cert: cert, key: key, file: file}
}

// issue writes a certificate for 127.0.0.1 (server and client use) signed by
// the CA and returns the cert and key file paths.
func (ca testCA) issue(t *testing.T, name string) (certFile, keyFile string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	kb, _ := x509.MarshalECPrivateKey(key)
	_ = os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	_ = os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return certFile, keyFile
}

func tlsConfig(t *testing.T, ca testCA, name string) node.Config {
	cfg := nodetest.Config(t, name)
	cert, key := ca.issue(t, name)
	cfg.Clustering.TLS = node.TLS{Certificate: cert, PrivateKey: key, CertificateAuthority: ca.file}
	return cfg
}

// TestTLSEverywhere: with clustering.tls set, routes, leafnodes and clients
// use TLS with the configured CA; replication works across it, a plaintext
// client is refused, and a node whose certificate comes from another CA
// cannot join the mesh.
func TestTLSEverywhere(t *testing.T) {
	ca := newCA(t, "good")
	a := nodetest.Start(t, tlsConfig(t, ca, "a"))
	b := nodetest.Start(t, tlsConfig(t, ca, "b"))
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	connect := func(n *node.Node, opts ...nats.Option) (*nats.Conn, error) {
		return nats.Connect(n.LeafURL(), append([]nats.Option{nats.UserInfo(n.OperatorUser(), n.OperatorPassword()), nats.Timeout(2 * time.Second)}, opts...)...)
	}
	if nc, err := connect(a); err == nil {
		nc.Close()
		t.Fatal("a plaintext client connected to a TLS node")
	}
	nc, err := connect(a, nats.Secure(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}))
	if err != nil {
		t.Fatalf("TLS client: %v", err)
	}
	nc.Close()

	tlsOp := func(n *node.Node, op string, body any) nodetest.Reply {
		c, err := connect(n, nats.Secure(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return nodetest.Request(t, c, "ops.cluster."+op, nodetest.SuperUser(t, n), body)
	}
	if r := tlsOp(b, "cluster_set_routes", map[string]any{"server": "hub", "routes": []any{nodetest.ClusterRoute(a)}}); r.Status != 200 {
		t.Fatalf("set routes: %s", r.Body)
	}
	nodetest.Eventually(t, 5*time.Second, "TLS mesh", func() bool { return len(a.Servers.RoutedPeers()) == 1 })
	for _, n := range []*node.Node{a, b} {
		tlsOp(n, "create_table", map[string]any{"table": "dog"})
	}
	nodetest.Eventually(t, 5*time.Second, "add_node over TLS", func() bool {
		return tlsOp(a, "add_node", map[string]any{"node_name": "b", "subscriptions": []any{sub("dog", true, true)}}).Status == 200
	})

	jsA, _ := jetstream.New(mustTLSConn(t, a))
	if _, err := jsA.Publish(context.Background(), "txn.data.dog.a", []byte("over tls")); err != nil {
		t.Fatal(err)
	}
	jsB, _ := jetstream.New(mustTLSConn(t, b))
	nodetest.Eventually(t, 10*time.Second, "transaction replicated over TLS", func() bool {
		s, err := jsB.Stream(context.Background(), "txn")
		if err != nil {
			return false
		}
		m, err := s.GetLastMsgForSubject(context.Background(), "txn.data.dog.a")
		return err == nil && string(m.Data) == "over tls"
	})

	// A node with a certificate from another CA is refused by the mesh.
	evil := nodetest.Start(t, tlsConfig(t, newCA(t, "evil"), "evil"))
	if r := nodetest.Request(t, mustTLSConn(t, evil), "ops.cluster.cluster_set_routes", nodetest.SuperUser(t, evil),
		map[string]any{"server": "hub", "routes": []any{nodetest.ClusterRoute(a)}}); r.Status != 200 {
		t.Fatalf("evil set routes: %s", r.Body)
	}
	// Wait until the route was tried and refused (a TLS link fault on
	// either end), not for a while: then it cannot have been made.
	nodetest.Eventually(t, 20*time.Second, "evil's route refused over TLS", func() bool {
		for _, n := range []*node.Node{evil, a} {
			for _, f := range n.Servers.Faults.Active() {
				if f.Kind == topology.FaultTLS {
					return true
				}
			}
		}
		return false
	})
	if peers := evil.Servers.RoutedPeers(); len(peers) != 0 {
		t.Fatalf("a node with another CA's certificate joined the mesh: %v", peers)
	}
}

// mustTLSConn connects to n with the node's own certificate pool.
func mustTLSConn(t *testing.T, n *node.Node) *nats.Conn {
	t.Helper()
	pem, err := os.ReadFile(n.Config.Clustering.TLS.CertificateAuthority)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	nc, err := nats.Connect(n.LeafURL(), nats.UserInfo(n.OperatorUser(), n.OperatorPassword()), nats.Secure(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}
