package nodetest

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// Proxy is a loopback TCP proxy a test controls, to fault a link between
// nodes (a hub route or a leafnode connection): cut it, delay it, blackhole
// it, and heal it.
type Proxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	mode  proxyMode
	delay time.Duration
	conns map[net.Conn]struct{} // both ends of every open connection
}

type proxyMode int

const (
	forwarding proxyMode = iota
	cut                  // connections closed, new ones refused
	blackholed           // connections open, bytes dropped
)

// NewProxy forwards a new loopback port to target until the test ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.Cut() })
	return p
}

// Port is the proxy's listening port.
func (p *Proxy) Port() int { return p.ln.Addr().(*net.TCPAddr).Port }

// Cut drops every connection and refuses new ones until Heal.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mode = cut
	p.closeAll()
}

// Delay holds every chunk read from either side d before writing it on
// (order kept per direction), until Heal; Delay(0) stops delaying. Chunks
// already held keep the delay they were read with. It applies to open
// connections at once.
func (p *Proxy) Delay(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.delay = d
}

// Blackhole keeps connections open but silently drops every byte, both
// ways; new connections are accepted and swallowed too (never reaching the
// target). Like a network that loses packets without resetting anything:
// the ends only notice through their own timeouts (NATS pings).
//
// Heal closes every connection that was open while blackholed: a TCP stream
// that lost bytes in the middle cannot carry on (in a real network either
// TCP retransmits them, which Delay models, or the connection dies, which
// this models), so the ends reconnect through the healed proxy.
func (p *Proxy) Blackhole() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mode = blackholed
}

// Heal ends a cut, a blackhole (closing its connections) and any delay:
// connections are forwarded normally again.
func (p *Proxy) Heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mode == blackholed {
		p.closeAll()
	}
	p.mode = forwarding
	p.delay = 0
}

func (p *Proxy) closeAll() {
	for c := range p.conns {
		c.Close()
	}
	p.conns = map[net.Conn]struct{}{}
}

// track registers conns as open unless the proxy is cut (then it closes
// them and returns false).
func (p *Proxy) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mode == cut {
		for _, c := range conns {
			c.Close()
		}
		return false
	}
	for _, c := range conns {
		p.conns[c] = struct{}{}
	}
	return true
}

func (p *Proxy) untrack(conns ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range conns {
		c.Close()
		delete(p.conns, c)
	}
}

func (p *Proxy) state() (proxyMode, time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mode, p.delay
}

func (p *Proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		switch mode, _ := p.state(); mode {
		case cut:
			c.Close()
		case blackholed:
			if p.track(c) {
				go func() { _, _ = io.Copy(io.Discard, c); p.untrack(c) }()
			}
		default:
			go p.pipe(c)
		}
	}
}

func (p *Proxy) pipe(c net.Conn) {
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	if !p.track(c, up) {
		return
	}
	go p.forward(up, c)
	p.forward(c, up)
}

type chunk struct {
	data []byte
	due  time.Time
}

// forward copies src to dst, dropping what is read while blackholed and
// holding each chunk its delay. When either side fails, both are closed.
func (p *Proxy) forward(dst, src net.Conn) {
	defer p.untrack(dst, src)
	held := make(chan chunk, 256)
	written := make(chan struct{})
	go func() {
		defer close(written)
		for ch := range held {
			if wait := time.Until(ch.due); wait > 0 {
				time.Sleep(wait)
			}
			if _, err := dst.Write(ch.data); err != nil {
				src.Close() // stops the reader below
				return
			}
		}
	}()
	defer func() { close(held); <-written }()
	for {
		buf := make([]byte, 32<<10)
		n, err := src.Read(buf)
		if n > 0 {
			mode, delay := p.state()
			if mode != blackholed {
				select {
				case held <- chunk{buf[:n], time.Now().Add(delay)}:
				case <-written:
					return
				}
			}
		}
		if err != nil {
			return
		}
	}
}
