package events

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clusterd/clusterd/auth"
	"go.uber.org/zap"
)

// memUsers is a Directory of a few users (the node keeps them in Badger).
type memUsers map[string]auth.User

func (m memUsers) User(name string) (auth.User, bool, error) { u, ok := m[name]; return u, ok, nil }
func (m memUsers) RoleGrantsSuper(role string) (bool, error) { return role == auth.SuperUser, nil }

type pki struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	dir  string
}

func newPKI(t *testing.T, name string) pki {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	p := pki{cert: cert, key: key, dir: t.TempDir()}
	writePEM(t, filepath.Join(p.dir, "ca.pem"), "CERTIFICATE", der)
	return p
}

func writePEM(t *testing.T, file, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func (p pki) caFile() string { return filepath.Join(p.dir, "ca.pem") }

// issue writes a certificate for cn (server and client use, 127.0.0.1).
func (p pki) issue(t *testing.T, cn string) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.cert, &key.PublicKey, p.key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalPKCS8PrivateKey(key)
	writePEM(t, filepath.Join(p.dir, cn+".pem"), "CERTIFICATE", der)
	writePEM(t, filepath.Join(p.dir, cn+"-key.pem"), "PRIVATE KEY", kb)
	c, err := tls.LoadX509KeyPair(filepath.Join(p.dir, cn+".pem"), filepath.Join(p.dir, cn+"-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type readyHealth struct{}

func (readyHealth) Ready() (bool, string) { return true, "" }

// A verified client certificate authenticates the request as a stored user
// (its common name, or the configured user), with that user's role; a user
// that does not exist or is inactive is refused; the Authorization header
// wins over the certificate.
func TestClientCertificateAuthenticatesAsAStoredUser(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	users := memUsers{
		"admin": {Name: "admin", Role: auth.SuperUser, Super: true, Active: true, ID: "1"},
		"bob":   {Name: "bob", Role: "cluster_user", Active: true, ID: "2"},
		"gone":  {Name: "gone", Role: auth.SuperUser, Super: true, Active: false, ID: "3"},
	}
	authn := auth.NewAuthenticator(auth.NewVerifier(auth.Limits{}, key.Public().(ed25519.PublicKey)), users)
	d, err := NewDispatcher([]Operation{{Name: "whoami", Handler: "whoAmI", Run: func(_ context.Context, c Caller, _ []byte) (any, error) {
		return map[string]string{"user": c.User, "role": c.Role}, nil
	}}}, authn, NewMetrics("test"), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })

	ca := newPKI(t, "ca")
	ca.issue(t, "server")
	serve := func(clients ClientCerts) string {
		certs, err := NewCertReloader(TLSFiles{Certificate: filepath.Join(ca.dir, "server.pem"), PrivateKey: filepath.Join(ca.dir, "server-key.pem"),
			CertificateAuthority: ca.caFile()}, clients, nil)
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: WithClientCertUsers(HTTPHandler(d, NewMetrics("test"), readyHealth{}), clients)}
		go func() { _ = srv.Serve(tls.NewListener(ln, certs.TLSConfig())) }()
		t.Cleanup(func() { _ = srv.Close() })
		return "https://" + ln.Addr().String() + "/"
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	call := func(url string, cert *tls.Certificate, header string) (int, string) {
		t.Helper()
		cfg := &tls.Config{RootCAs: pool}
		if cert != nil {
			cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
		}
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(`{"operation":"whoami"}`))
		if header != "" {
			req.Header.Set("Authorization", header)
		}
		resp, err := (&http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}).Do(req)
		if err != nil {
			t.Fatalf("request: %v", err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	admin, bob, gone, nobody := ca.issue(t, "admin"), ca.issue(t, "bob"), ca.issue(t, "gone"), ca.issue(t, "nobody")
	tok, err := auth.Mint(key, "tokenuser", auth.SuperUser, time.Minute)
	if err != nil {
		t.Fatal(err)
	}

	byCN := serve(ClientCerts{Enabled: true})
	for _, c := range []struct {
		name   string
		cert   *tls.Certificate
		header string
		status int
		body   string
	}{
		{"admin's certificate", &admin, "", 200, `{"role":"super_user","user":"admin"}`},
		{"bob's certificate: bob's role", &bob, "", 403, `Operation 'whoAmI' is restricted to 'super_user' roles`},
		{"an inactive user", &gone, "", 401, `{"error":"Login failed: the client certificate's user 'gone' is not an active user"}`},
		{"no such user", &nobody, "", 401, `{"error":"Login failed: the client certificate's user 'nobody' is not an active user"}`},
		{"no certificate", nil, "", 401, `{"error":"Must login"}`},
		{"the header wins", &bob, "Bearer " + tok, 200, `{"role":"super_user","user":"tokenuser"}`},
		{"a bad header is not rescued by the certificate", &admin, "Bearer junk", 401, `Unauthorized: token is malformed`},
	} {
		status, body := call(byCN, c.cert, c.header)
		if status != c.status || !strings.Contains(body, c.body) {
			t.Errorf("%s: %d %s, want %d %s", c.name, status, body, c.status, c.body)
		}
	}

	// mtls.user: every verified certificate is that user, whatever its CN.
	asAdmin := serve(ClientCerts{Enabled: true, User: "admin"})
	if status, body := call(asAdmin, &nobody, ""); status != 200 || body != `{"role":"super_user","user":"admin"}` {
		t.Fatalf("mtls.user admin: %d %s", status, body)
	}
	// Without mtls, a certificate is not asked for and names nobody.
	plain := serve(ClientCerts{})
	if status, body := call(plain, &admin, ""); status != 401 || body != `{"error":"Must login"}` {
		t.Fatalf("certificate without mtls: %d %s", status, body)
	}
	// A certificate of another CA fails the handshake.
	other := newPKI(t, "other").issue(t, "admin")
	cfg := &tls.Config{RootCAs: pool, GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &other, nil }}
	_, err = (&http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}).Post(byCN, "application/json", strings.NewReader(`{"operation":"whoami"}`))
	var certErr *tls.CertificateVerificationError
	if err == nil || errors.As(err, &certErr) {
		t.Fatalf("another CA's client certificate: %v, want the server to refuse it", err)
	}
}
