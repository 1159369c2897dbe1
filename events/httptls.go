package events

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// TLSFiles names the PEM files an HTTPS listener serves with.
// CertificateAuthority verifies client certificates (mTLS); it may be empty
// when client certificates are not used.
type TLSFiles struct {
	Certificate          string
	PrivateKey           string
	CertificateAuthority string
}

// ClientCerts says what an HTTPS listener does with client certificates.
type ClientCerts struct {
	// Enabled asks clients for a certificate and verifies one that is
	// presented against the certificate authority.
	Enabled bool
	// Required refuses a handshake without a verified certificate.
	Required bool
	// User is the user a verified certificate authenticates as; empty means
	// the certificate's subject common name.
	User string
}

// CertReloadInterval is how often, at most, a handshake re-reads the
// certificate files to pick up a rotation.
const CertReloadInterval = time.Second

// CertReloader serves an HTTPS listener's certificate and client CA from
// files, re-reading them when they change (checked on a handshake, at most
// once per Interval), so certificates rotate without a restart. A new set of
// files that does not load is logged and the last good one keeps serving.
// TLS 1.2 is the minimum version.
type CertReloader struct {
	files    TLSFiles
	clients  ClientCerts
	log      *zap.Logger
	interval time.Duration

	mu       sync.Mutex // one refresh at a time
	checked  time.Time
	seen     [3][]byte // file contents of the config in force
	rejected [3][]byte // last contents that failed to load (logged once)

	cfg  atomic.Pointer[tls.Config]
	leaf atomic.Pointer[x509.Certificate]

	reloads *prometheus.CounterVec // nil until Register
}

// Register exports the served certificate's expiry and the reloads (ok or
// failed) to reg, so an alert can fire before the certificate expires or
// when a rotation did not take.
func (r *CertReloader) Register(reg prometheus.Registerer) error {
	expiry := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "clusterd_operations_api_certificate_expiry_timestamp_seconds",
		Help: "When the certificate the HTTPS operations API serves expires (Unix seconds).",
	}, func() float64 { return float64(r.Leaf().NotAfter.Unix()) })
	reloads := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "clusterd_operations_api_certificate_reloads_total",
		Help: "Changed certificate files seen by the HTTPS operations API, by result (ok: now served; failed: not loadable, the previous certificate kept).",
	}, []string{"result"})
	for _, c := range []prometheus.Collector{expiry, reloads} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	reloads.WithLabelValues("ok")
	reloads.WithLabelValues("failed")
	r.mu.Lock()
	r.reloads = reloads
	r.mu.Unlock()
	return nil
}

func (r *CertReloader) count(result string) {
	if r.reloads != nil {
		r.reloads.WithLabelValues(result).Inc()
	}
}

// NewCertReloader loads files; a failure here is a configuration error.
func NewCertReloader(files TLSFiles, clients ClientCerts, log *zap.Logger) (*CertReloader, error) {
	if log == nil {
		log = zap.NewNop()
	}
	if clients.Enabled && files.CertificateAuthority == "" {
		return nil, errors.New("client certificates need a certificate authority to verify them")
	}
	r := &CertReloader{files: files, clients: clients, log: log, interval: CertReloadInterval}
	raw, err := r.read()
	if err != nil {
		return nil, err
	}
	cfg, leaf, err := r.build(raw)
	if err != nil {
		return nil, err
	}
	r.seen, r.checked = raw, time.Now()
	r.cfg.Store(cfg)
	r.leaf.Store(leaf)
	return r, nil
}

// SetInterval changes how often the files are checked (tests use a short one).
func (r *CertReloader) SetInterval(d time.Duration) {
	r.mu.Lock()
	r.interval = d
	r.mu.Unlock()
}

// TLSConfig is the listener's configuration: every handshake gets the
// certificate and client CA in force, after a check of the files.
func (r *CertReloader) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"http/1.1"},
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			r.Refresh(false)
			return r.cfg.Load(), nil
		},
	}
}

// Leaf is the certificate being served.
func (r *CertReloader) Leaf() *x509.Certificate { return r.leaf.Load() }

