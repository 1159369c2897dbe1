package main

import (
	"bytes"
	"crypto/ed25519"
	"strings"
	"testing"
	"time"

	"github.com/clusterd/clusterd/auth"
)

// `clusterd token` mints only what the nodes accept: a lifetime beyond
// auth.maxTokenTTL is refused before anything is signed.
func TestTokenCommandRefusesLifetimesBeyondTheBound(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("ROOTPATH", dir)
	cases := []struct {
		args []string
		env  map[string]string
		want string // error text; empty: a token is printed
	}{
		{args: []string{"--ttl", "720h"}, want: "token: --ttl 720h0m0s is longer than auth.maxTokenTTL (24h0m0s)"},
		{args: []string{"--ttl", "24h1s"}, want: "token: --ttl 24h0m1s is longer than auth.maxTokenTTL (24h0m0s)"},
		{args: []string{"--ttl", "0s"}, want: "token: --ttl must be positive, got 0s"},
		{args: []string{"--ttl", "48h"}, env: map[string]string{"AUTH_MAXTOKENTTL": "72h"}},
		{args: []string{"--ttl", "24h"}},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			var out, errOut bytes.Buffer
			err := run(append([]string{"token", "--user", "admin", "--create-key"}, c.args...), &out, &errOut)
			if c.want != "" {
				if err == nil || !strings.HasPrefix(err.Error(), c.want) || out.Len() != 0 {
					t.Fatalf("got %v (output %q), want an error starting %q", err, out.String(), c.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			key, _, err := auth.LoadOrCreateIssuerKey(dir + "/issuer.key")
			if err != nil {
				t.Fatal(err)
			}
			limits := auth.Limits{MaxTTL: 72 * time.Hour}
			v, err := auth.NewVerifier(limits, key.Public().(ed25519.PublicKey)).Verify(strings.TrimSpace(out.String()))
			if err != nil || v.User != "admin" || v.Role != auth.SuperUser {
				t.Fatalf("minted token: %+v %v", v, err)
			}
		})
	}
}
