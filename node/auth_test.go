package node_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clusterd/clusterd/auth"
	"github.com/clusterd/clusterd/node/nodetest"
	"github.com/golang-jwt/jwt/v5"
	"github.com/nats-io/nats.go"
)

func newKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// sign signs claims with key using method, whatever iss they carry.
func sign(t *testing.T, method jwt.SigningMethod, key any, c jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, c).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func claims(iss string, role string, iat, exp time.Time) jwt.MapClaims {
	return jwt.MapClaims{"role": role, "sub": "admin", "iss": iss, "aud": []string{auth.Audience},
		"iat": iat.Unix(), "exp": exp.Unix()}
}

// with returns c with key set to v (deleted when v is nil).
func with(c jwt.MapClaims, key string, v any) jwt.MapClaims {
	out := jwt.MapClaims{}
	for k, x := range c {
		out[k] = x
	}
	if v == nil {
		delete(out, key)
	} else {
		out[key] = v
	}
	return out
}

// rawRequest sends body on subject with a raw Authorization header value
// (empty = no header).
func rawRequest(t *testing.T, nc *nats.Conn, subject, auth, body string) nodetest.Reply {
	t.Helper()
	msg := nats.NewMsg(subject)
	msg.Data = []byte(body)
	if auth != "" {
		msg.Header.Set("Authorization", auth)
	}
	resp, err := nc.RequestMsg(msg, 10*time.Second)
	if err != nil {
		t.Fatalf("request %s: %v", subject, err)
	}
	r := nodetest.Reply{Status: 200, Body: resp.Data, Header: resp.Header}
	if code := resp.Header.Get("Nats-Service-Error-Code"); code != "" {
		if r.Status, err = strconv.Atoi(code); err != nil {
			t.Fatalf("Nats-Service-Error-Code %q", code)
		}
	}
	return r
}

// httpRaw posts body to the operations API with a raw Authorization header
// value (empty = no header).
func httpRaw(t *testing.T, port int, auth, body string) nodetest.Reply {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, fmt.Sprintf("http://127.0.0.1:%d/", port), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return nodetest.Reply{Status: resp.StatusCode, Body: b, Header: nats.Header(resp.Header)}
}

