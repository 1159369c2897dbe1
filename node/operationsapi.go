package node

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/clusterd/clusterd/events"
	"github.com/clusterd/clusterd/topology"
	"go.uber.org/zap"
)

// operationsAPI is the node's HTTP side: plain HTTP on port, HTTPS on
// securePort, each serving the same handler (POST /, /livez, /readyz,
// /metrics) under the same limits.
type operationsAPI struct {
	plain, secure *apiListener
	certs         *events.CertReloader // HTTPS only
}

type apiListener struct {
	ln  net.Listener // the TCP listener (under TLS for HTTPS)
	srv *http.Server
}

func (l *apiListener) port() int {
	if l == nil {
		return 0
	}
	return l.ln.Addr().(*net.TCPAddr).Port
}

// startHTTP starts the operations API's listeners. They share one
// connection budget and the same deadlines (http_limits.go).
func (n *Node) startHTTP() error {
	nw := n.Config.OperationsAPI.Network
	handler := events.HTTPHandler(n.dispatcher, n.Metrics, n)
	if nw.CORS {
		handler = events.WithCORS(handler, nw.CORSAccessList)
	}
	lim := effectiveHTTPLimits(nw, raiseFDLimit())
	n.log.Info("operations API limits", zap.Int("max_connections", lim.MaxConnections), zap.Uint64("fd_limit", lim.FDLimit),
		zap.Duration("headers_timeout", lim.HeadersTimeout), zap.Duration("timeout", lim.Timeout), zap.Duration("keep_alive_timeout", lim.KeepAliveTimeout))
	budget := newConnBudget(lim.MaxConnections)
	if nw.SecurePort != Off {
		if n.Config.usesSelfSigned() {
			generated, err := n.Config.ensureSelfSigned()
			if err != nil {
				return err
			}
			if generated {
				cert, key := n.Config.SelfSignedFiles()
				n.first.made = append(n.first.made, key, cert) // a failed first start removes them
				n.log.Info("generated a self-signed certificate for the operations API", zap.String("file", cert))
				n.first.hints = append(n.first.hints, func(w io.Writer, _ topology.Ports) {
					fmt.Fprintf(w, "Generated a self-signed certificate for the operations API (%s, SHA-256 %s). Clients trust it with:\n"+
						"  curl --cacert %s %s/readyz\n", cert, events.Fingerprint(n.api.certs.Leaf()), cert, n.OperationsURL())
				})
			}
		}
		certs, err := events.NewCertReloader(n.Config.operationsTLSFiles(), n.Config.clientCerts(), n.log.Named("https"))
		if err != nil {
			return fmt.Errorf("operations API TLS: %w", err)
		}
		n.api.certs = certs
		if err := certs.Register(n.Metrics.Registry); err != nil {
			return err
		}
		leaf := certs.Leaf()
		n.log.Info("operations API certificate", zap.String("file", n.Config.operationsTLSFiles().Certificate),
			zap.String("subject", leaf.Subject.String()), zap.String("sha256", events.Fingerprint(leaf)),
			zap.Time("not_after", leaf.NotAfter), zap.Bool("self_signed", n.Config.usesSelfSigned()))
		if w := certificateWarning(leaf, time.Now()); w != "" {
			// Served anyway: a replaced file is picked up without a restart.
			n.log.Warn("operations API certificate "+w, zap.String("file", n.Config.operationsTLSFiles().Certificate), zap.Time("not_after", leaf.NotAfter))
		}
		if f := n.Config.operationsTLSFiles().PrivateKey; worldReadable(f) {
			n.log.Warn("operations API private key is readable by every user of this machine: chmod o-rwx it", zap.String("file", f))
		}
		l, err := n.listenAPI(nw.SecurePort, events.WithClientCertUsers(handler, n.Config.clientCerts()), lim)
		if err != nil {
			return fmt.Errorf("operations API HTTPS listener: %w", err)
		}
		n.api.secure = l
		// The handshake runs in the server's connection goroutine, under
		// its deadlines, after the connection took its slot.
		n.serveAPI(l, tls.NewListener(limitListen(l.ln, budget), certs.TLSConfig()), "https")
	}
	if nw.Port != Off {
		l, err := n.listenAPI(nw.Port, handler, lim)
		if err != nil {
			return fmt.Errorf("operations API listener: %w", err)
		}
		n.api.plain = l
		n.serveAPI(l, limitListen(l.ln, budget), "http")
	}
	return nil
}

