package node_test

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clusterd/clusterd/events"
	"github.com/clusterd/clusterd/node"
	"github.com/clusterd/clusterd/node/nodetest"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// httpsConfig is a test node serving HTTPS only (plain HTTP off), with a
// certificate for 127.0.0.1 issued by ca.
func httpsConfig(t *testing.T, ca testCA, name string) node.Config {
	cfg := nodetest.Config(t, name)
	cfg.OperationsAPI.Network.Port = node.Off
	cfg.OperationsAPI.Network.SecurePort = 0
	cert, key := ca.issue(t, name)
	cfg.TLS = node.TLS{Certificate: cert, PrivateKey: key, CertificateAuthority: ca.file}
	return cfg
}

func pemPool(t *testing.T, file string) *x509.CertPool { return pemPoolTB(t, file) }

func pemPoolTB(t testing.TB, file string) *x509.CertPool {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatalf("%s: no certificates", file)
	}
	return pool
}

// httpsClient trusts caFile and presents the client certificate in cert/key
// when given. Every request opens a new connection, so a test sees what a
// new client would get.
func httpsClient(t *testing.T, caFile string, tweak func(*tls.Config)) *http.Client {
	t.Helper()
	cfg := &tls.Config{RootCAs: pemPool(t, caFile)}
	if tweak != nil {
		tweak(cfg)
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}}
}

func withClientCert(t *testing.T, certFile, keyFile string) func(*tls.Config) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	// Sent whatever CAs the server names (as curl does; Go's client would
	// otherwise leave out a certificate of a CA the server did not ask for).
	return func(c *tls.Config) {
		c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
	}
}

type httpReply struct {
	status int
	body   string
}

// post sends an operation to url (POST /) with an optional bearer token.
func post(c *http.Client, url, token, body string) (httpReply, error) {
	req, err := http.NewRequest(http.MethodPost, url+"/", strings.NewReader(body))
	if err != nil {
		return httpReply{}, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return do(c, req)
}

func getOver(c *http.Client, url string) (httpReply, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return httpReply{}, err
	}
	return do(c, req)
}

func do(c *http.Client, req *http.Request) (httpReply, error) {
	resp, err := c.Do(req)
	if err != nil {
		return httpReply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return httpReply{status: resp.StatusCode, body: string(b)}, err
}

func httpsURL(n *node.Node) string { return fmt.Sprintf("https://127.0.0.1:%d", n.HTTPSPort()) }

// servesEverything checks that one listener serves the health endpoints,
// the metrics and the operations.
func servesEverything(t *testing.T, c *http.Client, base, token string) {
	t.Helper()
	for path, want := range map[string]string{"/livez": "ok", "/health": "ok", "/readyz": "ok", "/metrics": "clusterd_build_info"} {
		var r httpReply
		var err error
		nodetest.Eventually(t, 30*time.Second, base+path, func() bool {
			r, err = getOver(c, base+path)
			return err == nil && r.status == 200
		})
		if !strings.Contains(r.body, want) {
			t.Fatalf("GET %s%s: %d %q, want it to contain %q", base, path, r.status, r.body, want)
		}
	}
	r, err := post(c, base, token, `{"operation":"cluster_get_routes"}`)
	if err != nil || r.status != 200 || r.body != `{"hub":[],"leaf":[]}` {
		t.Fatalf("POST %s/ cluster_get_routes: %d %q %v", base, r.status, r.body, err)
	}
}

// HTTPS with the right CA works; a client that trusts another CA, plain
// HTTP on the HTTPS port, and TLS 1.0/1.1 are refused, and nothing they
// sent runs.
func TestHTTPSServesAndRefuses(t *testing.T) {
	ca := newCA(t, "ops")
	n := nodetest.Start(t, httpsConfig(t, ca, "a"))
	if n.HTTPPort() != 0 || n.HTTPSPort() == 0 {
		t.Fatalf("ports: http %d https %d, want HTTPS only", n.HTTPPort(), n.HTTPSPort())
	}
	tok := nodetest.SuperUser(t, n)
	url := httpsURL(n)
	servesEverything(t, httpsClient(t, ca.file, nil), url, tok)
	if got := n.OperationsURL(); got != url {
		t.Fatalf("OperationsURL %s, want %s", got, url)
	}

	setRoutes := `{"operation":"cluster_set_routes","server":"hub","routes":[{"host":"10.9.9.9","port":9932}]}`
	// A client trusting another CA does not complete the handshake.
	_, err := post(httpsClient(t, newCA(t, "other").file, nil), url, tok, setRoutes)
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Fatalf("client trusting another CA: %v, want an unknown-authority error", err)
	}
	// Plain HTTP to the HTTPS port: a 400 that says so.
	r, err := post(&http.Client{Timeout: 10 * time.Second}, strings.Replace(url, "https:", "http:", 1), tok, setRoutes)
	if r.status != 400 || !strings.Contains(r.body, "HTTP request to an HTTPS server") { // the server then resets the connection
		t.Fatalf("plain HTTP to the HTTPS port: %d %q %v", r.status, r.body, err)
	}
	// TLS 1.0 and 1.1 are refused in the handshake.
	for _, v := range []uint16{tls.VersionTLS10, tls.VersionTLS11} {
		_, err := post(httpsClient(t, ca.file, func(c *tls.Config) { c.MinVersion, c.MaxVersion = v, v }), url, tok, setRoutes)
		if err == nil || !strings.Contains(err.Error(), "protocol version") {
			t.Fatalf("%s: %v, want a protocol version refusal", tls.VersionName(v), err)
		}
	}
	// TLS 1.2 is accepted.
	r, err = post(httpsClient(t, ca.file, func(c *tls.Config) { c.MaxVersion = tls.VersionTLS12 }), url, tok, `{"operation":"cluster_get_routes"}`)
	if err != nil || r.status != 200 {
		t.Fatalf("TLS 1.2: %d %q %v", r.status, r.body, err)
	}
	if got := nodetest.Routes(t, n); got != `{"hub":[],"leaf":[]}` {
		t.Fatalf("a refused request changed the routes: %s", got)
	}
}

