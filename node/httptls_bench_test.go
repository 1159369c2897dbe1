package node_test

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/clusterd/clusterd/node/nodetest"
)

// BenchmarkOperationsAPI times cluster_get_routes over the operations API:
// plain HTTP against HTTPS (self-signed P-256 certificate, TLS 1.3), on a
// kept-alive connection and on a new connection per request (TCP connect,
// plus the TLS handshake for HTTPS). Compare the four in one run:
//
//	go test -run '^$' -bench BenchmarkOperationsAPI -benchtime 300x ./node
func BenchmarkOperationsAPI(b *testing.B) {
	cfg := nodetest.Config(b, "a")
	cfg.OperationsAPI.Network.SecurePort = 0 // beside plain HTTP on port 0
	n := nodetest.Start(b, cfg)
	tok := nodetest.SuperUser(b, n)
	caFile := n.OperationsCAFile()
	for _, c := range []struct {
		name      string
		url       string
		keepAlive bool
	}{
		{"http/keepalive", fmt.Sprintf("http://127.0.0.1:%d/", n.HTTPPort()), true},
		{"https/keepalive", fmt.Sprintf("https://127.0.0.1:%d/", n.HTTPSPort()), true},
		{"http/new-connection", fmt.Sprintf("http://127.0.0.1:%d/", n.HTTPPort()), false},
		{"https/new-connection", fmt.Sprintf("https://127.0.0.1:%d/", n.HTTPSPort()), false},
	} {
		b.Run(c.name, func(b *testing.B) {
			pool := pemPoolTB(b, caFile)
			client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
				TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: !c.keepAlive, MaxIdleConnsPerHost: 1,
			}}
			call := func() {
				req, _ := http.NewRequest(http.MethodPost, c.url, strings.NewReader(`{"operation":"cluster_get_routes"}`))
				req.Header.Set("Authorization", "Bearer "+tok)
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Fatalf("status %d", resp.StatusCode)
				}
			}
			call() // the token is verified once and cached; a kept-alive connection is open
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				call()
			}
		})
	}
}