func (n *Node) listenAPI(port int, h http.Handler, lim httpLimits) (*apiListener, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(n.Config.OperationsAPI.Network.Host, strconv.Itoa(port)))
	if err != nil {
		return nil, err
	}
	srv := newHTTPServer(h, lim)
	// Failed handshakes (a scanner, plain HTTP on the HTTPS port, an old
	// TLS version) are the client's problem: debug, not stderr.
	srv.ErrorLog, _ = zap.NewStdLogAt(n.log.Named("http"), zap.DebugLevel)
	// HTTP/1.1 only, on both listeners, so the same limits mean the same.
	srv.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
	return &apiListener{ln: ln, srv: srv}, nil
}

func (n *Node) serveAPI(l *apiListener, ln net.Listener, scheme string) {
	go func() {
		if err := l.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("operations API stopped", zap.String("scheme", scheme), zap.Error(err))
		}
	}()
}

// stopHTTP stops taking connections and waits (up to 10 s) for the requests
// in flight on every listener.
func (n *Node) stopHTTP() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, l := range []*apiListener{n.api.plain, n.api.secure} {
		if l == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = l.srv.Shutdown(ctx)
		}()
	}
	wg.Wait()
}

// HTTPPort is the port of the plain HTTP operations API, 0 when it is off.
func (n *Node) HTTPPort() int { return n.api.plain.port() }

// HTTPSPort is the port of the HTTPS operations API, 0 when it is off.
func (n *Node) HTTPSPort() int { return n.api.secure.port() }

// certificateWarning says when a served certificate has expired or will
// within 30 days ("" when neither).
func certificateWarning(c *x509.Certificate, now time.Time) string {
	switch left := c.NotAfter.Sub(now); {
	case left <= 0:
		return "has EXPIRED on " + c.NotAfter.UTC().Format("2006-01-02") + ": clients will refuse it; replace the files"
	case left < 48*time.Hour:
		return fmt.Sprintf("expires in %d hours, at %s: replace the files (no restart needed)", int(left.Hours()), c.NotAfter.UTC().Format(time.RFC3339))
	case left < 30*24*time.Hour:
		return fmt.Sprintf("expires in %d days, on %s: replace the files (no restart needed)", int(left.Hours()/24), c.NotAfter.UTC().Format("2006-01-02"))
	}
	return ""
}

func worldReadable(file string) bool {
	st, err := os.Stat(file)
	return err == nil && st.Mode().Perm()&0o004 != 0
}

// operationsAPIPort is the port cluster_status reports as operations_api:
// the HTTPS one when it runs (the one other hosts can use), else plain HTTP.
func (n *Node) operationsAPIPort() int {
	if p := n.HTTPSPort(); p != 0 {
		return p
	}
	return n.HTTPPort()
}

// OperationsURL is the base URL of the operations API on this node: HTTPS
// when it runs, else plain HTTP; the host is the configured one, 127.0.0.1
// for "every interface".
func (n *Node) OperationsURL() string {
	host := n.Config.OperationsAPI.Network.Host
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	if p := n.HTTPSPort(); p != 0 {
		return "https://" + net.JoinHostPort(host, strconv.Itoa(p))
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(n.HTTPPort()))
}

// OperationsCAFile is the file an HTTPS client passes as its CA to trust
// this node: the configured certificate authority, else the self-signed
// certificate; "" when the certificate is meant to chain to the system roots
// or HTTPS is off.
func (n *Node) OperationsCAFile() string {
	if n.api.secure == nil {
		return ""
	}
	if n.Config.usesSelfSigned() {
		cert, _ := n.Config.SelfSignedFiles()
		return cert
	}
	return n.Config.OperationsTLS().CertificateAuthority
}

// OperationsCertificate is the certificate the HTTPS listener serves now
// (nil when HTTPS is off).
func (n *Node) OperationsCertificate() *x509.Certificate {
	if n.api.certs == nil {
		return nil
	}
	return n.api.certs.Leaf()
}