func TestUnauthorizedTokensAre401AndChangeNothing(t *testing.T) {
	trusted := newKey(t)
	cfg := nodetest.Config(t, "auth")
	cfg.Auth.TrustedIssuers = []string{auth.IssuerID(trusted.Public().(ed25519.PublicKey))}
	n := nodetest.Start(t, cfg)
	nc := nodetest.Connect(t, n)
	nodeIss := auth.IssuerID(n.IssuerKey().Public().(ed25519.PublicKey))
	now := time.Now()

	untrustedKey := newKey(t)
	untrusted, err := auth.Mint(untrustedKey, "admin", "super_user", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	good := claims(nodeIss, "super_user", now, now.Add(time.Hour))
	valid := sign(t, jwt.SigningMethodEdDSA, n.IssuerKey(), good)
	// A genuine cluster_user token whose payload was swapped for a super_user one.
	weak := strings.Split(sign(t, jwt.SigningMethodEdDSA, n.IssuerKey(), claims(nodeIss, "cluster_user", now, now.Add(time.Hour))), ".")
	escalated := weak[0] + "." + strings.Split(valid, ".")[1] + "." + weak[2]
	signed := func(c jwt.MapClaims) string { return "Bearer " + sign(t, jwt.SigningMethodEdDSA, n.IssuerKey(), c) }
	year9999 := time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC).Unix()
	refresh, err := auth.MintToken(n.IssuerKey(), auth.Token{User: "admin", Role: "super_user", TTL: time.Hour, Kind: auth.KindRefresh})
	if err != nil {
		t.Fatal(err)
	}
	trustedList := strings.Join(sortedStrings(nodeIss, auth.IssuerID(trusted.Public().(ed25519.PublicKey))), ", ")

	cases := []struct {
		name, auth, want string
	}{
		{"missing", "", "Must login"},
		{"basic, no such user", "Basic bm9ib2R5OnBhc3M=", "Login failed"},
		{"basic, not base64", "Basic !!!", "Login failed"},
		{"unknown scheme", "Digest abc", "Unauthorized: Authorization header must be 'Basic <base64 user:password>' or 'Bearer <token>'"},
		{"bearer without token", "Bearer", "Unauthorized: token is empty"},
		{"malformed", "Bearer not-a-jwt", "Unauthorized: token is malformed (expected a signed JWT: header.payload.signature)"},
		{"malformed segments", "Bearer a.b.c", "Unauthorized: token is malformed (expected a signed JWT: header.payload.signature)"},
		{"forged signature", "Bearer " + sign(t, jwt.SigningMethodEdDSA, newKey(t), good), "Unauthorized: token signature is invalid"},
		{"role escalated in payload", "Bearer " + escalated, "Unauthorized: token signature is invalid"},
		{"hmac instead of eddsa", "Bearer " + sign(t, jwt.SigningMethodHS256, []byte("secret"), good), `Unauthorized: token must be signed with EdDSA (Ed25519), not "HS256"`},
		{"expired", signed(claims(nodeIss, "super_user", now.Add(-2*time.Hour), now.Add(-time.Hour))), "Unauthorized: token has expired"},
		{"not valid yet", signed(with(good, "nbf", now.Add(10*time.Minute).Unix())), "Unauthorized: token is not valid yet (nbf)"},
		{"no expiry", signed(with(good, "exp", nil)), "Unauthorized: token has no exp"},
		{"no iat", signed(with(good, "iat", nil)), "Unauthorized: token has no iat"},
		{"exp a string", signed(with(good, "exp", fmt.Sprint(now.Add(time.Hour).Unix()))), "Unauthorized: token exp must be a number of seconds since 1970, not a string"},
		{"iat a string", signed(with(good, "iat", fmt.Sprint(now.Unix()))), "Unauthorized: token iat must be a number of seconds since 1970, not a string"},
		{"nbf a boolean", signed(with(good, "nbf", true)), "Unauthorized: token nbf must be a number of seconds since 1970, not a boolean"},
		{"exp in year 9999", signed(with(good, "exp", year9999)), fmt.Sprintf("Unauthorized: token lives %d days (exp - iat), longer than auth.maxTokenTTL (24h0m0s)", (year9999-now.Unix())/86400)},
		{"lives 720h", signed(claims(nodeIss, "super_user", now, now.Add(720*time.Hour))), "Unauthorized: token lives 720h0m0s (exp - iat), longer than auth.maxTokenTTL (24h0m0s)"},
		{"future iat", signed(claims(nodeIss, "super_user", now.Add(time.Hour), now.Add(2*time.Hour))), "Unauthorized: token was issued in the future (iat " + now.Add(time.Hour).UTC().Format(time.RFC3339) + " is 1h0m0s ahead of this node's clock)"},
		{"no audience", signed(with(good, "aud", nil)), `Unauthorized: token has no audience (aud); clusterd tokens carry aud "clusterd"`},
		{"wrong audience", signed(with(good, "aud", []string{"harperdb"})), `Unauthorized: token audience "harperdb" does not include "clusterd"`},
		{"no issuer", signed(with(good, "iss", nil)), "Unauthorized: token has no issuer (iss)"},
		{"untrusted issuer", "Bearer " + untrusted, "Unauthorized: token issuer " + auth.IssuerID(untrustedKey.Public().(ed25519.PublicKey)) + " is not trusted (trusted: " + trustedList + ")"},
		{"no subject", signed(with(good, "sub", nil)), "Unauthorized: token has no user (sub)"},
		{"no role", signed(with(good, "role", nil)), "Unauthorized: token has no role"},
		{"refresh token as bearer", "Bearer " + refresh, "Unauthorized: a refresh token only mints operation tokens (refresh_operation_token); send the operation token"},
	}
	setBody := `{"server":"hub","routes":[{"host":"127.0.0.1","port":1}]}`
	before := n.Store.Commits()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want := c.want
			for _, op := range []string{"cluster_set_routes", "cluster_get_routes", "cluster_delete_routes"} {
				wantError(t, rawRequest(t, nc, "ops.cluster."+op, c.auth, setBody), 401, want)
			}
			// Invalid bodies and unknown operations are not looked at before the token is.
			wantError(t, rawRequest(t, nc, "ops.cluster.cluster_set_routes", c.auth, `[1,2`), 401, want)
			wantError(t, rawRequest(t, nc, "ops.cluster.no_such_op", c.auth, `{}`), 401, want)
			wantError(t, rawRequest(t, nc, "ops.node.auth.cluster.cluster_set_routes", c.auth, setBody), 401, want)

			r := httpRaw(t, n.HTTPPort(), c.auth, `{"operation":"cluster_set_routes","server":"hub","routes":[{"host":"127.0.0.1","port":1}]}`)
			wantHTTPError(t, r, 401, want)
		})
	}
	if got := n.Store.Commits(); got != before {
		t.Fatalf("unauthorized requests made %d store commits", got-before)
	}
	if got := nodetest.Routes(t, n); got != `{"hub":[],"leaf":[]}` {
		t.Fatalf("routes after unauthorized requests: %s", got)
	}

	// Tokens that are fine: the node's own key, and a configured trusted issuer.
	ok, err := auth.Mint(trusted, "ops-team", "super_user", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{valid, ok} {
		if r := nodetest.Request(t, nc, "ops.cluster.cluster_get_routes", tok, `{}`); r.Status != 200 {
			t.Fatalf("valid token refused: %d %s", r.Status, r.Body)
		}
		if r := nodetest.HTTP(t, n, tok, `{"operation":"cluster_get_routes"}`); r.Status != 200 {
			t.Fatalf("valid token refused over HTTP: %d %s", r.Status, r.Body)
		}
	}
	// The scheme is case-insensitive, as in HTTP.
	if r := rawRequest(t, nc, "ops.cluster.cluster_get_routes", "bearer "+valid, `{}`); r.Status != 200 {
		t.Fatalf("lower-case bearer refused: %d %s", r.Status, r.Body)
	}
}

