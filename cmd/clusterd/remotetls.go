package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/clusterd/clusterd/node"
)

// httpsFlags are how `--http https://…` trusts the node and, for
// operationsApi.network.mtls, proves who the caller is.
type httpsFlags struct {
	ca, cert, key string
}

func (h *httpsFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&h.ca, "ca", "", "with --http https://…: CA file (PEM) to trust the node's certificate with "+
		"(default: the CA of --config's node — its tls.certificateAuthority or self-signed certificate — else the system roots)")
	fs.StringVar(&h.cert, "cert", "", "with --http https://…: client certificate (PEM) for a node with operationsApi.network.mtls; it may stand in for a token")
	fs.StringVar(&h.key, "key", "", "the private key of --cert")
}

func (h *httpsFlags) clientCert() bool { return h.cert != "" }

// httpsConfig is the TLS side of --http: TLS 1.2+, the CA to trust, the
// client certificate.
func (r *remoteFlags) httpsConfig() (*tls.Config, error) {
	h := r.https
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	secure := strings.HasPrefix(strings.ToLower(r.httpURL), "https://")
	if !secure {
		if h.ca != "" || h.cert != "" || h.key != "" {
			return nil, fmt.Errorf("--ca, --cert and --key are for HTTPS; --http %s is plain HTTP", r.httpURL)
		}
		return cfg, nil
	}
	if (h.cert == "") != (h.key == "") {
		return nil, errors.New("--cert and --key go together")
	}
	ca := h.ca
	if ca == "" && r.config != "" {
		// The node's own config knows which CA its clients trust.
		c, err := node.Load(r.config, os.Environ())
		if err != nil {
			return nil, err
		}
		_, ca = c.OperationsClientURL()
	}
	if ca != "" {
		b, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("--ca: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("--ca %s holds no PEM certificate", ca)
		}
	}
	if h.cert != "" {
		c, err := tls.LoadX509KeyPair(h.cert, h.key)
		if err != nil {
			return nil, fmt.Errorf("--cert/--key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{c}
	}
	return cfg, nil
}

// tlsHint says what to do about a certificate the client could not verify.
func tlsHint(err error) string {
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	switch {
	case errors.As(err, &ua):
		return " (pass --ca with the CA file the node's certificate comes from: its tls.certificateAuthority, or for a self-signed node <rootPath>/keys/certificate.pem; or run with the node's --config)"
	case errors.As(err, &hn):
		return " (the certificate does not name the host in --http: use a name or address it lists)"
	case strings.Contains(err.Error(), "certificate required"):
		return " (the node requires a client certificate: pass --cert and --key)"
	case strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return " (that port serves plain HTTP: use http://)"
	}
	return ""
}
