package nodetest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"
)

// echoServer echoes every connection back and counts connections and bytes
// it received.
type echoServer struct {
	ln           net.Listener
	conns, bytes atomic.Int64
}

func newEchoServer(t *testing.T) *echoServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	e := &echoServer{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			e.conns.Add(1)
			go func() {
				defer c.Close()
				buf := make([]byte, 4096)
				for {
					n, err := c.Read(buf)
					e.bytes.Add(int64(n))
					if n > 0 {
						if _, err := c.Write(buf[:n]); err != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return e
}

func dial(t *testing.T, p *Proxy) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", p.Port()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip writes line and reads it back within timeout.
func roundTrip(c net.Conn, r *bufio.Reader, line string, timeout time.Duration) error {
	if _, err := c.Write([]byte(line + "\n")); err != nil {
		return err
	}
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	got, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	if got != line+"\n" {
		return fmt.Errorf("got %q back, want %q", got, line)
	}
	return nil
}

func TestProxyDelayHoldsEachDirectionInOrder(t *testing.T) {
	e := newEchoServer(t)
	p := NewProxy(t, e.ln.Addr().String())
	c := dial(t, p)
	r := bufio.NewReader(c)
	if err := roundTrip(c, r, "before", 2*time.Second); err != nil {
		t.Fatal(err)
	}

	const d = 100 * time.Millisecond
	p.Delay(d)
	start := time.Now()
	if err := roundTrip(c, r, "delayed", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 2*d {
		t.Fatalf("round trip took %v with a %v delay each way, want at least %v", took, d, 2*d)
	}
	// Many small writes in a row come back complete and in order, and the
	// delays overlap (they are not added up per chunk).
	start = time.Now()
	const n = 200
	go func() {
		for i := 0; i < n; i++ {
			_, _ = fmt.Fprintf(c, "%d\n", i)
			time.Sleep(time.Millisecond)
		}
	}()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for i := 0; i < n; i++ {
		got, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		if got != fmt.Sprintf("%d\n", i) {
			t.Fatalf("line %d is %q: reordered", i, got)
		}
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("%d delayed lines took %v: delays add up instead of overlapping", n, took)
	}

	p.Heal()
	start = time.Now()
	if err := roundTrip(c, r, "healed", 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took >= 2*d {
		t.Fatalf("round trip after Heal took %v, still delayed", took)
	}
}

func TestProxyBlackholeSwallowsUntilHeal(t *testing.T) {
	e := newEchoServer(t)
	p := NewProxy(t, e.ln.Addr().String())
	old := dial(t, p)
	oldR := bufio.NewReader(old)
	if err := roundTrip(old, oldR, "hello", 2*time.Second); err != nil {
		t.Fatal(err)
	}
	sent := e.bytes.Load()

	p.Blackhole()
	if err := roundTrip(old, oldR, "lost", 300*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("blackholed connection: %v, want no answer at all", err)
	}
	// A new connection is accepted, but nothing reaches the target.
	fresh := dial(t, p)
	freshR := bufio.NewReader(fresh)
	if err := roundTrip(fresh, freshR, "also lost", 300*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("connection made while blackholed: %v, want no answer at all", err)
	}
	if got := e.bytes.Load(); got != sent {
		t.Fatalf("target received %d bytes while blackholed", got-sent)
	}
	if got := e.conns.Load(); got != 1 {
		t.Fatalf("target saw %d connections, want only the one made before the blackhole", got)
	}

	// Heal closes what was open during the blackhole; new connections work.
	p.Heal()
	for _, c := range []struct {
		name string
		c    net.Conn
		r    *bufio.Reader
	}{{"old", old, oldR}, {"fresh", fresh, freshR}} {
		_ = c.c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.r.ReadByte(); err != io.EOF && !errors.Is(err, net.ErrClosed) && !isReset(err) {
			t.Fatalf("%s connection after Heal: read gave %v, want it closed", c.name, err)
		}
	}
	c := dial(t, p)
	if err := roundTrip(c, bufio.NewReader(c), "back", 2*time.Second); err != nil {
		t.Fatalf("after Heal: %v", err)
	}
}

func TestProxyCutRefusesUntilHeal(t *testing.T) {
	e := newEchoServer(t)
	p := NewProxy(t, e.ln.Addr().String())
	c := dial(t, p)
	r := bufio.NewReader(c)
	if err := roundTrip(c, r, "hello", 2*time.Second); err != nil {
		t.Fatal(err)
	}
	p.Cut()
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := r.ReadByte(); err != io.EOF && !isReset(err) {
		t.Fatalf("after Cut: read gave %v, want the connection closed", err)
	}
	c2 := dial(t, p) // accepted by the kernel, then closed by the proxy
	_ = c2.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := c2.Read(make([]byte, 1)); err != io.EOF && !isReset(err) {
		t.Fatalf("connection while cut: read gave %v, want it closed", err)
	}
	p.Heal()
	c3 := dial(t, p)
	if err := roundTrip(c3, bufio.NewReader(c3), "back", 2*time.Second); err != nil {
		t.Fatalf("after Heal: %v", err)
	}
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && !op.Timeout()
}
