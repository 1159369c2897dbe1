package node

import (
	"strings"
	"testing"
	"time"
)

func TestEffectiveHTTPLimits(t *testing.T) {
	cases := []struct {
		name string
		in   OpsNetwork
		fd   uint64
		want int
	}{
		{"defaults, no fd limit known", OpsNetwork{}, 0, DefaultHTTPMaxConnections},
		{"a quarter of the fd limit", OpsNetwork{}, 512, 128},
		{"configured below the share", OpsNetwork{MaxConnections: 50}, 1 << 20, 50},
		{"configured above the share", OpsNetwork{MaxConnections: 5000}, 4096, 1024},
		{"tiny fd limit keeps a floor", OpsNetwork{}, 20, minHTTPConnections},
	}
	for _, c := range cases {
		if got := effectiveHTTPLimits(c.in, c.fd); got.MaxConnections != c.want {
			t.Errorf("%s: %d connections, want %d", c.name, got.MaxConnections, c.want)
		}
	}
	l := effectiveHTTPLimits(OpsNetwork{Timeout: 3 * time.Second}, 0)
	if l.Timeout != 3*time.Second || l.HeadersTimeout != DefaultHTTPHeadersTimeout || l.KeepAliveTimeout != DefaultHTTPKeepAliveTimeout {
		t.Fatalf("timeouts: %+v", l)
	}
}

func TestHTTPLimitProblems(t *testing.T) {
	got := strings.Join(OpsNetwork{MaxConnections: -1, HeadersTimeout: 20 * time.Second, Timeout: 10 * time.Second, KeepAliveTimeout: time.Millisecond}.problems(), "; ")
	for _, want := range []string{
		"operationsApi.network.maxConnections must be 0 (the default, 1000) or more, got -1",
		"operationsApi.network.keepAliveTimeout must be 0 (the default) or at least 100ms, got 1ms",
		"operationsApi.network.headersTimeout (20s) must not be longer than timeout (10s)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("problems %q lack %q", got, want)
		}
	}
}