// With both listeners on, each serves the health endpoints, the metrics
// and the operations.
func TestHTTPAndHTTPSTogether(t *testing.T) {
	ca := newCA(t, "ops")
	cfg := httpsConfig(t, ca, "a")
	cfg.OperationsAPI.Network.Port = 0
	n := nodetest.Start(t, cfg)
	if n.HTTPPort() == 0 || n.HTTPSPort() == 0 || n.HTTPPort() == n.HTTPSPort() {
		t.Fatalf("ports: http %d https %d", n.HTTPPort(), n.HTTPSPort())
	}
	tok := nodetest.SuperUser(t, n)
	servesEverything(t, &http.Client{Timeout: 10 * time.Second}, fmt.Sprintf("http://127.0.0.1:%d", n.HTTPPort()), tok)
	servesEverything(t, httpsClient(t, ca.file, nil), httpsURL(n), tok)
}

// Client certificates (operationsApi.network.mtls): optional or required,
// verified against the configured CA. A verified certificate names a user
// (its common name, or mtls.user) who is authenticated like any caller:
// a stored, active user, with that user's role; an Authorization header
// wins over the certificate.
func TestHTTPSClientCertificates(t *testing.T) {
	ca := newCA(t, "ops")
	certFor := func(cn string) func(*tls.Config) { c, k := ca.issue(t, cn); return withClientCert(t, c, k) }
	otherCert, otherKey := newCA(t, "other").issue(t, "admin")
	get := `{"operation":"cluster_get_routes"}`

	t.Run("optional", func(t *testing.T) {
		cfg := httpsConfig(t, ca, "a")
		cfg.OperationsAPI.Network.MTLS = node.MTLS{Enabled: true}
		n := nodetest.Start(t, cfg)
		tok := nodetest.SuperUser(t, n)
		url := httpsURL(n)
		op := func(body string) {
			t.Helper()
			if r, err := post(httpsClient(t, ca.file, nil), url, tok, body); err != nil || r.status != 200 {
				t.Fatalf("%s: %d %q %v", body, r.status, r.body, err)
			}
		}
		op(`{"operation":"add_user","username":"bob","password":"pw","role":"cluster_user","active":true}`)
		op(`{"operation":"add_user","username":"carl","password":"pw","role":"super_user","active":true}`)

		for _, c := range []struct {
			name   string
			client func(*tls.Config)
			token  string
			status int
			body   string
		}{
			{"no certificate, a token", nil, tok, 200, `{"hub":[],"leaf":[]}`},
			{"no certificate, no token", nil, "", 401, `{"error":"Must login"}`},
			{"the admin user's certificate", certFor("admin"), "", 200, `{"hub":[],"leaf":[]}`},
			{"a super_user's certificate", certFor("carl"), "", 200, `{"hub":[],"leaf":[]}`},
			{"a cluster_user's certificate: that user's role", certFor("bob"), "", 403, `"unauthorized_access":["Operation 'getRoutes' is restricted to 'super_user' roles"]`},
			{"a certificate naming no user", certFor("nobody"), "", 401, `{"error":"Login failed: the client certificate's user 'nobody' is not an active user"}`},
			{"the header wins over the certificate", certFor("bob"), tok, 200, `{"hub":[],"leaf":[]}`},
			{"a bad header is not rescued by the certificate", certFor("admin"), "junk", 401, `Unauthorized: token is malformed`},
		} {
			r, err := post(httpsClient(t, ca.file, c.client), url, c.token, get)
			if err != nil || r.status != c.status || !strings.Contains(r.body, c.body) {
				t.Errorf("%s: %d %q %v, want %d %s", c.name, r.status, r.body, err, c.status, c.body)
			}
		}
		// create_authentication_tokens without credentials in the body:
		// the certificate's user gets the tokens.
		r, err := post(httpsClient(t, ca.file, certFor("carl")), url, "", `{"operation":"create_authentication_tokens"}`)
		var toks struct {
			Op string `json:"operation_token"`
		}
		if err != nil || r.status != 200 || json.Unmarshal([]byte(r.body), &toks) != nil || toks.Op == "" {
			t.Fatalf("create_authentication_tokens with a certificate: %d %q %v", r.status, r.body, err)
		}
		if r, err := post(httpsClient(t, ca.file, nil), url, toks.Op, get); err != nil || r.status != 200 {
			t.Fatalf("the certificate user's operation token: %d %q %v", r.status, r.body, err)
		}
		if r, err := post(httpsClient(t, ca.file, certFor("nobody")), url, "", `{"operation":"create_authentication_tokens"}`); err != nil || r.status != 401 {
			t.Fatalf("create_authentication_tokens with a certificate naming no user: %d %q %v", r.status, r.body, err)
		}
		// A deactivated or dropped user's certificate stops working at once.
		op(`{"operation":"alter_user","username":"carl","active":false}`)
		if r, err := post(httpsClient(t, ca.file, certFor("carl")), url, "", get); err != nil || r.status != 401 {
			t.Fatalf("deactivated user's certificate: %d %q %v", r.status, r.body, err)
		}
		op(`{"operation":"drop_user","username":"bob"}`)
		if r, err := post(httpsClient(t, ca.file, certFor("bob")), url, tok, get); err != nil || r.status != 200 {
			t.Fatalf("dropped user's certificate with a token: %d %q %v", r.status, r.body, err)
		}
		if r, err := post(httpsClient(t, ca.file, certFor("bob")), url, "", get); err != nil || r.status != 401 {
			t.Fatalf("dropped user's certificate: %d %q %v", r.status, r.body, err)
		}
		// A certificate from another CA fails the handshake, token or not.
		if _, err := post(httpsClient(t, ca.file, withClientCert(t, otherCert, otherKey)), url, tok, get); err == nil {
			t.Fatal("a client certificate from another CA was accepted")
		}
	})

	t.Run("required", func(t *testing.T) {
		cfg := httpsConfig(t, ca, "b")
		cfg.OperationsAPI.Network.MTLS = node.MTLS{Enabled: true, Required: true, User: "ops-robot"}
		n := nodetest.Start(t, cfg)
		tok := nodetest.SuperUser(t, n)
		url := httpsURL(n)
		// No certificate: refused in the handshake, even with a valid token
		// and for the health endpoints.
		if _, err := post(httpsClient(t, ca.file, nil), url, tok, get); err == nil || !strings.Contains(err.Error(), "certificate required") {
			t.Fatalf("no certificate: %v, want the handshake refused (certificate required)", err)
		}
		if _, err := getOver(httpsClient(t, ca.file, nil), url+"/livez"); err == nil {
			t.Fatal("/livez answered without a client certificate")
		}
		if _, err := post(httpsClient(t, ca.file, withClientCert(t, otherCert, otherKey)), url, tok, get); err == nil {
			t.Fatal("a client certificate from another CA was accepted")
		}
		// mtls.user names the user, whatever the certificate's CN: refused
		// until that user exists, then served with its role.
		r, err := post(httpsClient(t, ca.file, certFor("admin")), url, "", get)
		if err != nil || r.status != 401 || !strings.Contains(r.body, "the client certificate's user 'ops-robot' is not an active user") {
			t.Fatalf("certificate of a user that does not exist: %d %q %v", r.status, r.body, err)
		}
		if r, err := post(httpsClient(t, ca.file, certFor("admin")), url, tok,
			`{"operation":"add_user","username":"ops-robot","password":"pw","role":"super_user","active":true}`); err != nil || r.status != 200 {
			t.Fatalf("add_user: %d %q %v", r.status, r.body, err)
		}
		if r, err := post(httpsClient(t, ca.file, certFor("admin")), url, "", get); err != nil || r.status != 200 {
			t.Fatalf("certificate as ops-robot: %d %q %v", r.status, r.body, err)
		}
	})
}