func sortedStrings(s ...string) []string {
	sort.Strings(s)
	return s
}

func TestNonSuperUserRoleIs403WithHarperDBBody(t *testing.T) {
	n := nodetest.StartNamed(t, "roles")
	nc := nodetest.Connect(t, n)
	handlers := map[string]string{
		"cluster_set_routes":    "setRoutes",
		"cluster_get_routes":    "getRoutes",
		"cluster_delete_routes": "deleteRoutes",
	}
	bodies := map[string]string{
		"valid":   `{"server":"hub","routes":[{"host":"127.0.0.1","port":1}]}`,
		"invalid": `{"server":"mesh","routes":[{"port":"x"}]}`, // the role check comes before validation
		"junk":    `not json`,
	}
	before := n.Store.Commits()
	for _, role := range []string{"cluster_user", "structure_user", "Super_User", "super_user "} {
		tok, err := n.Token("bob", role, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		for op, handler := range handlers {
			want := `{"error":"This operation is not authorized due to role restrictions and/or invalid database items",` +
				`"unauthorized_access":["Operation '` + handler + `' is restricted to 'super_user' roles"],"invalid_schema_items":[]}`
			for name, body := range bodies {
				r := nodetest.Request(t, nc, "ops.cluster."+op, tok, body)
				if r.Status != 403 || string(r.Body) != want {
					t.Fatalf("%s %s (%s body) over NATS:\n got %d %s\nwant 403 %s", role, op, name, r.Status, r.Body, want)
				}
				if r.Header.Get("Nats-Service-Error-Code") != "403" ||
					r.Header.Get("Nats-Service-Error") != "This operation is not authorized due to role restrictions and/or invalid database items" {
					t.Fatalf("403 headers: %v", r.Header)
				}
			}
			r := nodetest.Request(t, nc, "ops.node.roles.cluster."+op, tok, bodies["valid"])
			if r.Status != 403 || string(r.Body) != want {
				t.Fatalf("%s %s on the node subject: %d %s", role, op, r.Status, r.Body)
			}
			h := nodetest.HTTP(t, n, tok, `{"operation":"`+op+`","server":"hub","routes":[{"host":"127.0.0.1","port":1}]}`)
			if h.Status != 403 || string(h.Body) != want {
				t.Fatalf("%s %s over HTTP:\n got %d %s\nwant 403 %s", role, op, h.Status, h.Body, want)
			}
		}
	}
	if got := n.Store.Commits(); got != before {
		t.Fatalf("forbidden requests made %d store commits", got-before)
	}
	if got := nodetest.Routes(t, n); got != `{"hub":[],"leaf":[]}` {
		t.Fatalf("routes after forbidden requests: %s", got)
	}
}
