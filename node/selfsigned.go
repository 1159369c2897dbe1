package node

import (
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
	"path/filepath"
	"slices"
	"time"
)

// selfSignedValidity is how long a generated certificate lasts. It is not
// renewed: a deployment that outlives it configures its own certificate.
const selfSignedValidity = 10 * 365 * 24 * time.Hour

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// ensureSelfSigned makes sure the self-signed pair for HTTPS exists under
// rootPath: kept when both files are there, generated (key 0600) when
// neither or only one is (a start that crashed between the two writes).
// It reports whether it generated them.
func (c Config) ensureSelfSigned() (generated bool, err error) {
	certFile, keyFile := c.SelfSignedFiles()
	if fileExists(certFile) && fileExists(keyFile) {
		return false, nil
	}
	if err := os.MkdirAll(filepath.Dir(certFile), 0o700); err != nil {
		return false, fmt.Errorf("self-signed certificate: %w", err)
	}
	dns, ips := c.selfSignedNames()
	certPEM, keyPEM, err := selfSignedPair("clusterd "+c.Clustering.NodeName, dns, ips)
	if err != nil {
		return false, fmt.Errorf("self-signed certificate: %w", err)
	}
	// The key first, the certificate last: a certificate on disk always has
	// its key beside it.
	if err := writeFileAtomic(keyFile, keyPEM, 0o600); err != nil {
		return false, fmt.Errorf("self-signed certificate: %w", err)
	}
	if err := writeFileAtomic(certFile, certPEM, 0o644); err != nil {
		return false, fmt.Errorf("self-signed certificate: %w", err)
	}
	return true, nil
}

// selfSignedNames are the names and addresses clients may reach the node
// by: localhost, the loopback addresses, the host name, the node name, the
// configured host, and this machine's interface addresses when the
// listener binds every interface.
func (c Config) selfSignedNames() (dns []string, ips []net.IP) {
	addIP := func(ip net.IP) {
		if !slices.ContainsFunc(ips, ip.Equal) {
			ips = append(ips, ip)
		}
	}
	addDNS := func(n string) {
		if n != "" && !slices.Contains(dns, n) {
			dns = append(dns, n)
		}
	}
	addDNS("localhost")
	addIP(net.IPv4(127, 0, 0, 1))
	addIP(net.IPv6loopback)
	if h, err := os.Hostname(); err == nil {
		addDNS(h)
	}
	addDNS(c.Clustering.NodeName)
	host := c.OperationsAPI.Network.Host
	if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
		addIP(ip)
	} else if ip == nil && host != "" {
		addDNS(host)
	}
	if host == "" || (net.ParseIP(host) != nil && net.ParseIP(host).IsUnspecified()) {
		if addrs, err := net.InterfaceAddrs(); err == nil {
			for _, a := range addrs {
				if n, ok := a.(*net.IPNet); ok && !n.IP.IsLinkLocalUnicast() {
					addIP(n.IP)
				}
			}
		}
	}
	return dns, ips
}

// selfSignedPair makes an ECDSA P-256 certificate that is its own CA, so
// clients trust it by passing the certificate file as their CA file
// (curl --cacert, the client's CA option).
func selfSignedPair(cn string, dns []string, ips []net.IP) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"clusterd self-signed"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(selfSignedValidity),
		DNSNames:              dns,
		IPAddresses:           ips,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), nil
}

// writeFileAtomic writes a complete, synced temp file and renames it into
// place, so a reader never sees half a file.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
