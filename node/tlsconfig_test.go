package node_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clusterd/clusterd/node"
	"github.com/clusterd/clusterd/node/nodetest"
)

// HarperDB's keys for HTTPS load from the file and from the environment;
// operationsApi.tls overrides the top-level tls key by key; `port: null`
// turns plain HTTP off; `mtls` is a switch or an object.
func TestOperationsAPITLSKeys(t *testing.T) {
	file := writeFile(t, "clusterd.yaml", `
tls:
  certificate: /etc/tls/shared.pem
  privateKey: /etc/tls/shared-key.pem
  certificateAuthority: /etc/tls/ca.pem
operationsApi:
  network:
    host: 0.0.0.0
    port: null
    securePort: 9925
    mtls: true
  tls:
    certificate: /etc/tls/ops.pem
    privateKey: /etc/tls/ops-key.pem
`)
	c, err := node.Load(file, nil)
	if err != nil {
		t.Fatal(err)
	}
	nw := c.OperationsAPI.Network
	if nw.Port != node.Off || nw.SecurePort != 9925 || !nw.MTLS.Enabled || nw.MTLS.Required || nw.MTLS.User != "" {
		t.Fatalf("operationsApi.network: %+v", nw)
	}
	want := node.TLS{Certificate: "/etc/tls/ops.pem", PrivateKey: "/etc/tls/ops-key.pem", CertificateAuthority: "/etc/tls/ca.pem"}
	if got := c.OperationsTLS(); got != want {
		t.Fatalf("effective TLS %+v, want %+v", got, want)
	}

	// The same from the environment alone.
	c, err = node.Load("", []string{
		"OPERATIONSAPI_NETWORK_HOST=0.0.0.0", "OPERATIONSAPI_NETWORK_PORT=-1", "OPERATIONSAPI_NETWORK_SECUREPORT=9925",
		"OPERATIONSAPI_NETWORK_MTLS={user: robot, required: true}",
		"TLS_CERTIFICATE=/etc/tls/shared.pem", "TLS_PRIVATEKEY=/etc/tls/shared-key.pem", "TLS_CERTIFICATEAUTHORITY=/etc/tls/ca.pem",
		"OPERATIONSAPI_TLS_CERTIFICATEAUTHORITY=/etc/tls/clients-ca.pem",
	})
	if err != nil {
		t.Fatal(err)
	}
	nw = c.OperationsAPI.Network
	if nw.Port != node.Off || nw.SecurePort != 9925 || nw.MTLS != (node.MTLS{Enabled: true, User: "robot", Required: true}) {
		t.Fatalf("operationsApi.network from env: %+v", nw)
	}
	want = node.TLS{Certificate: "/etc/tls/shared.pem", PrivateKey: "/etc/tls/shared-key.pem", CertificateAuthority: "/etc/tls/clients-ca.pem"}
	if got := c.OperationsTLS(); got != want {
		t.Fatalf("effective TLS from env %+v, want %+v", got, want)
	}
	if unknown := node.UnknownEnv([]string{"OPERATIONSAPI_NETWORK_MTLS=true", "OPERATIONSAPI_NETWORK_MTLS_USER=x", "TLS_CERTIFICATE=x", "OPERATIONSAPI_NETWORK_ALLOWCLEARTEXT=true"}); len(unknown) != 0 {
		t.Fatalf("keys taken for unknown: %v", unknown)
	}
	for _, v := range []string{"OPERATIONSAPI_NETWORK_PORT=", "OPERATIONSAPI_NETWORK_PORT=null", "OPERATIONSAPI_NETWORK_PORT=-1"} {
		c, err := node.Load("", []string{v, "OPERATIONSAPI_NETWORK_SECUREPORT=9926"})
		if err != nil || c.OperationsAPI.Network.Port != node.Off {
			t.Fatalf("%s: port %d %v, want off", v, c.OperationsAPI.Network.Port, err)
		}
	}
	for _, v := range []string{"OPERATIONSAPI_NETWORK_MTLS=false", "OPERATIONSAPI_NETWORK_MTLS={enabled: false}"} {
		c, err := node.Load("", []string{v})
		if err != nil || c.OperationsAPI.Network.MTLS.Enabled {
			t.Fatalf("%s: %+v %v", v, c.OperationsAPI.Network.MTLS, err)
		}
	}

	// The printed configuration (config check) loads back to the same.
	b, err := c.YAML()
	if err != nil {
		t.Fatal(err)
	}
	back, err := node.Load(writeFile(t, "printed.yaml", string(b)), nil)
	if err != nil {
		t.Fatalf("printed config does not load: %v\n%s", err, b)
	}
	bn, cn := back.OperationsAPI.Network, c.OperationsAPI.Network
	if b2, _ := back.YAML(); string(b2) != string(b) || back.OperationsTLS() != c.OperationsTLS() || back.OperationsAPI.TLS != c.OperationsAPI.TLS ||
		bn.Host != cn.Host || bn.Port != cn.Port || bn.SecurePort != cn.SecurePort || bn.MTLS != cn.MTLS || bn.AllowCleartext != cn.AllowCleartext {
		t.Fatalf("printed config loads differently:\n%s\n%s", b2, b)
	}
}

