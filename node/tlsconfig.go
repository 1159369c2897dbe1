package node

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/clusterd/clusterd/events"
	"gopkg.in/yaml.v3"
)

// Off, as operationsApi.network.port or securePort (or null in the file),
// turns that listener off.
const Off = -1

// MTLS configures client certificates on the HTTPS listener. In the file it is
// `true`/`false` or an object; an object without `enabled` turns it on.
type MTLS struct {
	Enabled bool `yaml:"enabled"`
	// User is the user every verified certificate authenticates as; empty
	// means the user named by the certificate's common name.
	User string `yaml:"user"`
	// Required refuses HTTPS connections without a verified certificate
	// (else a certificate is optional and callers may use a token instead).
	Required bool `yaml:"required"`
}

// UnmarshalYAML reads `mtls: true` as well as `mtls: {user: admin}`.
func (m *MTLS) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		var on bool
		if err := n.Decode(&on); err != nil {
			return fmt.Errorf("line %d: operationsApi.network.mtls must be true, false or {enabled, user, required}", n.Line)
		}
		*m = MTLS{Enabled: on}
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: operationsApi.network.mtls must be true, false or {enabled, user, required}", n.Line)
	}
	hasEnabled := false
	for i := 0; i+1 < len(n.Content); i += 2 {
		switch k := n.Content[i].Value; k {
		case "enabled":
			hasEnabled = true
		case "user", "required":
		default:
			return fmt.Errorf("line %d: field %s not found in operationsApi.network.mtls (enabled, user, required)", n.Content[i].Line, k)
		}
	}
	type plain MTLS
	var p plain
	if err := n.Decode(&p); err != nil {
		return err
	}
	*m = MTLS(p)
	if !hasEnabled {
		m.Enabled = true
	}
	return nil
}

// nullPortsOff reads `port: null` / `securePort: null` (HarperDB's way to
// turn a listener off) as Off.
func nullPortsOff(tree map[string]any) {
	api, _ := tree["operationsApi"].(map[string]any)
	nw, _ := api["network"].(map[string]any)
	for _, k := range []string{"port", "securePort"} {
		if v, ok := nw[k]; ok && (v == nil || v == "") {
			nw[k] = Off
		}
	}
}

// OperationsTLS is the TLS the HTTPS listener uses: the top-level tls section
// with each key operationsApi.tls sets taken from there instead.
func (c Config) OperationsTLS() TLS {
	t, o := c.TLS, c.OperationsAPI.TLS
	if o.Certificate != "" || o.PrivateKey != "" {
		t.Certificate, t.PrivateKey = o.Certificate, o.PrivateKey
	}
	if o.CertificateAuthority != "" {
		t.CertificateAuthority = o.CertificateAuthority
	}
	return t
}

// SelfSignedFiles are where a node keeps the certificate and key it generates
// for HTTPS when none is configured (HarperDB's file names).
func (c Config) SelfSignedFiles() (cert, key string) {
	dir := filepath.Join(c.RootPath, "keys")
	return filepath.Join(dir, "certificate.pem"), filepath.Join(dir, "privateKey.pem")
}

// usesSelfSigned: HTTPS on, no certificate configured.
func (c Config) usesSelfSigned() bool {
	return c.OperationsAPI.Network.SecurePort != Off && c.OperationsTLS().Certificate == ""
}

// operationsTLSFiles are the files the HTTPS listener serves with.
func (c Config) operationsTLSFiles() events.TLSFiles {
	t := c.OperationsTLS()
	f := events.TLSFiles{Certificate: t.Certificate, PrivateKey: t.PrivateKey, CertificateAuthority: t.CertificateAuthority}
	if c.usesSelfSigned() {
		f.Certificate, f.PrivateKey = c.SelfSignedFiles()
	}
	return f
}

func (c Config) clientCerts() events.ClientCerts {
	m := c.OperationsAPI.Network.MTLS
	return events.ClientCerts{Enabled: m.Enabled, Required: m.Required, User: m.User}
}

// IsLoopback reports whether host only listens on this machine: localhost
// or a loopback address. "" and 0.0.0.0 mean every interface.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil && a.IsLoopback()
}

