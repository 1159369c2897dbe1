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
// plus the TLS handshake for HTTPS). Each iteration makes one request of
// each kind, interleaved in a rotating order, so a busy machine slows all
// four alike; the
// metrics are the mean µs per request of each kind and HTTPS's ratio to
// HTTP (its floor, measured in the same run):
//
//	go test -run '^$' -bench BenchmarkOperationsAPI -benchtime 2000x ./node
func BenchmarkOperationsAPI(b *testing.B) {
	cfg := nodetest.Config(b, "a")
	cfg.OperationsAPI.Network.SecurePort = 0 // beside plain HTTP on port 0
	n := nodetest.Start(b, cfg)
	tok := nodetest.SuperUser(b, n)
	pool := pemPoolTB(b, n.OperationsCAFile())
	kinds := []struct {
		name   string
		url    string
		client *http.Client
		total  time.Duration
	}{
		{name: "http-keepalive", url: fmt.Sprintf("http://127.0.0.1:%d/", n.HTTPPort())},
		{name: "https-keepalive", url: fmt.Sprintf("https://127.0.0.1:%d/", n.HTTPSPort())},
		{name: "http-newconn", url: fmt.Sprintf("http://127.0.0.1:%d/", n.HTTPPort())},
		{name: "https-newconn", url: fmt.Sprintf("https://127.0.0.1:%d/", n.HTTPSPort())},
	}
	for i := range kinds {
		kinds[i].client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: strings.HasSuffix(kinds[i].name, "newconn"), MaxIdleConnsPerHost: 1,
		}}
	}
	call := func(c *http.Client, url string) {
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(`{"operation":"cluster_get_routes"}`))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := c.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	for _, k := range kinds {
		call(k.client, k.url) // the token is verified once and cached; kept-alive connections open
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for o := range kinds {
			j := (i + o) % len(kinds) // each kind in each position in turn
			start := time.Now()
			call(kinds[j].client, kinds[j].url)
			kinds[j].total += time.Since(start)
		}
	}
	us := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(b.N) }
	for _, k := range kinds {
		b.ReportMetric(us(k.total), k.name+"-µs")
	}
	b.ReportMetric(float64(kinds[1].total)/float64(kinds[0].total), "https/http-keepalive")
	b.ReportMetric(float64(kinds[3].total)/float64(kinds[2].total), "https/http-newconn")
}
