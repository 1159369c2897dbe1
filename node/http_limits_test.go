package node_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clusterd/clusterd/node/nodetest"
	"github.com/nats-io/nats.go/jetstream"
)

// openFDs counts a process' open file descriptors (Linux).
func openFDs(t *testing.T, pid int) int {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Skipf("cannot count descriptors: %v", err)
	}
	return len(ents)
}

// Slow HTTP clients never cost the node its NATS service: a real process
// limited to 512 descriptors, flooded with 700 connections that send headers
// promising a 1 MB body and then wait, still accepts a NATS client and
// acknowledges a JetStream publish, and serves HTTP again once they go.
func TestSlowHTTPClientsDoNotStarveNATS(t *testing.T) {
	if _, err := os.Stat("/proc/self/fd"); err != nil {
		t.Skip("needs /proc to count descriptors")
	}
	const limit, flood = 512, 700
	var own syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &own); err != nil || own.Cur < flood+512 {
		t.Skipf("the test process needs %d descriptors for its slow clients (limit %d)", flood+512, own.Cur)
	}
	cfg := nodetest.ProcConfig(t, "fd1")
	p := nodetest.StartProcFDLimit(t, cfg, limit)
	before := openFDs(t, p.Pid())

	addr := fmt.Sprintf("127.0.0.1:%d", cfg.OperationsAPI.Network.Port)
	var slow []net.Conn
	defer func() {
		for _, c := range slow {
			c.Close()
		}
	}()
	for i := 0; i < flood; i++ {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		slow = append(slow, c)
		fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{")
	}
	// Let the node accept what it will.
	peak := 0
	nodetest.Consistently(t, 2*time.Second, "descriptors below the limit", func() bool {
		peak = max(peak, openFDs(t, p.Pid()))
		return peak < limit-32
	})
	t.Logf("descriptors: %d before the flood, peak %d of %d with %d slow clients", before, peak, limit, flood)

	// NATS still accepts, and JetStream still stores.
	nc := p.Conn(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ack, err := js.Publish(ctx, "txn.data.dog.fd1", []byte(`{"during":"flood"}`))
	if err != nil {
		t.Fatalf("JetStream publish during the HTTP flood: %v", err)
	}
	if ack.Sequence == 0 {
		t.Fatalf("publish not stored: %+v", ack)
	}
	// The hub's client port still greets.
	hub, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", cfg.Clustering.HubServer.Network.Port), 5*time.Second)
	if err != nil {
		t.Fatalf("hub port during the flood: %v", err)
	}
	_ = hub.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(hub).ReadString('\n')
	hub.Close()
	if err != nil || !strings.HasPrefix(line, "INFO ") {
		t.Fatalf("hub greeting during the flood: %q %v", line, err)
	}

	// The slow clients go; HTTP serves again.
	for _, c := range slow {
		c.Close()
	}
	slow = nil
	gone := time.Now()
	nodetest.Eventually(t, 60*time.Second, "HTTP served again", func() bool {
		resp, err := (&http.Client{Timeout: 2 * time.Second}).Get("http://" + addr + "/livez")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	t.Logf("HTTP served again %v after the slow clients left", time.Since(gone).Round(100*time.Millisecond))
}