// Refresh re-reads the files if they were not checked within the interval
// (always when force), and switches to them if they changed and load.
func (r *CertReloader) Refresh(force bool) {
	if !r.mu.TryLock() {
		return // another handshake is checking; serve what is in force
	}
	defer r.mu.Unlock()
	if !force && time.Since(r.checked) < r.interval {
		return
	}
	r.checked = time.Now()
	raw, err := r.read()
	if err == nil && sameFiles(raw, r.seen) {
		return
	}
	var cfg *tls.Config
	var leaf *x509.Certificate
	if err == nil {
		cfg, leaf, err = r.build(raw)
	}
	if err != nil {
		if !sameFiles(raw, r.rejected) {
			r.rejected = raw
			r.count("failed")
			r.log.Warn("operations API certificate files changed but do not load; still serving the previous certificate",
				zap.String("certificate", r.files.Certificate), zap.Error(err),
				zap.String("serving_sha256", Fingerprint(r.leaf.Load())))
		}
		return
	}
	r.seen, r.rejected = raw, [3][]byte{}
	r.count("ok")
	r.cfg.Store(cfg)
	r.leaf.Store(leaf)
	r.log.Info("operations API certificate reloaded", zap.String("certificate", r.files.Certificate),
		zap.String("subject", leaf.Subject.String()), zap.String("sha256", Fingerprint(leaf)),
		zap.Time("not_after", leaf.NotAfter))
}

func sameFiles(a, b [3][]byte) bool {
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

func (r *CertReloader) read() (raw [3][]byte, err error) {
	for i, f := range []string{r.files.Certificate, r.files.PrivateKey, r.files.CertificateAuthority} {
		if f == "" {
			continue
		}
		if raw[i], err = os.ReadFile(f); err != nil {
			return raw, err
		}
	}
	return raw, nil
}

func (r *CertReloader) build(raw [3][]byte) (*tls.Config, *x509.Certificate, error) {
	cert, pool, err := parseTLSFiles(r.files, raw)
	if err != nil {
		return nil, nil, err
	}
	cfg := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"http/1.1"},
		Certificates: []tls.Certificate{cert},
	}
	if r.clients.Enabled {
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
		if r.clients.Required {
			cfg.ClientAuth = tls.RequireAndVerifyClientCert
		}
	}
	return cfg, cert.Leaf, nil
}

// LoadTLSFiles loads and checks an HTTPS listener's files: the certificate
// and key match, the CA file holds certificates. It is what a node does at
// start, for `config check`.
func LoadTLSFiles(files TLSFiles) (*x509.Certificate, error) {
	r := &CertReloader{files: files}
	raw, err := r.read()
	if err != nil {
		return nil, err
	}
	cert, _, err := parseTLSFiles(files, raw)
	if err != nil {
		return nil, err
	}
	return cert.Leaf, nil
}

func parseTLSFiles(files TLSFiles, raw [3][]byte) (tls.Certificate, *x509.CertPool, error) {
	cert, err := tls.X509KeyPair(raw[0], raw[1])
	if err != nil {
		return cert, nil, fmt.Errorf("certificate %s and private key %s: %s", files.Certificate, files.PrivateKey,
			strings.TrimPrefix(err.Error(), "tls: "))
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return cert, nil, fmt.Errorf("certificate %s: %w", files.Certificate, err)
		}
	}
	var pool *x509.CertPool
	if files.CertificateAuthority != "" {
		pool = x509.NewCertPool()
		if !appendPEMCerts(pool, raw[2]) {
			return cert, nil, fmt.Errorf("certificate authority %s holds no PEM certificate", files.CertificateAuthority)
		}
	}
	return cert, pool, nil
}

// appendPEMCerts adds every CERTIFICATE block of b to pool, refusing a file
// with a block that does not parse (AppendCertsFromPEM skips those silently).
func appendPEMCerts(pool *x509.CertPool, b []byte) bool {
	n := 0
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return n > 0
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return false
		}
		pool.AddCert(c)
		n++
	}
}

// Fingerprint is a certificate's SHA-256 fingerprint as openssl prints it
// (`openssl x509 -noout -fingerprint -sha256`): upper-case hex pairs
// joined by colons.
func Fingerprint(c *x509.Certificate) string {
	if c == nil {
		return ""
	}
	sum := sha256.Sum256(c.Raw)
	var b strings.Builder
	for i, x := range sum {
		if i > 0 {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%02X", x)
	}
	return b.String()
}

type clientUserKey struct{}

// WithClientCertUsers wraps an HTTPS listener's handler: a request on a
// connection whose client certificate was verified carries the user that
// certificate authenticates as (clients.User, else the certificate's common
// name), which the dispatcher then authenticates like any caller.
func WithClientCertUsers(h http.Handler, clients ClientCerts) http.Handler {
	if !clients.Enabled {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.VerifiedChains[0]) > 0 {
			user := clients.User
			if user == "" {
				user = r.TLS.VerifiedChains[0][0].Subject.CommonName
			}
			if user != "" {
				r = r.WithContext(context.WithValue(r.Context(), clientUserKey{}, user))
			}
		}
		h.ServeHTTP(w, r)
	})
}

// clientCertUser is the user a request's verified client certificate
// authenticates as, or "".
func clientCertUser(r *http.Request) string {
	u, _ := r.Context().Value(clientUserKey{}).(string)
	return u
}
