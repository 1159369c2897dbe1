package node

import (
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
)

// HTTP limit defaults (operationsApi.network.*): a zero value means these.
const (
	DefaultHTTPMaxConnections   = 1000
	DefaultHTTPHeadersTimeout   = 5 * time.Second
	DefaultHTTPTimeout          = 10 * time.Second
	DefaultHTTPKeepAliveTimeout = 5 * time.Second
	// httpFDShare is the part of the process' file descriptor limit HTTP
	// connections may hold: the rest stays for the NATS listeners, routes,
	// leafnodes and JetStream's files, whatever the HTTP port receives.
	httpFDShare = 4
	// minHTTPConnections keeps the operations API usable under a tiny limit.
	minHTTPConnections = 16
)

func (n OpsNetwork) problems() []string {
	var p []string
	if n.MaxConnections < 0 {
		p = append(p, fmt.Sprintf("operationsApi.network.maxConnections must be 0 (the default, %d) or more, got %d", DefaultHTTPMaxConnections, n.MaxConnections))
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"headersTimeout", n.HeadersTimeout}, {"timeout", n.Timeout}, {"keepAliveTimeout", n.KeepAliveTimeout}} {
		if d.v < 0 || d.v > 0 && d.v < 100*time.Millisecond {
			p = append(p, fmt.Sprintf("operationsApi.network.%s must be 0 (the default) or at least 100ms, got %v", d.key, d.v))
		}
	}
	if n.HeadersTimeout > 0 && n.Timeout > 0 && n.HeadersTimeout > n.Timeout {
		p = append(p, fmt.Sprintf("operationsApi.network.headersTimeout (%v) must not be longer than timeout (%v)", n.HeadersTimeout, n.Timeout))
	}
	return p
}

// httpLimits are the effective limits of the operations API listeners.
type httpLimits struct {
	MaxConnections                            int
	HeadersTimeout, Timeout, KeepAliveTimeout time.Duration
	FDLimit                                   uint64 // the process' descriptor limit after raising it; 0 unknown
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// effectiveHTTPLimits applies the defaults and caps connections at a share of
// fdLimit (0: unknown, no cap).
func effectiveHTTPLimits(n OpsNetwork, fdLimit uint64) httpLimits {
	l := httpLimits{
		MaxConnections:   orDefault(n.MaxConnections, DefaultHTTPMaxConnections),
		HeadersTimeout:   orDefault(n.HeadersTimeout, DefaultHTTPHeadersTimeout),
		Timeout:          orDefault(n.Timeout, DefaultHTTPTimeout),
		KeepAliveTimeout: orDefault(n.KeepAliveTimeout, DefaultHTTPKeepAliveTimeout),
		FDLimit:          fdLimit,
	}
	if fdLimit > 0 {
		share := max(int(min(fdLimit/httpFDShare, 1<<30)), minHTTPConnections)
		l.MaxConnections = min(l.MaxConnections, share)
	}
	return l
}

// connBudget is a number of connection slots shared by listeners.
type connBudget chan struct{}

func newConnBudget(n int) connBudget { return make(connBudget, n) }

// limitListener holds at most cap(budget) accepted connections (counted with
// the other listeners sharing the budget). A connection takes its slot after
// Accept, waiting for one to free up, so at most one connection per listener
// is open beyond the budget and the rest wait in the kernel's backlog, costing
// this process no descriptor.
type limitListener struct {
	net.Listener
	budget connBudget
	once   sync.Once
	done   chan struct{}
}

func limitListen(ln net.Listener, b connBudget) *limitListener {
	return &limitListener{Listener: ln, budget: b, done: make(chan struct{})}
}

func (l *limitListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	select {
	case l.budget <- struct{}{}:
		return &budgetConn{Conn: c, budget: l.budget}, nil
	case <-l.done:
		c.Close()
		return nil, net.ErrClosed
	}
}

func (l *limitListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

type budgetConn struct {
	net.Conn
	budget connBudget
	once   sync.Once
}

func (c *budgetConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { <-c.budget })
	return err
}

// newHTTPServer applies lim's deadlines: headers within HeadersTimeout, the
// whole request (body included) within Timeout, an idle keep-alive
// connection closed after KeepAliveTimeout. The reply may take up to the
// operations' own 30 s limit beyond the request.
func newHTTPServer(h http.Handler, lim httpLimits) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: lim.HeadersTimeout,
		ReadTimeout:       lim.Timeout,
		WriteTimeout:      lim.Timeout + 35*time.Second,
		IdleTimeout:       lim.KeepAliveTimeout,
		MaxHeaderBytes:    64 << 10,
	}
}