// servedCN is the common name of the certificate a new connection to addr
// is served.
func servedCN(t *testing.T, addr string, pool *x509.CertPool) (string, error) {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{RootCAs: pool})
	if err != nil {
		return "", err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].Subject.CommonName, nil
}

// Replacing the certificate files while the node runs switches new
// connections to the new certificate; files that do not load are logged and
// the last good certificate keeps serving; the client CA rotates too.
func TestHTTPSCertificateRotation(t *testing.T) {
	ca := newCA(t, "ops")
	cfg := httpsConfig(t, ca, "first")
	n, logs := nodetest.StartLogged(t, cfg)
	addr := fmt.Sprintf("127.0.0.1:%d", n.HTTPSPort())
	pool := pemPool(t, ca.file)
	if cn, err := servedCN(t, addr, pool); err != nil || cn != "first" {
		t.Fatalf("served %q %v, want first", cn, err)
	}
	replace := func(dst, src string) {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// Rotate: key first, then the certificate (a moment where they do not
	// match is fine: the old pair keeps serving until both are there).
	secondCert, secondKey := ca.issue(t, "second")
	replace(cfg.TLS.PrivateKey, secondKey)
	replace(cfg.TLS.Certificate, secondCert)
	nodetest.Eventually(t, 15*time.Second, "the rotated certificate is served", func() bool {
		cn, err := servedCN(t, addr, pool)
		return err == nil && cn == "second"
	})
	if logs.FilterMessage("operations API certificate reloaded").Len() == 0 {
		t.Fatal("no reload logged")
	}

	// A broken certificate file: logged, the last good one keeps serving.
	if err := os.WriteFile(cfg.TLS.Certificate, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	nodetest.Eventually(t, 15*time.Second, "the broken file is reported", func() bool {
		_, _ = servedCN(t, addr, pool) // a handshake triggers the check
		return logs.FilterMessage("operations API certificate files changed but do not load; still serving the previous certificate").Len() > 0
	})
	for range 3 {
		if cn, err := servedCN(t, addr, pool); err != nil || cn != "second" {
			t.Fatalf("after a broken file: served %q %v, want the last good certificate", cn, err)
		}
	}

	// A new CA (server certificate from it, and the CA file): clients of
	// the new CA get in.
	ca2 := newCA(t, "ops2")
	thirdCert, thirdKey := ca2.issue(t, "third")
	replace(cfg.TLS.PrivateKey, thirdKey)
	replace(cfg.TLS.Certificate, thirdCert)
	replace(cfg.TLS.CertificateAuthority, ca2.file)
	pool2 := pemPool(t, ca2.file)
	nodetest.Eventually(t, 15*time.Second, "the certificate of the new CA is served", func() bool {
		cn, err := servedCN(t, addr, pool2)
		return err == nil && cn == "third"
	})
	if _, err := servedCN(t, addr, pool); err == nil {
		t.Fatal("a client of the old CA still trusts the new certificate")
	}
	// /metrics: the reloads and the served certificate's expiry.
	r, err := getOver(httpsClient(t, ca2.file, nil), "https://"+addr+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	leaf := n.OperationsCertificate()
	for _, want := range []string{
		`clusterd_operations_api_certificate_reloads_total{result="ok"} 2`,
		`clusterd_operations_api_certificate_reloads_total{result="failed"} 1`,
		fmt.Sprintf("clusterd_operations_api_certificate_expiry_timestamp_seconds %s", strconv.FormatFloat(float64(leaf.NotAfter.Unix()), 'g', -1, 64)),
	} {
		if !strings.Contains(r.body, want) {
			t.Fatalf("/metrics lacks %q", want)
		}
	}
	if leaf.Subject.CommonName != "third" {
		t.Fatalf("OperationsCertificate %s", leaf.Subject)
	}
}

// The client CA is re-read too: after the CA file changes, certificates of
// the new CA are accepted and those of the old one refused.
func TestHTTPSClientCARotation(t *testing.T) {
	serverCA, oldClients, newClients := newCA(t, "server"), newCA(t, "clients-old"), newCA(t, "clients-new")
	cfg := httpsConfig(t, serverCA, "a")
	caFile := filepath.Join(t.TempDir(), "clients.pem")
	b, _ := os.ReadFile(oldClients.file)
	if err := os.WriteFile(caFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.OperationsAPI.TLS.CertificateAuthority = caFile
	cfg.OperationsAPI.Network.MTLS = node.MTLS{Enabled: true, Required: true}
	n := nodetest.Start(t, cfg)
	tok := nodetest.SuperUser(t, n)
	oldCert, oldKey := oldClients.issue(t, "c")
	newCert, newKey := newClients.issue(t, "c")
	call := func(cert, key string) error {
		_, err := post(httpsClient(t, serverCA.file, withClientCert(t, cert, key)), httpsURL(n), tok, `{"operation":"cluster_get_routes"}`)
		return err
	}
	if err := call(oldCert, oldKey); err != nil {
		t.Fatalf("old client CA: %v", err)
	}
	if err := call(newCert, newKey); err == nil {
		t.Fatal("new client CA accepted before the rotation")
	}
	b, _ = os.ReadFile(newClients.file)
	if err := os.WriteFile(caFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	nodetest.Eventually(t, 15*time.Second, "the new client CA is used", func() bool { return call(newCert, newKey) == nil })
	if err := call(oldCert, oldKey); err == nil {
		t.Fatal("old client CA still accepted after the rotation")
	}
}

// Plain HTTP beyond loopback is refused unless allowCleartext says so, with
// a message that says how to serve HTTPS.
func TestPlainHTTPBeyondLoopbackIsRefused(t *testing.T) {
	for _, host := range []string{"0.0.0.0", "", "::"} {
		cfg := nodetest.Config(t, "a")
		cfg.OperationsAPI.Network.Host = host
		_, err := node.Start(t.Context(), cfg, node.Options{})
		if err == nil {
			t.Fatalf("host %q: plain HTTP started beyond loopback", host)
		}
		for _, want := range []string{"clear text", "operationsApi.network.securePort", "operationsApi.network.allowCleartext: true"} {
			if !strings.Contains(err.Error(), want) {
				t.Fatalf("host %q: %v\nwant it to mention %q", host, err, want)
			}
		}
		if _, err := os.Stat(filepath.Join(cfg.RootPath, "state")); err == nil {
			t.Fatalf("host %q: the refused node created its state", host)
		}
	}
	for _, host := range []string{"127.0.0.1", "localhost", "::1", "127.0.0.2"} {
		cfg := nodetest.Config(t, "a")
		cfg.OperationsAPI.Network.Host = host
		if err := cfg.Validate(); err != nil {
			t.Fatalf("loopback host %q refused: %v", host, err)
		}
	}
	// Told explicitly, it serves.
	cfg := nodetest.Config(t, "a")
	cfg.OperationsAPI.Network.Host = "0.0.0.0"
	cfg.OperationsAPI.Network.AllowCleartext = true
	n := nodetest.Start(t, cfg)
	if r, err := getOver(&http.Client{Timeout: 10 * time.Second}, fmt.Sprintf("http://127.0.0.1:%d/livez", n.HTTPPort())); err != nil || r.status != 200 {
		t.Fatalf("allowCleartext: %d %v", r.status, err)
	}
	// HTTPS beyond loopback needs no such key.
	cfg = httpsConfig(t, newCA(t, "ops"), "b")
	cfg.OperationsAPI.Network.Host = "0.0.0.0"
	if err := cfg.Validate(); err != nil {
		t.Fatalf("HTTPS on 0.0.0.0: %v", err)
	}
}

// With securePort and no certificate, the node generates a self-signed
// pair under rootPath (key 0600), logs its SHA-256 fingerprint, serves it
// to clients that trust the certificate file, and keeps it across restarts.
func TestHTTPSSelfSignedCertificate(t *testing.T) {
	cfg := nodetest.Config(t, "a")
	cfg.OperationsAPI.Network.Port = node.Off
	cfg.OperationsAPI.Network.SecurePort = 0
	certFile, keyFile := cfg.SelfSignedFiles()
	if want := filepath.Join(cfg.RootPath, "keys"); filepath.Dir(certFile) != want || filepath.Dir(keyFile) != want {
		t.Fatalf("self-signed files %s %s, want them in %s", certFile, keyFile, want)
	}
	fingerprint := func() string {
		b, err := os.ReadFile(certFile)
		if err != nil {
			t.Fatal(err)
		}
		blk, _ := pem.Decode(b)
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		return events.Fingerprint(c)
	}
	core, logs := observer.New(zapcore.DebugLevel)
	var stdout bytes.Buffer
	n, err := node.Start(t.Context(), cfg, node.Options{Log: zap.New(core), Stdout: &stdout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	if st, err := os.Stat(keyFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("private key %s: %v %v, want mode 0600", keyFile, st.Mode(), err)
	}
	fp := fingerprint()
	if len(fp) != 95 {
		t.Fatalf("fingerprint %q is not a SHA-256 one", fp)
	}
	if logs.FilterMessage("generated a self-signed certificate for the operations API").Len() != 1 {
		t.Fatal("generation not logged")
	}
	logged := logs.FilterMessage("operations API certificate").All()
	if len(logged) != 1 || logged[0].ContextMap()["sha256"] != fp || logged[0].ContextMap()["self_signed"] != true {
		t.Fatalf("certificate log %v, want sha256 %s", logged, fp)
	}
	// The first start tells the user how to trust it.
	if want := fmt.Sprintf("SHA-256 %s). Clients trust it with:\n  curl --cacert %s https://127.0.0.1:%d/readyz\n", fp, certFile, n.HTTPSPort()); !strings.Contains(stdout.String(), want) {
		t.Fatalf("first-start hint:\n%s\nwant it to contain:\n%s", stdout.String(), want)
	}
	if n.OperationsCAFile() != certFile {
		t.Fatalf("OperationsCAFile %q, want %s", n.OperationsCAFile(), certFile)
	}
	tok := nodetest.SuperUser(t, n)
	for _, host := range []string{"127.0.0.1", "localhost"} {
		url := fmt.Sprintf("https://%s:%d", host, n.HTTPSPort())
		if r, err := post(httpsClient(t, certFile, nil), url, tok, `{"operation":"cluster_get_routes"}`); err != nil || r.status != 200 {
			t.Fatalf("%s with the self-signed certificate as CA: %d %q %v", url, r.status, r.body, err)
		}
	}
	if _, err := post(&http.Client{Timeout: 10 * time.Second}, httpsURL(n), tok, `{"operation":"cluster_get_routes"}`); err == nil {
		t.Fatal("a client trusting only the system roots accepted the self-signed certificate")
	}
	n.Close()

	// Restarted on the same rootPath: the same certificate.
	n, logs = nodetest.StartLogged(t, cfg)
	if got := fingerprint(); got != fp {
		t.Fatalf("certificate changed across a restart: %s, was %s", got, fp)
	}
	if logs.FilterMessage("generated a self-signed certificate for the operations API").Len() != 0 {
		t.Fatal("generated again on restart")
	}
	n.Close()

	// A start that crashed between the two writes left only the key: a new
	// pair is made.
	if err := os.Remove(certFile); err != nil {
		t.Fatal(err)
	}
	n = nodetest.Start(t, cfg)
	if got := fingerprint(); got == fp {
		t.Fatal("the certificate was not regenerated")
	}
	if r, err := post(httpsClient(t, certFile, nil), httpsURL(n), tok, `{"operation":"cluster_get_routes"}`); err != nil || r.status != 200 {
		t.Fatalf("after regeneration: %d %q %v", r.status, r.body, err)
	}
}

// A certificate that does not load stops the start with the file named.
func TestHTTPSBadCertificateRefusesToStart(t *testing.T) {
	ca := newCA(t, "ops")
	cfg := httpsConfig(t, ca, "a")
	_, otherKey := ca.issue(t, "other")
	cfg.TLS.PrivateKey = otherKey
	_, err := node.Start(t.Context(), cfg, node.Options{})
	if err == nil || !strings.Contains(err.Error(), cfg.TLS.Certificate) || !strings.Contains(err.Error(), "private key does not match public key") {
		t.Fatalf("mismatched key: %v", err)
	}
	cfg = httpsConfig(t, ca, "a")
	cfg.TLS.CertificateAuthority = writeFile(t, "ca.pem", "junk")
	if err := cfg.Check(); err == nil || !strings.Contains(err.Error(), "holds no PEM certificate") {
		t.Fatalf("config check with a CA file without certificates: %v", err)
	}
	if _, err := node.Start(t.Context(), cfg, node.Options{}); err == nil || !strings.Contains(err.Error(), "holds no PEM certificate") {
		t.Fatalf("start with a CA file without certificates: %v", err)
	}
}

// cluster_status reports a peer's HTTPS port as its operations_api port
// when the peer serves HTTPS.
func TestClusterStatusReportsTheHTTPSPort(t *testing.T) {
	ca := newCA(t, "ops")
	b := nodetest.Start(t, httpsConfig(t, ca, "b"))
	a := nodetest.StartNamed(t, "a")
	if r := nodetest.Op(t, a, "cluster_set_routes", map[string]any{"server": "hub", "routes": []any{nodetest.ClusterRoute(b)}}); r.Status != 200 {
		t.Fatalf("set routes: %s", r.Body)
	}
	for _, n := range []*node.Node{a, b} {
		mustOp(t, n, "create_table", `{"table":"dog"}`)
	}
	nodetest.Eventually(t, 10*time.Second, "add_node", func() bool {
		return nodetest.Op(t, a, "add_node", map[string]any{"node_name": "b", "subscriptions": []any{sub("dog", true, false)}}).Status == 200
	})
	r := nodetest.Op(t, a, "cluster_status", `{}`)
	want := fmt.Sprintf(`"ports":{"clustering":%d,"operations_api":%d}`, b.Servers.Ports().Cluster, b.HTTPSPort())
	if r.Status != 200 || !strings.Contains(string(r.Body), want) {
		t.Fatalf("cluster_status %d %s\nwant %s", r.Status, r.Body, want)
	}
}

// The HTTPS listener is under the same limits as plain HTTP: a client that
// connects and never completes the handshake is dropped after
// headersTimeout, and both listeners share one maxConnections budget.
func TestHTTPSListenerSharesTheLimits(t *testing.T) {
	ca := newCA(t, "ops")
	cfg := httpsConfig(t, ca, "a")
	cfg.OperationsAPI.Network.Port = 0
	cfg.OperationsAPI.Network.MaxConnections = 2
	cfg.OperationsAPI.Network.HeadersTimeout = 500 * time.Millisecond
	cfg.OperationsAPI.Network.KeepAliveTimeout = time.Minute
	n := nodetest.Start(t, cfg)
	httpsAddr := fmt.Sprintf("127.0.0.1:%d", n.HTTPSPort())

	// Silent: TCP connected, no ClientHello.
	silent, err := net.Dial("tcp", httpsAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	start := time.Now()
	_ = silent.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, err = silent.Read(make([]byte, 1))
	var ne net.Error
	if err == nil || errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("a silent connection to the HTTPS port was not dropped: %v after %v", err, time.Since(start))
	}
	if d := time.Since(start); d < 400*time.Millisecond {
		t.Fatalf("silent connection dropped after %v, before headersTimeout", d)
	}

	// Two kept-alive HTTPS connections take the whole budget...
	pool := pemPool(t, ca.file)
	var held []*tls.Conn
	for range 2 {
		c, err := tls.Dial("tcp", httpsAddr, &tls.Config{RootCAs: pool})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := io.WriteString(c, "GET /livez HTTP/1.1\r\nHost: a\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("kept-alive HTTPS request: %v %v", resp, err)
		}
		held = append(held, c)
	}
	// ...so plain HTTP waits...
	plain := fmt.Sprintf("http://127.0.0.1:%d/livez", n.HTTPPort())
	if r, err := getOver(&http.Client{Timeout: time.Second}, plain); err == nil {
		t.Fatalf("plain HTTP served beyond the shared budget: %d", r.status)
	}
	// ...until one of them closes.
	held[0].Close()
	nodetest.Eventually(t, 15*time.Second, "plain HTTP served once a slot is free", func() bool {
		r, err := getOver(&http.Client{Timeout: 2 * time.Second}, plain)
		return err == nil && r.status == 200
	})
}

// issueUntil is issue with a chosen expiry.
func (ca testCA) issueUntil(t *testing.T, name string, notAfter time.Time) (certFile, keyFile string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: notAfter.Add(-48 * time.Hour), NotAfter: notAfter,
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
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

// A certificate close to its expiry, or past it, is served (a replaced file
// is picked up without a restart) but logged at warn and flagged by config
// check; so is a private key every user may read.
func TestHTTPSCertificateWarnings(t *testing.T) {
	ca := newCA(t, "ops")
	for _, c := range []struct {
		name     string
		notAfter time.Time
		want     string
	}{
		{"expired", time.Now().Add(-time.Hour), "operations API certificate has EXPIRED on "},
		{"expiring in days", time.Now().Add(10*24*time.Hour + time.Hour), "operations API certificate expires in 10 days, on "},
		{"expiring in hours", time.Now().Add(5*time.Hour + time.Minute), "operations API certificate expires in 5 hours, at "},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := httpsConfig(t, ca, "a")
			cfg.TLS.Certificate, cfg.TLS.PrivateKey = ca.issueUntil(t, "a", c.notAfter)
			if err := os.Chmod(cfg.TLS.PrivateKey, 0o644); err != nil {
				t.Fatal(err)
			}
			ls := cfg.OperationsListeners()
			if len(ls) != 1 || !strings.Contains(ls[0].About, "WARNING: it "+strings.TrimPrefix(c.want, "operations API certificate ")) {
				t.Fatalf("config check's listener: %+v, want the warning %q", ls, c.want)
			}
			_, logs := nodetest.StartLogged(t, cfg)
			var warned bool
			for _, e := range logs.FilterLevelExact(zapcore.WarnLevel).All() {
				warned = warned || strings.HasPrefix(e.Message, c.want)
			}
			if !warned {
				t.Fatalf("no warning %q logged", c.want)
			}
			if logs.FilterMessage("operations API private key is readable by every user of this machine: chmod o-rwx it").Len() != 1 {
				t.Fatal("a world-readable private key was not warned about")
			}
		})
	}
	// A certificate valid for a year: no warning.
	cfg := httpsConfig(t, ca, "b")
	cfg.TLS.Certificate, cfg.TLS.PrivateKey = ca.issueUntil(t, "b", time.Now().Add(365*24*time.Hour))
	_, logs := nodetest.StartLogged(t, cfg)
	if n := logs.FilterLevelExact(zapcore.WarnLevel).FilterMessageSnippet("operations API").Len(); n != 0 {
		t.Fatalf("%d warnings about a good certificate", n)
	}
}