// operationsAPIProblems validates the operations API's listeners and TLS.
func (c Config) operationsAPIProblems() []string {
	var problems []string
	nw := c.OperationsAPI.Network
	if nw.Port == Off && nw.SecurePort == Off {
		problems = append(problems, "operationsApi.network.port and securePort are both off (-1): set securePort (HTTPS) or port (HTTP) so the node serves its operations API, /livez and /readyz")
	}
	if nw.Port != Off && !nw.AllowCleartext && !IsLoopback(nw.Host) {
		host := nw.Host
		if host == "" {
			host = "every interface"
		}
		problems = append(problems, fmt.Sprintf("operationsApi.network.port %d would serve plain HTTP on %s, beyond loopback: passwords and tokens would cross the network in clear text. "+
			"Serve HTTPS instead: set operationsApi.network.securePort (e.g. 9925) and operationsApi.network.port: -1, with tls.certificate and tls.privateKey "+
			"(without them a self-signed pair is generated under rootPath); "+
			"or bind port to 127.0.0.1; or, if clear text is intended (a TLS-terminating proxy in front), set operationsApi.network.allowCleartext: true", nw.Port, host))
	}
	for _, s := range []struct {
		name string
		t    TLS
	}{{"tls", c.TLS}, {"operationsApi.tls", c.OperationsAPI.TLS}} {
		if (s.t.Certificate == "") != (s.t.PrivateKey == "") {
			problems = append(problems, s.name+".certificate and "+s.name+".privateKey go together")
		}
	}
	m := nw.MTLS
	switch {
	case m.Enabled && nw.SecurePort == Off:
		problems = append(problems, "operationsApi.network.mtls needs HTTPS: set operationsApi.network.securePort")
	case m.Enabled && c.OperationsTLS().CertificateAuthority == "":
		problems = append(problems, "operationsApi.network.mtls needs tls.certificateAuthority (or operationsApi.tls.certificateAuthority): the CA that issues client certificates")
	case !m.Enabled && (m.User != "" || m.Required):
		problems = append(problems, "operationsApi.network.mtls.user and .required need mtls.enabled: true")
	}
	return problems
}

// checkOperationsTLS loads the HTTPS listener's files as the node would
// (for Check). A self-signed pair not generated yet is fine.
func (c Config) checkOperationsTLS() []string {
	if c.OperationsAPI.Network.SecurePort == Off {
		return nil
	}
	files := c.operationsTLSFiles()
	if c.usesSelfSigned() && !(fileExists(files.Certificate) && fileExists(files.PrivateKey)) {
		return nil // generated at start (both again when one is missing)
	}
	if _, err := events.LoadTLSFiles(files); err != nil {
		return []string{"operations API TLS: " + err.Error()}
	}
	return nil
}

// Listener is one listener of the operations API, as `config check` shows it.
type Listener struct {
	URL string // http://host:port or https://host:port (port 0: picked at start)
	// About says what serves it: the certificate, client certificates.
	About string
}

// OperationsListeners describes the listeners a node with c would run.
func (c Config) OperationsListeners() []Listener {
	nw := c.OperationsAPI.Network
	host := nw.Host
	if host == "" {
		host = "0.0.0.0"
	}
	var out []Listener
	if nw.Port != Off {
		about := "plain HTTP"
		switch {
		case IsLoopback(nw.Host):
			about += ", loopback only"
		case nw.AllowCleartext:
			about += " beyond loopback (allowCleartext: true)"
		}
		out = append(out, Listener{URL: "http://" + net.JoinHostPort(host, strconv.Itoa(nw.Port)), About: about})
	}
	if nw.SecurePort != Off {
		files := c.operationsTLSFiles()
		about := "HTTPS (TLS 1.2+), certificate " + files.Certificate
		if c.usesSelfSigned() {
			about += " (self-signed"
			if !fileExists(files.Certificate) {
				about += ", generated on first start"
			}
			about += ")"
		}
		if leaf, err := events.LoadTLSFiles(files); err == nil {
			about += fmt.Sprintf(", subject %q, valid until %s, sha256 %s", leaf.Subject.String(), leaf.NotAfter.UTC().Format("2006-01-02"), events.Fingerprint(leaf))
			if w := certificateWarning(leaf, time.Now()); w != "" {
				about += "; WARNING: it " + w
			}
		}
		if m := nw.MTLS; m.Enabled {
			who := "the user named by the certificate's common name"
			if m.User != "" {
				who = "user " + m.User
			}
			need := "optional"
			if m.Required {
				need = "required"
			}
			about += fmt.Sprintf("; client certificates %s, verified with %s, authenticate as %s", need, files.CertificateAuthority, who)
		}
		out = append(out, Listener{URL: "https://" + net.JoinHostPort(host, strconv.Itoa(nw.SecurePort)), About: about})
	}
	return out
}

// OperationsClientURL is how a client on this machine reaches the operations
// API of a node running c: HTTPS when it runs (with the CA file to trust, ""
// for a certificate chaining to the system roots), else plain HTTP. A port
// of 0 (picked at start) reads "<port>".
func (c Config) OperationsClientURL() (url, caFile string) {
	nw := c.OperationsAPI.Network
	host := nw.Host
	if ip, err := netip.ParseAddr(strings.Trim(host, "[]")); host == "" || (err == nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	port := func(p int) string {
		if p == 0 {
			return "<port>"
		}
		return strconv.Itoa(p)
	}
	if nw.SecurePort != Off {
		caFile = c.OperationsTLS().CertificateAuthority
		if c.usesSelfSigned() {
			caFile, _ = c.SelfSignedFiles()
		}
		return "https://" + net.JoinHostPort(host, port(nw.SecurePort)), caFile
	}
	return "http://" + net.JoinHostPort(host, port(nw.Port)), ""
}