func TestOperationsAPIConfigProblems(t *testing.T) {
	cases := []struct {
		name string
		env  []string
		want string // a part of the error
	}{
		{"cleartext beyond loopback", []string{"OPERATIONSAPI_NETWORK_HOST=0.0.0.0"},
			"operationsApi.network.port 9925 would serve plain HTTP on 0.0.0.0, beyond loopback: passwords and tokens would cross the network in clear text. " +
				"Serve HTTPS instead: set operationsApi.network.securePort (e.g. 9925) and operationsApi.network.port: -1"},
		{"cleartext on every interface", []string{"OPERATIONSAPI_NETWORK_HOST="}, "would serve plain HTTP on every interface"},
		{"cleartext on a host name", []string{"OPERATIONSAPI_NETWORK_HOST=node1.example.com"}, "or, if clear text is intended (a TLS-terminating proxy in front), set operationsApi.network.allowCleartext: true"},
		{"both off", []string{"OPERATIONSAPI_NETWORK_PORT=-1"}, "operationsApi.network.port and securePort are both off (-1)"},
		{"port -2", []string{"OPERATIONSAPI_NETWORK_SECUREPORT=-2"}, "operationsApi.network.securePort must be between 0 and 65535 (or -1 to turn it off), got -2"},
		{"same port", []string{"OPERATIONSAPI_NETWORK_SECUREPORT=9925"}, "operationsApi.network.port and operationsApi.network.securePort both use port 9925"},
		{"certificate without key", []string{"OPERATIONSAPI_NETWORK_SECUREPORT=9926", "TLS_CERTIFICATE=c.pem"}, "tls.certificate and tls.privateKey go together"},
		{"override without key", []string{"OPERATIONSAPI_NETWORK_SECUREPORT=9926", "OPERATIONSAPI_TLS_PRIVATEKEY=k.pem"}, "operationsApi.tls.certificate and operationsApi.tls.privateKey go together"},
		{"mtls without https", []string{"OPERATIONSAPI_NETWORK_MTLS=true"}, "operationsApi.network.mtls needs HTTPS: set operationsApi.network.securePort"},
		{"mtls without a CA", []string{"OPERATIONSAPI_NETWORK_SECUREPORT=9926", "OPERATIONSAPI_NETWORK_MTLS=true"}, "operationsApi.network.mtls needs tls.certificateAuthority"},
		{"mtls user while off", []string{"OPERATIONSAPI_NETWORK_MTLS={enabled: false, user: x}"}, "operationsApi.network.mtls.user and .required need mtls.enabled: true"},
		{"mtls not a switch", []string{"OPERATIONSAPI_NETWORK_MTLS=sometimes"}, "operationsApi.network.mtls must be true, false or {enabled, user, required}"},
		{"mtls unknown field", []string{"OPERATIONSAPI_NETWORK_MTLS={users: x}"}, "field users not found in operationsApi.network.mtls"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := node.Load("", c.env)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error\n got: %v\nwant it to contain: %s", err, c.want)
			}
		})
	}
	// The file's mtls problems name their line.
	_, err := node.Load(writeFile(t, "c.yaml", "operationsApi:\n  network:\n    mtls: {enabled: true, requird: true}\n"), nil)
	if err == nil || !strings.Contains(err.Error(), "line 3: field requird not found in operationsApi.network.mtls") {
		t.Fatalf("unknown mtls field in a file: %v", err)
	}
}

// Check loads the HTTPS listener's files and shows the listeners.
func TestOperationsAPICheckAndListeners(t *testing.T) {
	ca := newCA(t, "ops")
	cfg := httpsConfig(t, ca, "a")
	cfg.OperationsAPI.Network.SecurePort = 9926
	cfg.OperationsAPI.Network.Port = 9925
	cfg.OperationsAPI.Network.MTLS = node.MTLS{Enabled: true, Required: true}
	if err := cfg.Check(); err != nil {
		t.Fatal(err)
	}
	ls := cfg.OperationsListeners()
	if len(ls) != 2 || ls[0].URL != "http://127.0.0.1:9925" || ls[1].URL != "https://127.0.0.1:9926" {
		t.Fatalf("listeners %+v", ls)
	}
	for _, want := range []string{cfg.TLS.Certificate, `subject "CN=a"`, "sha256 ", "client certificates required, verified with " + ca.file, "the certificate's common name"} {
		if !strings.Contains(ls[1].About, want) {
			t.Fatalf("HTTPS listener %q does not say %q", ls[1].About, want)
		}
	}
	if err := os.WriteFile(cfg.TLS.Certificate, []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Check(); err == nil || !strings.Contains(err.Error(), "operations API TLS: certificate "+cfg.TLS.Certificate) {
		t.Fatalf("Check with a broken certificate: %v", err)
	}
	cfg.TLS.Certificate = filepath.Join(t.TempDir(), "missing.pem")
	if err := cfg.Check(); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("Check with a missing certificate: %v", err)
	}

	// Self-signed: fine before it exists, and said so.
	cfg = nodetest.Config(t, "b")
	cfg.OperationsAPI.Network.Port, cfg.OperationsAPI.Network.SecurePort = node.Off, 9926
	if err := cfg.Check(); err != nil {
		t.Fatal(err)
	}
	ls = cfg.OperationsListeners()
	if len(ls) != 1 || !strings.Contains(ls[0].About, "(self-signed, generated on first start)") {
		t.Fatalf("self-signed listener: %+v", ls)
	}
}
